//! Workflow throughput: app events for N users, each starting a 3-step workflow (transform,
//! HTTP to a local stub, transform), run by the worker; executions per second and
//! enqueue-to-start latency, next to the rate of plain single-row inserts into the same
//! database in the same run.
//!
//! cargo run --release -p plugboard-bench --bin workflows -- [--users 10000] [--backend sqlite|postgres]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use clap::Parser;
use plugboard::config::{Config, Secret, WorkflowsConfig};
use plugboard::{Server, open_store};
use plugboard_bench::percentile;
use plugboard_core::{
    Credential, CredentialConfiguration, CredentialStatus, ExecutionFilter, ExecutionStatus,
    UserId, now_millis,
};
use plugboard_service::integrations::IntegrationSettings;
use plugboard_store::Store;
use plugboard_store_postgres::PostgresStore;
use serde_json::json;
use tokio::net::TcpListener;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Concurrent worker loops in this process.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[arg(
        long,
        env = "PLUGBOARD_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stub = stub().await?;
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let schema = format!("pbbench_{}", Uuid::new_v4().simple());
    let (store, database_url): (Arc<dyn Store>, String) = match args.backend.as_str() {
        "sqlite" => (open_store(&sqlite_url).await?, sqlite_url.clone()),
        "postgres" => {
            let store = PostgresStore::connect_in_schema(&args.postgres_url, &schema).await?;
            (Arc::new(store), args.postgres_url.clone())
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    let config = Config {
        database_url,
        admin_token: Some(Secret::new("bench-admin-token-0123456789")),
        allow_loopback_providers: true,
        workflows: WorkflowsConfig {
            worker: false,
            allow_private_addresses: true,
            per_user_concurrency: 4,
            ..WorkflowsConfig::default()
        },
        ..Config::default()
    };
    let server = Server::start(
        &config,
        store.clone(),
        TcpListener::bind("127.0.0.1:0").await?,
    )
    .await?;
    let services = server.services.clone();
    let project = services.projects.create("bench", None).await?.project.id;
    let integration = services
        .integrations
        .configure(
            project,
            "custom.bench",
            IntegrationSettings {
                definition: Some(json!({
                    "name": "Bench", "brand_color": "#000000", "category": "crm",
                    "api_base_url": format!("{stub}/api"),
                    "auth": { "type": "api_key", "header": "X-Key",
                              "inputs": [{ "key": "key", "label": "Key" }] },
                    "account_id": { "request": { "path": "/me", "field": "id" } }
                })),
                ..IntegrationSettings::default()
            },
        )
        .await?
        .integration;
    services
        .workflows
        .deploy(project, &workflow(&stub), None)
        .await?;
    println!(
        "backend {}, {} users, {} worker loops; setting up users…",
        args.backend, args.users, args.workers
    );
    let users = create_users(&*store, project, integration.id, args.users).await?;

    // Baseline: single-row inserts into the same database.
    let baseline = raw_inserts(&args, &sqlite_url, &schema, args.users).await?;

    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..args.workers {
        let worker = services.worker.clone();
        let stop = stop.clone();
        loops.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if worker.run_due().await.unwrap_or(0) == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    // Events arrive from many requests at once, as they would over HTTP.
    let mut senders = tokio::task::JoinSet::new();
    for chunk in users.chunks(users.len().div_ceil(32).max(1)) {
        let chunk = chunk.to_vec();
        let workflows = services.workflows.clone();
        senders.spawn(async move {
            for user in &chunk {
                workflows
                    .trigger_event(project, user, "tick", json!({ "n": 1 }))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent??;
    }
    let enqueued_in = started.elapsed();
    let done = wait_for(&*store, project, args.users).await?;
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loops {
        l.await?;
    }
    let mut latencies: Vec<Duration> = done
        .iter()
        .filter_map(|e| {
            Some(Duration::from_millis(
                (e.started_at? - e.created_at).max(0) as u64
            ))
        })
        .collect();
    latencies.sort();
    let per_second = args.users as f64 / elapsed.as_secs_f64();
    println!("raw single-row inserts: {baseline:>9.0} rows/s");
    println!(
        "executions:             {per_second:>9.0} /s  ({} in {:.2} s; events enqueued in {:.2} s)",
        args.users,
        elapsed.as_secs_f64(),
        enqueued_in.as_secs_f64()
    );
    println!(
        "enqueue-to-start:       p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "ratio executions ÷ raw inserts: {:.3}",
        per_second / baseline
    );
    server.stop().await?;
    Ok(())
}

fn workflow(stub: &str) -> String {
    format!(
        r#"
id: bench
name: Bench
integration: custom.bench
trigger: {{ type: event, event: tick }}
steps:
  - {{ id: shape, type: transform, jq: '{{n: .trigger.payload.n, user: .user.id}}' }}
  - {{ id: call, type: http, method: POST, url: "{stub}/hook", body: {{ user: "{{{{ steps.shape.output.user }}}}" }} }}
  - {{ id: done, type: transform, jq: '.steps.call.output.status' }}
"#
    )
}

/// A local stub answering every POST with 200.
async fn stub() -> anyhow::Result<String> {
    let router = axum::Router::new().route("/hook", post(|| async { "{\"ok\":true}" }));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

/// Users, each with a credential that has the workflow enabled.
async fn create_users(
    store: &dyn Store,
    project: plugboard_core::ProjectId,
    integration: Uuid,
    count: usize,
) -> anyhow::Result<Vec<UserId>> {
    let now = now_millis();
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        let user = UserId::parse(&format!("user-{i}"))?;
        store.ensure_user(project, &user, now, None).await?;
        let id = Uuid::new_v4();
        let credential = Credential {
            id,
            project_id: project,
            user_id: user.clone(),
            integration_id: integration,
            status: CredentialStatus::Valid,
            provider_id: None,
            provider_data: Default::default(),
            secrets_sealed: "unused".into(),
            expires_at: None,
            refresh_failure_count: 0,
            external_id: None,
            created_at: now,
            updated_at: now,
            refreshed_at: None,
            version: 1,
        };
        let mut settings = serde_json::Map::new();
        settings.insert("bench".into(), json!({ "enabled": true, "settings": {} }));
        let configuration = CredentialConfiguration {
            id: Uuid::new_v4(),
            credential_id: id,
            is_default: true,
            workflow_settings: settings,
            shared_settings: Default::default(),
            external_id: None,
            created_at: now,
            updated_at: now,
        };
        store
            .insert_credential(&credential, &configuration, &[], &[])
            .await?;
        users.push(user);
    }
    Ok(users)
}

async fn wait_for(
    store: &dyn Store,
    project: plugboard_core::ProjectId,
    count: usize,
) -> anyhow::Result<Vec<plugboard_core::Execution>> {
    loop {
        let filter = ExecutionFilter {
            statuses: vec![ExecutionStatus::Succeeded],
            limit: u32::MAX,
            ..ExecutionFilter::default()
        };
        let done = store.list_executions(project, &filter).await?;
        if done.len() >= count {
            return Ok(done);
        }
        let failed = store
            .list_executions(
                project,
                &ExecutionFilter {
                    statuses: vec![ExecutionStatus::Failed],
                    limit: 5,
                    ..ExecutionFilter::default()
                },
            )
            .await?;
        anyhow::ensure!(
            failed.is_empty(),
            "executions failed: {:?}",
            failed[0].error
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows per second of single-row, autocommitted inserts of execution-sized rows.
async fn raw_inserts(
    args: &Args,
    sqlite_url: &str,
    schema: &str,
    count: usize,
) -> anyhow::Result<f64> {
    let payload = "x".repeat(300);
    let started;
    match args.backend.as_str() {
        "sqlite" => {
            // The same settings as Plugboard's own connection: WAL, synchronous = NORMAL.
            let options: sqlx::sqlite::SqliteConnectOptions = sqlite_url.parse()?;
            let options = options
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            sqlx::query("CREATE TABLE bench_rows (id TEXT PRIMARY KEY, body TEXT, at INTEGER)")
                .execute(&pool)
                .await?;
            started = Instant::now();
            for i in 0..count {
                sqlx::query("INSERT INTO bench_rows VALUES (?, ?, ?)")
                    .bind(Uuid::new_v4().to_string())
                    .bind(&payload)
                    .bind(i as i64)
                    .execute(&pool)
                    .await?;
            }
        }
        _ => {
            let pool = sqlx::PgPool::connect(&args.postgres_url).await?;
            let table = format!("{schema}.bench_rows");
            // The schema name is generated above, not user input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id UUID PRIMARY KEY, body TEXT, at BIGINT)"
            )))
            .execute(&pool)
            .await?;
            started = Instant::now();
            let insert = format!("INSERT INTO {table} VALUES ($1, $2, $3)");
            for i in 0..count {
                sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                    .bind(Uuid::new_v4())
                    .bind(&payload)
                    .bind(i as i64)
                    .execute(&pool)
                    .await?;
            }
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
