//! `GET /projects/{id}/sdk/me` throughput and latency at N connections over loopback, next
//! to a bare axum handler measured the same way in the same run.
//!
//! cargo run --release -p plugboard-bench --bin sdk_me -- [--backend sqlite|postgres]

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use clap::Parser;
use plugboard::config::{Config, Secret};
use plugboard::{Server, open_store};
use plugboard_bench::run_load;
use plugboard_store::Store;
use plugboard_store_postgres::PostgresStore;
use tokio::net::TcpListener;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// PostgreSQL URL for `--backend postgres`.
    #[arg(
        long,
        env = "PLUGBOARD_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Then measure again under a policy of this many integration rules and as many
    /// workflow rules (0: skip).
    #[arg(long, default_value_t = 0)]
    rules: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (store, database_url): (Arc<dyn Store>, String) = match args.backend.as_str() {
        "sqlite" => (open_store(&sqlite_url).await?, sqlite_url),
        "postgres" => {
            let schema = format!("pbbench_{}", uuid::Uuid::new_v4().simple());
            let store = PostgresStore::connect_in_schema(&args.postgres_url, &schema).await?;
            (Arc::new(store), args.postgres_url.clone())
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    // The database URL decides backend-dependent defaults (the user cache).
    let config = Config {
        database_url,
        admin_token: Some(Secret::new("bench-admin-token-0123456789")),
        ..Config::default()
    };
    let server = Server::start(&config, store, TcpListener::bind("127.0.0.1:0").await?).await?;
    let created = server.services.projects.create("bench", None).await?;
    let pem = created.signing_key.private_pem.expect("generated");
    let kid = created.signing_key.record.id.to_string();
    let token =
        plugboard::dev::user_token(&pem, Some(&kid), created.project.id, "bench-user", 3600)?;
    let path = format!("/projects/{}/sdk/me", created.project.id);
    // A realistic user: some metadata, so the answer is not trivially small.
    server
        .services
        .users
        .put(
            created.project.id,
            &plugboard_core::UserId::parse("bench-user")?,
            serde_json::json!({"Name": "Bench User", "Email": "bench@example.com", "plan": "pro", "apiKey": "k_0123456789"}),
        )
        .await?;

    let baseline_body = serde_json::to_value(reqwest_free_get(&server, &path, &token).await?)?;
    let bare = axum::Router::new().route(
        "/bare",
        get(move || {
            let body = baseline_body.clone();
            async move { Json(body) }
        }),
    );
    let bare_listener = TcpListener::bind("127.0.0.1:0").await?;
    let bare_addr = bare_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(bare_listener, bare).await });

    let warmup = Duration::from_secs(2);
    let duration = Duration::from_secs(args.seconds);
    let auth = [("authorization", format!("Bearer {token}"))];
    println!(
        "backend: {}, {} connections, {} s per run",
        args.backend, args.connections, args.seconds
    );
    let bare_report = run_load(bare_addr, "/bare", &[], args.connections, warmup, duration).await?;
    println!("bare axum handler (same JSON body): {bare_report}");
    let ours = run_load(
        server.addr,
        &path,
        &auth,
        args.connections,
        warmup,
        duration,
    )
    .await?;
    println!("GET /sdk/me:                        {ours}");
    println!(
        "ratio /sdk/me ÷ bare: {:.2}",
        ours.per_second() / bare_report.per_second()
    );
    anyhow::ensure!(ours.errors == 0, "{} requests failed", ours.errors);
    if args.rules > 0 {
        // The same user under a policy: every answer evaluates each rule (CEL) once.
        let rule =
            |i: usize| format!(r#"user.meta.plan in ["pro", "enterprise"] && size(user.id) > {i}"#);
        let policy = serde_json::json!({
            "entitlements": {
                "integrations": (0..args.rules).map(|i| (format!("custom.app{i}"), serde_json::Value::String(rule(i % 5)))).collect::<serde_json::Map<_, _>>(),
                "workflows": (0..args.rules).map(|i| (format!("wf-{i}"), serde_json::Value::String(rule(i % 5)))).collect::<serde_json::Map<_, _>>(),
            },
            "secretMetadataKeys": ["apiKey"],
        });
        server
            .services
            .entitlements
            .replace(created.project.id, policy)
            .await?;
        let ruled = run_load(
            server.addr,
            &path,
            &auth,
            args.connections,
            warmup,
            duration,
        )
        .await?;
        println!(
            "GET /sdk/me, {} + {} rules:          {ruled}",
            args.rules, args.rules
        );
        println!(
            "ratio with rules ÷ without: {:.2}; ÷ bare: {:.2}",
            ruled.per_second() / ours.per_second(),
            ruled.per_second() / bare_report.per_second()
        );
        anyhow::ensure!(ruled.errors == 0, "{} requests failed", ruled.errors);
    }
    server.stop().await?;
    Ok(())
}

/// One `GET` through the load generator's client, to copy the real answer's body.
async fn reqwest_free_get(
    server: &Server,
    path: &str,
    token: &str,
) -> anyhow::Result<serde_json::Value> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let stream = tokio::net::TcpStream::connect(server.addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", server.addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "sdk/me answered {}",
        response.status()
    );
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}
