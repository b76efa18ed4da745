//! Conversions from PostgreSQL rows to domain values.

use plugboard_core::{
    ConnectedUser, Metadata, Project, ProjectId, SecretKeyRecord, SigningKeyRecord, UserId,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::db_err;

/// The user columns every user query returns, as a literal so queries stay `&'static str`.
macro_rules! user_columns {
    () => {
        "u.seq, u.project_id, u.user_id, u.meta, u.suspended, u.version, \
         u.created_at, u.updated_at, u.last_seen_at"
    };
}
pub(crate) use user_columns;

fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(db_err)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn project_id(row: &PgRow, column: &str) -> StoreResult<ProjectId> {
    let id: Uuid = get(row, column)?;
    Ok(ProjectId::from_uuid(id))
}

pub(crate) fn user(row: &PgRow) -> StoreResult<ConnectedUser> {
    let user_id: String = get(row, "user_id")?;
    let meta: String = get(row, "meta")?;
    let meta: Map<String, Value> = serde_json::from_str(&meta).map_err(corrupt)?;
    Ok(ConnectedUser {
        project_id: project_id(row, "project_id")?,
        user_id: UserId::parse(&user_id).map_err(corrupt)?,
        meta: Metadata::from_stored(meta),
        suspended: get(row, "suspended")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        seq: get(row, "seq")?,
        version: get(row, "version")?,
    })
}

pub(crate) fn project(row: &PgRow) -> StoreResult<Project> {
    Ok(Project {
        id: project_id(row, "id")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn signing_key(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        public_key_pem: get(row, "public_key_pem")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(crate) fn secret_key(row: &PgRow) -> StoreResult<SecretKeyRecord> {
    Ok(SecretKeyRecord {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        hash: get(row, "hash")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}
