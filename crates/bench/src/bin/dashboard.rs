//! Server-side render of the dashboard's Connected Users page over 100,000 users, next to
//! the same data fetched as JSON from the management API (`GET /api/v1/projects/{id}/users`)
//! in the same run. Both go through the real server (router, middleware, session or secret
//! key check, store) over loopback HTTP, one request at a time, so the figures are the
//! server's time to answer plus one loopback round trip.
//!
//! cargo run --release -p plugboard-bench --bin dashboard -- [--users 100000] [--backend sqlite|postgres|both]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use plugboard::Server;
use plugboard::config::{Config, Secret, WorkflowsConfig};
use plugboard_bench::percentile;
use plugboard_core::ProjectId;
use plugboard_service::{ServiceSettings, Services};
use plugboard_store::Store;
use plugboard_store_postgres::PostgresStore;
use plugboard_store_sqlite::SqliteStore;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    users: i64,
    /// Requests per measured case.
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// sqlite, postgres or both
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(
        long,
        env = "PLUGBOARD_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

const SQLITE_FILL: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
    INSERT INTO users (project_id, user_id, meta, user_id_folded, name_folded, email_folded, created_at, updated_at) \
    SELECT ?1, 'user-' || i, json_object('Email', 'user' || i || '@example.com', 'Name', 'User ' || i, 'plan', CASE WHEN i % 10 = 0 THEN 'pro' ELSE 'free' END), \
           'user-' || i, 'user ' || i, 'user' || i || '@example.com', 1700000000000 + i, 1700000000000 + i FROM n";
const SQLITE_INDEX: &str = "INSERT INTO user_meta_index (project_id, key, value, user_seq) \
    SELECT project_id, 'Email', email_folded, seq FROM users WHERE project_id = ?1 \
    UNION ALL SELECT project_id, 'Name', 'User ' || substr(user_id, 6), seq FROM users WHERE project_id = ?1 \
    UNION ALL SELECT project_id, 'plan', json_extract(meta, '$.plan'), seq FROM users WHERE project_id = ?1";
const PG_FILL: &str = "INSERT INTO users (project_id, user_id, meta, user_id_folded, name_folded, email_folded, created_at, updated_at) \
    SELECT $1, 'user-' || i, json_build_object('Email', 'user' || i || '@example.com', 'Name', 'User ' || i, 'plan', CASE WHEN i % 10 = 0 THEN 'pro' ELSE 'free' END)::text, \
           'user-' || i, 'user ' || i, 'user' || i || '@example.com', 1700000000000 + i, 1700000000000 + i FROM generate_series(1, $2) AS i";
const PG_INDEX: &str = "INSERT INTO user_meta_index (project_id, key, value, user_seq) \
    SELECT project_id, 'Email', email_folded, seq FROM users WHERE project_id = $1 \
    UNION ALL SELECT project_id, 'Name', 'User ' || substr(user_id, 6), seq FROM users WHERE project_id = $1 \
    UNION ALL SELECT project_id, 'plan', meta::json->>'plan', seq FROM users WHERE project_id = $1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if matches!(args.backend.as_str(), "sqlite" | "both") {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("dashboard.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
        let (project, key) = new_project(&store).await?;
        let started = Instant::now();
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
        sqlx::query(SQLITE_FILL)
            .bind(project.to_string())
            .bind(args.users)
            .execute(&pool)
            .await?;
        sqlx::query(SQLITE_INDEX)
            .bind(project.to_string())
            .execute(&pool)
            .await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
        println!(
            "sqlite: {} users loaded in {:.1} s",
            args.users,
            started.elapsed().as_secs_f64()
        );
        measure("sqlite", store, project, &key, &args).await?;
    }
    if matches!(args.backend.as_str(), "postgres" | "both") {
        let schema = format!("pbbench_{}", uuid::Uuid::new_v4().simple());
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect_in_schema(&args.postgres_url, &schema).await?);
        let (project, key) = new_project(&store).await?;
        let started = Instant::now();
        let pool = sqlx::PgPool::connect(&args.postgres_url).await?;
        let mut conn = pool.acquire().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut *conn)
            .await?;
        sqlx::query(PG_FILL)
            .bind(project.as_uuid())
            .bind(args.users as i32)
            .execute(&mut *conn)
            .await?;
        sqlx::query(PG_INDEX)
            .bind(project.as_uuid())
            .execute(&mut *conn)
            .await?;
        sqlx::query("ANALYZE").execute(&mut *conn).await?;
        println!(
            "postgres: {} users loaded in {:.1} s",
            args.users,
            started.elapsed().as_secs_f64()
        );
        measure("postgres", store, project, &key, &args).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A project and its secret key, made through the service as `project create` does.
async fn new_project(store: &Arc<dyn Store>) -> anyhow::Result<(ProjectId, String)> {
    let services = Services::new(store.clone(), ServiceSettings::default());
    let created = services.projects.create("dashboard-bench", None).await?;
    Ok((created.project.id, created.secret_key))
}

async fn measure(
    backend: &str,
    store: Arc<dyn Store>,
    project: ProjectId,
    key: &str,
    args: &Args,
) -> anyhow::Result<()> {
    let config = Config {
        admin_token: Some(Secret::new(uuid::Uuid::new_v4().simple().to_string())),
        workflows: WorkflowsConfig {
            worker: false,
            scheduler: false,
            ..WorkflowsConfig::default()
        },
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::start(&config, store, listener).await?;
    let base = server.base_url();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = login(&client, &base, key).await?;

    let n = args.users / 2;
    let cases = [
        ("first page", "", "limit=50".to_owned()),
        (
            "search by email",
            &*format!("q=user{n}%40"),
            format!("q=user{n}%40&limit=50"),
        ),
        (
            "metadata filter",
            "meta=plan%3Dpro",
            "meta.plan=pro&limit=50".to_owned(),
        ),
        // Nobody here holds a credential: the worst case, every user probed.
        (
            "credential INVALID",
            "credential=INVALID",
            "credentialStatus=INVALID&limit=50".to_owned(),
        ),
    ]
    .map(|(name, page, api)| (name, page.to_owned(), api));
    println!(
        "{backend}: {} requests per case, one at a time over loopback",
        args.iterations
    );
    for (name, page_query, api_query) in &cases {
        let page_url = format!("{base}/dashboard/users?{page_query}");
        let api_url = format!("{base}/api/v1/projects/{project}/users?{api_query}");
        // Warm-up (and a check that both answer what they should).
        let page = client
            .get(&page_url)
            .header("cookie", &cookie)
            .send()
            .await?;
        anyhow::ensure!(page.status() == 200, "{page_url}: {}", page.status());
        let html = page.text().await?;
        anyhow::ensure!(html.contains("match"), "{page_url} shows its total");
        let api = client.get(&api_url).bearer_auth(key).send().await?;
        anyhow::ensure!(api.status() == 200, "{api_url}: {}", api.status());
        for _ in 0..20 {
            get(&client, &page_url, Some(&cookie), None).await?;
            get(&client, &api_url, None, Some(key)).await?;
        }
        let mut pages = Vec::with_capacity(args.iterations);
        let mut apis = Vec::with_capacity(args.iterations);
        for _ in 0..args.iterations {
            pages.push(get(&client, &page_url, Some(&cookie), None).await?);
            apis.push(get(&client, &api_url, None, Some(key)).await?);
        }
        pages.sort_unstable();
        apis.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{backend}: {name:<16} page p50 {:.2} ms p99 {:.2} ms | JSON p50 {:.2} ms p99 {:.2} ms | page ÷ JSON (p50) {:.2}",
            ms(percentile(&pages, 0.5)),
            ms(percentile(&pages, 0.99)),
            ms(percentile(&apis, 0.5)),
            ms(percentile(&apis, 0.99)),
            ms(percentile(&pages, 0.5)) / ms(percentile(&apis, 0.5)),
        );
    }
    server.stop().await?;
    Ok(())
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    bearer: Option<&str>,
) -> anyhow::Result<Duration> {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let started = Instant::now();
    let response = request.send().await?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    response.bytes().await?;
    Ok(started.elapsed())
}

/// Logs in as a browser would; returns the `cookie` header value of the session.
async fn login(client: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<String> {
    let page = client.get(format!("{base}/dashboard/login")).send().await?;
    let token = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pb_login="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no login token"))?
        .to_owned();
    let done = client
        .post(format!("{base}/dashboard/login"))
        .header("cookie", format!("pb_login={token}"))
        .form(&[("key", key), ("csrf", &token)])
        .send()
        .await?;
    anyhow::ensure!(done.status() == 303, "login: {}", done.status());
    let session = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pb_session="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?;
    Ok(format!("pb_session={session}"))
}
