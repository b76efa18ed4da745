//! Shared set-up for tests against a real PostgreSQL server.

use plugboard_store_postgres::PostgresStore;

/// The environment variable naming the test server.
const URL_VAR: &str = "PLUGBOARD_TEST_DATABASE_URL";

/// The test server's URL. Panics when unset: these tests must never pass by skipping.
pub fn database_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} must name a PostgreSQL database for these tests, \
             e.g. postgres://postgres@127.0.0.1:5432/test"
        )
    })
}

/// A new schema name, unique to one test.
pub fn fresh_schema() -> String {
    format!("pbt_{}", uuid::Uuid::new_v4().simple())
}

/// A store whose tables live in a schema of their own.
pub async fn store_in(schema: &str) -> PostgresStore {
    PostgresStore::connect_in_schema(&database_url(), schema)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database: {e}"))
}
