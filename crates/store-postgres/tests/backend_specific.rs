//! PostgreSQL-only behaviour the shared conformance suite does not reach.

mod common;

use plugboard_core::{Project, ProjectId, UserId};
use plugboard_store::{LastSeen, Store, StoreError};
use plugboard_store_postgres::PostgresStore;

#[tokio::test]
async fn one_batch_may_name_a_user_twice() {
    let store = common::store_in(&common::fresh_schema()).await;
    let project = Project {
        id: ProjectId::new_random(),
        name: "p".into(),
        created_at: 0,
    };
    store.create_project(&project).await.unwrap();
    let user = UserId::parse("u").unwrap();
    store.ensure_user(project.id, &user, 0, None).await.unwrap();
    let seen = |at| LastSeen {
        project_id: project.id,
        user_id: user.clone(),
        at,
    };
    store
        .record_last_seen(&[seen(30), seen(50), seen(10)])
        .await
        .unwrap();
    let stored = store.get_user(project.id, &user).await.unwrap().unwrap();
    assert_eq!(stored.last_seen_at, Some(50));
}

#[tokio::test]
async fn schema_names_must_be_plain_identifiers() {
    for bad in [
        "",
        "Upper",
        "1st",
        "a-b",
        "x\"; DROP TABLE users; --",
        &"a".repeat(64),
    ] {
        let result = PostgresStore::connect_in_schema(&common::database_url(), bad).await;
        assert!(
            matches!(result, Err(StoreError::Database(_))),
            "`{bad}` was accepted"
        );
    }
}
