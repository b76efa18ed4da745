//! The foundation's end-to-end suite: a real server on a loopback port, driven over HTTP,
//! each test once on SQLite (`…::sqlite::…`) and once on PostgreSQL (`…::postgres::…`,
//! needs `PLUGBOARD_TEST_DATABASE_URL`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audit;
mod concurrency;
mod connect;
mod dashboard;
mod entitlements;
mod integrations;
mod interop;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod metadata;
mod nodes;
mod ops;
mod search;
mod tokens;
mod users;
mod webhooks;
mod workflows;
