//! Plugboard's domain: the types and rules every other crate speaks, with no I/O.
//!
//! Values are parsed once at the edge (`UserId::parse`, `Metadata::from_value`, …) and
//! carried as these types afterwards, so the rest of the code never re-validates them.

pub mod connect;
pub mod dashboard;
pub mod entitlement;
pub mod events;
pub mod ids;
pub mod integration;
pub mod metadata;
pub mod project;
pub mod token;
pub mod user;
pub mod workflow;

pub use connect::{
    ConnectLink, ConnectReport, ConnectSession, ConnectSessionStatus, SealedColumn, SealedRow,
};
pub use dashboard::{
    DashboardPrincipal, DashboardSession, IntegrationUsage, IntegrationUse, UserCount,
};
pub use entitlement::{
    Access, AccessChange, CompiledPolicy, LossPolicy, PolicyError, ProjectPolicy,
};
pub use events::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, DeliveryAttempt, DeliveryNext,
    DeliveryStatus, EventFilter, OutboxEvent, WebhookDelivery, WebhookEndpoint,
};
pub use ids::{IdError, ProjectId, UserId};
pub use integration::{
    Credential, CredentialConfiguration, CredentialStatus, CredentialWithConfigurations,
    IntegrationKey, ProjectIntegration,
};
pub use metadata::{Metadata, MetadataError, MetadataLimits};
pub use project::{Project, SecretKeyRecord, SigningKeyRecord};
pub use token::{TokenClaims, TokenError};
pub use user::{ConnectedUser, ErasedCounts, UserFilter, UserPage};
pub use workflow::{Execution, ExecutionFilter, ExecutionStatus, ExecutionUpdate, WorkflowVersion};

/// Milliseconds since the Unix epoch: how every instant is stored, on both backends.
pub type UnixMillis = i64;

/// Converts stored milliseconds to a UTC date-time for display.
pub fn millis_to_datetime(ms: UnixMillis) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> UnixMillis {
    chrono::Utc::now().timestamp_millis()
}
