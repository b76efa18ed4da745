//! What the dashboard stores and the aggregate views it reads.

use uuid::Uuid;

use crate::{ProjectId, UnixMillis};

/// Who a dashboard session acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DashboardPrincipal {
    /// Logged in with the admin token; `project` is the one picked (none yet after login).
    Admin { project: Option<ProjectId> },
    /// Logged in with one of a project's secret keys; only that project is reachable.
    SecretKey { project: ProjectId, key_id: Uuid },
}

impl DashboardPrincipal {
    /// The project the session currently works on.
    pub fn project(&self) -> Option<ProjectId> {
        match self {
            Self::Admin { project } => *project,
            Self::SecretKey { project, .. } => Some(*project),
        }
    }
}

/// A logged-in dashboard session. Only a hash of the session id (the cookie's value) is
/// stored, so a database leak does not hand out live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSession {
    /// SHA-256 (hex) of the random session id.
    pub id_hash: String,
    pub principal: DashboardPrincipal,
    /// The token every state-changing form of this session must carry.
    pub csrf_token: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// How many users a filter matches, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCount {
    /// The number of matching users, at most the cap.
    pub count: u64,
    /// True when more users than the cap match (`count` is then the cap).
    pub capped: bool,
}

/// How a project's integrations and workflows are used by its connected users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationUsage {
    pub integrations: Vec<IntegrationUse>,
    /// `(workflow id, users who enabled it)`, ordered by workflow id; workflows nobody
    /// enabled are absent.
    pub workflows: Vec<(String, u64)>,
}

/// The users of one project integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationUse {
    pub integration_id: Uuid,
    /// Users holding at least one credential of it.
    pub users: u64,
    /// Users holding at least one `INVALID` credential of it.
    pub invalid_users: u64,
}
