//! The store conformance suite on a real PostgreSQL server, one fresh schema per test.
//!
//! Needs `PLUGBOARD_TEST_DATABASE_URL`; the schemas (`pbt_…`) are left behind for inspection.

mod common;

use std::sync::Arc;

use plugboard_store::Store;

async fn fresh_store() -> Arc<dyn Store> {
    Arc::new(common::store_in(&common::fresh_schema()).await)
}

plugboard_store::conformance_tests!(fresh_store());
