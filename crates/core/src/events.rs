//! Lifecycle events (the transactional outbox), the webhook endpoints that receive them,
//! their deliveries and attempts, and the audit log of management actions.

use serde_json::Value;
use uuid::Uuid;

use crate::{ProjectId, UnixMillis};

/// The lifecycle events a project's webhook endpoints can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.metadata_updated",
    "user.suspended",
    "user.resumed",
    "user.deleted",
    "integration.enabled",
    "integration.disabled",
    "credential.invalid",
    "workflow.enabled",
    "workflow.disabled",
    "execution.failed",
    "entitlement.changed",
];

/// One change worth telling the SaaS app about, written in the same transaction as the
/// change itself (the outbox) and fanned out to endpoints afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Also the Standard Webhooks `webhook-id` (as `msg_<simple uuid>`), so a receiver
    /// can deduplicate retries and redeliveries.
    pub id: Uuid,
    pub project_id: ProjectId,
    pub event_type: String,
    /// The event's `data`.
    pub payload: Value,
    pub created_at: UnixMillis,
}

impl OutboxEvent {
    pub fn new(project_id: ProjectId, event_type: &str, payload: Value, now: UnixMillis) -> Self {
        debug_assert!(EVENT_TYPES.contains(&event_type), "{event_type}");
        Self {
            id: Uuid::now_v7(),
            project_id,
            event_type: event_type.to_owned(),
            payload,
            created_at: now,
        }
    }

    /// The `webhook-id` header value.
    pub fn message_id(&self) -> String {
        format!("msg_{}", self.id.simple())
    }

    /// The body every endpoint receives: `{type, timestamp, data}`.
    pub fn body(&self) -> Value {
        serde_json::json!({
            "id": self.message_id(),
            "type": self.event_type,
            "timestamp": crate::millis_to_datetime(self.created_at)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.payload,
        })
    }
}

/// Where a project's events are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub url: String,
    pub description: String,
    /// The event types it receives; empty means all.
    pub event_types: Vec<String>,
    /// The signing secret (`whsec_…`), sealed by the vault.
    pub secret_sealed: String,
    /// The secret it replaced, still signed with until `previous_secret_expires_at` so
    /// receivers can switch over without rejecting anything.
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<UnixMillis>,
    /// Set when the endpoint was turned off, by hand or after failing too often.
    pub disabled_at: Option<UnixMillis>,
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i32,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Gave up after the last attempt the retry policy allows.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PENDING" => Some(Self::Pending),
            "DELIVERED" => Some(Self::Delivered),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: UnixMillis,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A due delivery with what sending it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    pub event: OutboxEvent,
    pub endpoint: WebhookEndpoint,
}

/// One try at sending a delivery: the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub started_at: UnixMillis,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    Delivered,
    RetryAt(UnixMillis),
    GiveUp,
}

/// An attempt's outcome as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub attempt: DeliveryAttempt,
    pub next: DeliveryNext,
    /// Disable the endpoint when its failures in a row reach this many.
    pub disable_after_failures: i32,
    pub now: UnixMillis,
}

/// Which of a project's events to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// Only events older than this one (the previous page's last).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// One management action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub at: UnixMillis,
    /// Who acted: `key:<secret key id>`, `admin`, `dashboard:key:<id>`, `dashboard:admin`.
    pub actor: String,
    /// What was done, e.g. `PUT /api/v1/projects/{projectId}/users/{userId}/meta`.
    pub action: String,
    /// What it was done to, e.g. `users/u-1/meta`.
    pub target: String,
    /// SHA-256 (hex) of the target's state before and after, when it has one.
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    /// The HTTP status the action was answered with.
    pub status: i32,
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    pub actor: Option<String>,
    /// Entries whose target starts with this.
    pub target: Option<String>,
    /// Only entries older than this one (the previous page's last).
    pub before: Option<Uuid>,
    pub limit: u32,
}
