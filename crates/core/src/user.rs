use crate::{Metadata, ProjectId, UnixMillis, UserId};

/// A connected user: one of the SaaS's own users (or companies) as Plugboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedUser {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub meta: Metadata,
    /// A suspended user keeps its data, but every SDK call is refused.
    pub suspended: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub last_seen_at: Option<UnixMillis>,
    /// Creation order within the store; newer users have larger values. Pagination
    /// cursors are built from it, so pages stay stable while users are added.
    pub seq: i64,
    /// Bumped by every write to the row; metadata updates are conditional on it so two
    /// concurrent patches never lose each other's changes.
    pub version: i64,
}

/// Which users to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Case-insensitive prefix of the user id, `Name` or `Email`.
    pub q: Option<String>,
    /// Exact matches on top-level scalar metadata values; all must hold.
    pub meta: Vec<(String, String)>,
    pub suspended: Option<bool>,
    /// Only users holding a credential of this project integration (its id).
    pub integration: Option<uuid::Uuid>,
    /// Only users holding a credential in this status (of `integration`, when given).
    pub credential_status: Option<crate::CredentialStatus>,
    pub limit: usize,
    /// Only users strictly older than this `seq` (the previous page's last user).
    pub before_seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<ConnectedUser>,
    /// The `seq` to continue from, when more users may follow.
    pub next_before_seq: Option<i64>,
}

/// Counts of what erasing a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasedCounts {
    pub users: u64,
    pub metadata_index_entries: u64,
    /// The user's connected accounts.
    pub credentials: u64,
    /// The configurations of those accounts.
    pub configurations: u64,
}

/// Lower-cased text used by the case-insensitive prefix search `q`.
pub fn search_fold(text: &str) -> String {
    text.to_lowercase()
}
