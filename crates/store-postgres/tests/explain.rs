//! The `meta.<Key>=<value>` search must seek the metadata index, not scan it.

mod common;

use std::str::FromStr;

use plugboard_core::{Project, ProjectId};
use plugboard_store::Store;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const USERS: i32 = 2000;

/// A raw pool on the test schema, for bulk set-up the `Store` interface has no call for.
async fn raw_pool(schema: &str) -> PgPool {
    let options = PgConnectOptions::from_str(&common::database_url())
        .unwrap()
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

/// Adds `USERS` users, each with a distinct `Email` and its index row, in one statement.
async fn insert_users(pool: &PgPool, project: ProjectId) {
    sqlx::query(
        "WITH created AS ( \
             INSERT INTO users (project_id, user_id, meta, user_id_folded, email_folded, \
                                created_at, updated_at) \
             SELECT $1, 'u' || i, jsonb_build_object('Email', 'u' || i || '@x.io')::text, \
                    'u' || i, 'u' || i || '@x.io', 0, 0 \
             FROM generate_series(1, $2) AS i \
             RETURNING seq, project_id, email_folded) \
         INSERT INTO user_meta_index (project_id, key, value, user_seq) \
         SELECT project_id, 'Email', email_folded, seq FROM created",
    )
    .bind(project.as_uuid())
    .bind(USERS)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE users, user_meta_index")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn meta_search_uses_the_index_primary_key() {
    let schema = common::fresh_schema();
    let store = common::store_in(&schema).await;
    let project = Project {
        id: ProjectId::new_random(),
        name: "explain".into(),
        created_at: 0,
    };
    store.create_project(&project).await.unwrap();
    let pool = raw_pool(&schema).await;
    insert_users(&pool, project.id).await;

    let plan = store.explain_meta_search(project.id).await.unwrap();
    assert!(plan.contains("user_meta_index_pkey"), "plan:\n{plan}");
    assert!(
        !plan.contains("Seq Scan on user_meta_index"),
        "plan:\n{plan}"
    );
}
