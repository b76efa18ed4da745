//! `meta.<Key>=<value>` search must be an index seek, never a scan of users.

use plugboard_core::{Project, ProjectId};
use plugboard_store::Store;
use plugboard_store_sqlite::SqliteStore;

#[tokio::test]
async fn meta_search_seeks_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("plan.db"))
        .await
        .unwrap();
    let project = Project {
        id: ProjectId::new_random(),
        name: "plan".into(),
        created_at: 0,
    };
    store.create_project(&project).await.unwrap();
    let plan = store.explain_meta_search(project.id).await.unwrap();
    assert!(
        plan.contains("SEARCH m0 USING PRIMARY KEY (project_id=? AND key=? AND value=?)"),
        "{plan}"
    );
    assert!(
        plan.contains("SEARCH u USING INTEGER PRIMARY KEY"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
}
