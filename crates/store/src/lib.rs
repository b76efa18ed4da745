//! The one storage interface behind Plugboard, implemented for SQLite and PostgreSQL.
//!
//! Services depend on [`Store`] only, as an `Arc<dyn Store>`. Every implementation runs the
//! same [`conformance`] suite, so both backends behave alike.

use async_trait::async_trait;
use plugboard_core::{
    ConnectedUser, ErasedCounts, Metadata, Project, ProjectId, SecretKeyRecord, SigningKeyRecord,
    UnixMillis, UserFilter, UserId, UserPage,
};
use uuid::Uuid;

pub mod conformance;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The row changed since it was read (optimistic concurrency) or a unique value
    /// already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else from the database. Its text is for logs, never for API answers.
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user's metadata to write, with the version it was computed from.
#[derive(Debug, Clone)]
pub struct MetadataWrite<'a> {
    pub project_id: ProjectId,
    pub user_id: &'a UserId,
    pub meta: &'a Metadata,
    /// The `version` of the user row the new metadata was derived from; the write fails
    /// with [`StoreError::Conflict`] if the row has changed since.
    pub expected_version: i64,
    pub now: UnixMillis,
}

/// When a user was last seen, as recorded in memory and flushed in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSeen {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub at: UnixMillis,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database can be reached.
    async fn ping(&self) -> StoreResult<()>;

    async fn create_project(&self, project: &Project) -> StoreResult<()>;
    async fn get_project(&self, id: ProjectId) -> StoreResult<Option<Project>>;
    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// All keys of a project, revoked ones included, oldest first.
    async fn list_signing_keys(&self, project: ProjectId) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Fails with `NotFound` when the project has no such unrevoked key.
    async fn revoke_signing_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()>;

    async fn insert_secret_key(&self, key: &SecretKeyRecord) -> StoreResult<()>;
    /// The unrevoked key with this hash, whatever its project.
    async fn find_active_secret_key(&self, hash: &str) -> StoreResult<Option<SecretKeyRecord>>;
    async fn list_secret_keys(&self, project: ProjectId) -> StoreResult<Vec<SecretKeyRecord>>;
    async fn revoke_secret_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()>;

    async fn get_user(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<ConnectedUser>>;
    /// Returns the user, creating it with empty metadata if it does not exist yet.
    async fn ensure_user(
        &self,
        project: ProjectId,
        user: &UserId,
        now: UnixMillis,
    ) -> StoreResult<ConnectedUser>;
    /// Creates a user with this metadata; `Conflict` if it exists already.
    async fn create_user(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        now: UnixMillis,
    ) -> StoreResult<ConnectedUser>;
    /// Replaces a user's metadata if its version still matches.
    async fn write_metadata(&self, write: MetadataWrite<'_>) -> StoreResult<ConnectedUser>;
    async fn set_suspended(
        &self,
        project: ProjectId,
        user: &UserId,
        suspended: bool,
        now: UnixMillis,
    ) -> StoreResult<ConnectedUser>;
    /// Erases the user and everything tied to it.
    async fn delete_user(&self, project: ProjectId, user: &UserId) -> StoreResult<ErasedCounts>;
    async fn list_users(&self, project: ProjectId, filter: &UserFilter) -> StoreResult<UserPage>;
    /// Moves `last_seen_at` forward (never back) for each entry.
    async fn record_last_seen(&self, entries: &[LastSeen]) -> StoreResult<()>;
}
