//! Deployed workflows and their executions, as stored. The definitions themselves are the
//! engine's business; here they are JSON documents with the facts queries need.

use serde_json::Value;
use uuid::Uuid;

use crate::{ProjectId, UnixMillis, UserId};

/// One deployed version of a workflow. Every deploy makes a new version; executions keep
/// the version they started with.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowVersion {
    pub project_id: ProjectId,
    pub workflow_id: String,
    pub version: i64,
    pub integration: String,
    /// The event name of an event-triggered workflow, for lookups by event.
    pub event: Option<String>,
    /// `event`, `request`, `schedule` or `integration_enabled`.
    pub trigger_kind: String,
    /// The whole definition, as JSON.
    pub definition: Value,
    pub created_at: UnixMillis,
}

/// Where an execution stands, in the Task History's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    /// Waiting for a worker (new, or a retry or delay that is due).
    Queued,
    /// A worker holds it.
    Executing,
    /// Waiting for a delay or a retry's backoff.
    Delayed,
    Succeeded,
    Failed,
    /// Stopped before it ran (a disconnect, a disabled workflow).
    Cancelled,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Executing => "EXECUTING",
            Self::Delayed => "DELAYED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "QUEUED" => Self::Queued,
            "EXECUTING" => Self::Executing,
            "DELAYED" => Self::Delayed,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// One run of a workflow for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub integration: String,
    /// The credential it runs with (the user's selected or default one).
    pub credential_id: Option<Uuid>,
    pub status: ExecutionStatus,
    /// What started it: `{type, name?, payload?, …}`.
    pub trigger: Value,
    /// The user's settings for the workflow when it was enqueued.
    pub settings: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// A `respond` step's `{status, body}`.
    pub response: Option<Value>,
    /// How many times a worker took it.
    pub runs: i32,
    pub next_run_at: UnixMillis,
    pub created_at: UnixMillis,
    pub started_at: Option<UnixMillis>,
    pub finished_at: Option<UnixMillis>,
}

/// How a worker leaves an execution it held.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionUpdate {
    pub status: ExecutionStatus,
    /// When a `Delayed` one is due.
    pub next_run_at: UnixMillis,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub response: Option<Value>,
    pub finished_at: Option<UnixMillis>,
    /// Written to the outbox with the update (e.g. `execution.failed`).
    pub events: Vec<crate::OutboxEvent>,
}

/// A filter over a project's executions, newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub user_id: Option<UserId>,
    /// Exact top-level metadata values of the user, ANDed (served by the metadata index).
    pub meta: Vec<(String, String)>,
    pub workflow_id: Option<String>,
    pub integration: Option<String>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<ExecutionStatus>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// Continue after this `(created_at, id)` (in the order asked for).
    pub after: Option<(UnixMillis, Uuid)>,
    /// Rows skipped before the page (for offset pagination; prefer `after`).
    pub offset: u32,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    pub limit: u32,
}
