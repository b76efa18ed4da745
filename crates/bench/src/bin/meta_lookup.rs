//! `meta.Email=<value>` lookups among 1,000,000 users, on SQLite and PostgreSQL, next to a
//! lookup by user id (the primary-key read) measured in the same run.
//!
//! cargo run --release -p plugboard-bench --bin meta_lookup -- [--users 1000000] [--backend both]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use plugboard_bench::percentile;
use plugboard_core::{Project, ProjectId, UserFilter, UserId};
use plugboard_store::Store;
use plugboard_store_postgres::PostgresStore;
use plugboard_store_sqlite::SqliteStore;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    users: i64,
    #[arg(long, default_value_t = 2_000)]
    lookups: usize,
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
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
    SELECT ?1, 'user-' || i, json_object('Email', 'user' || i || '@example.com', 'Name', 'User ' || i, 'plan', 'pro'), \
           'user-' || i, 'user ' || i, 'user' || i || '@example.com', 0, 0 FROM n";
const SQLITE_INDEX: &str = "INSERT INTO user_meta_index (project_id, key, value, user_seq) \
    SELECT project_id, 'Email', email_folded, seq FROM users WHERE project_id = ?1 \
    UNION ALL SELECT project_id, 'Name', 'User ' || substr(user_id, 6), seq FROM users WHERE project_id = ?1 \
    UNION ALL SELECT project_id, 'plan', 'pro', seq FROM users WHERE project_id = ?1";
const PG_FILL: &str = "INSERT INTO users (project_id, user_id, meta, user_id_folded, name_folded, email_folded, created_at, updated_at) \
    SELECT $1, 'user-' || i, json_build_object('Email', 'user' || i || '@example.com', 'Name', 'User ' || i, 'plan', 'pro')::text, \
           'user-' || i, 'user ' || i, 'user' || i || '@example.com', 0, 0 FROM generate_series(1, $2) AS i";
const PG_INDEX: &str = "INSERT INTO user_meta_index (project_id, key, value, user_seq) \
    SELECT project_id, 'Email', email_folded, seq FROM users WHERE project_id = $1 \
    UNION ALL SELECT project_id, 'Name', 'User ' || substr(user_id, 6), seq FROM users WHERE project_id = $1 \
    UNION ALL SELECT project_id, 'plan', 'pro', seq FROM users WHERE project_id = $1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if matches!(args.backend.as_str(), "sqlite" | "both") {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("lookup.db");
        let store = Arc::new(SqliteStore::open(&path).await?);
        let project = new_project(&*store).await?;
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
        println!(
            "sqlite: {} users loaded in {:.1} s",
            args.users,
            started.elapsed().as_secs_f64()
        );
        println!(
            "sqlite plan:\n{}",
            store.explain_meta_search(project).await?
        );
        measure("sqlite", &*store, project, &args).await?;
    }
    if matches!(args.backend.as_str(), "postgres" | "both") {
        let schema = format!("pbbench_{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(PostgresStore::connect_in_schema(&args.postgres_url, &schema).await?);
        let project = new_project(&*store).await?;
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
        println!(
            "postgres plan:\n{}",
            store.explain_meta_search(project).await?
        );
        measure("postgres", &*store, project, &args).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn new_project(store: &dyn Store) -> anyhow::Result<ProjectId> {
    let project = Project {
        id: ProjectId::new_random(),
        name: "lookup-bench".into(),
        created_at: 0,
    };
    store.create_project(&project).await?;
    Ok(project.id)
}

/// Spreads lookups over the whole id range with a fixed stride (repeatable, cache-unfriendly).
fn sample(i: usize, users: i64) -> i64 {
    (i as i64 * 7_919 % users) + 1
}

async fn measure(
    backend: &str,
    store: &dyn Store,
    project: ProjectId,
    args: &Args,
) -> anyhow::Result<()> {
    let mut by_meta = Vec::with_capacity(args.lookups);
    let mut by_id = Vec::with_capacity(args.lookups);
    for i in 0..args.lookups {
        let n = sample(i, args.users);
        let filter = UserFilter {
            meta: vec![("Email".into(), format!("user{n}@example.com"))],
            limit: 50,
            ..UserFilter::default()
        };
        let started = Instant::now();
        let page = store.list_users(project, &filter).await?;
        by_meta.push(started.elapsed());
        anyhow::ensure!(page.users.len() == 1, "expected one user for user{n}");

        let user = UserId::parse(&format!("user-{n}"))?;
        let started = Instant::now();
        let found = store.get_user(project, &user).await?;
        by_id.push(started.elapsed());
        anyhow::ensure!(found.is_some(), "user-{n} missing");
    }
    report(backend, "meta.Email lookup", &mut by_meta);
    report(backend, "by user id (baseline)", &mut by_id);
    let ratio = mean(&by_meta).as_secs_f64() / mean(&by_id).as_secs_f64();
    println!("{backend}: meta.Email lookup ÷ user-id lookup (mean): {ratio:.2}");
    Ok(())
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len().max(1) as u32
}

fn report(backend: &str, what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    println!(
        "{backend}: {what:<24} p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms  ({} lookups)",
        percentile(samples, 0.5).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3,
        mean(samples).as_secs_f64() * 1e3,
        samples.len()
    );
}
