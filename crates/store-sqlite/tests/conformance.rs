//! The store conformance suite on a real SQLite file, one fresh file per test.

use std::sync::Arc;

use plugboard_store::Store;
use plugboard_store_sqlite::SqliteStore;

async fn fresh_store() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("plugboard.db"))
        .await
        .unwrap();
    // The directory must outlive the test; leaking it keeps the file until the process ends.
    std::mem::forget(dir);
    Arc::new(store)
}

plugboard_store::conformance_tests!(fresh_store());
