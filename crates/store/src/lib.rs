//! The one storage interface behind Plugboard, implemented for SQLite and PostgreSQL.
//!
//! Services depend on [`Store`] only, as an `Arc<dyn Store>`. Every implementation runs the
//! same [`conformance`] suite, so both backends behave alike.

use async_trait::async_trait;
use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, ConnectLink, ConnectReport,
    ConnectSession, ConnectSessionStatus, ConnectedUser, Credential, CredentialConfiguration,
    CredentialStatus, CredentialWithConfigurations, DashboardSession, DeliveryAttempt,
    ErasedCounts, EventFilter, Execution, ExecutionFilter, ExecutionUpdate, IntegrationKey,
    IntegrationUsage, Metadata, OutboxEvent, Project, ProjectId, ProjectIntegration, SealedColumn,
    SealedRow, SecretKeyRecord, SigningKeyRecord, UnixMillis, UserCount, UserFilter, UserId,
    UserPage, WebhookDelivery, WebhookEndpoint, WorkflowVersion,
};
use serde_json::{Map, Value};
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
    /// The user's secret metadata values, sealed together; `None` keeps the stored ones.
    pub secrets_sealed: Option<&'a str>,
    /// Written to the outbox in the same transaction.
    pub events: &'a [OutboxEvent],
}

/// When a user was last seen, as recorded in memory and flushed in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSeen {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub at: UnixMillis,
}

/// A credential's new secrets (after a token refresh or a reconnection), with the version
/// they were computed from.
#[derive(Debug, Clone)]
pub struct CredentialSecretsWrite<'a> {
    pub project_id: ProjectId,
    pub credential_id: Uuid,
    /// The new secrets document, sealed by the vault.
    pub secrets_sealed: &'a str,
    /// Replaces the stored expiry.
    pub expires_at: Option<UnixMillis>,
    /// Replaces the stored refresh time.
    pub refreshed_at: Option<UnixMillis>,
    /// The `version` of the credential the secrets were derived from; the write fails with
    /// [`StoreError::Conflict`] if the credential has changed since.
    pub expected_version: i64,
    pub now: UnixMillis,
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
    /// Returns the user, creating it with empty metadata if it does not exist yet;
    /// `created` is written to the outbox, in the same transaction, only if it was created.
    async fn ensure_user(
        &self,
        project: ProjectId,
        user: &UserId,
        now: UnixMillis,
        created: Option<&OutboxEvent>,
    ) -> StoreResult<ConnectedUser>;
    /// Creates a user with this metadata (and sealed secret values); `Conflict` if it
    /// exists already. `events` go to the outbox in the same transaction.
    async fn create_user(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        secrets_sealed: Option<&str>,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser>;
    /// The user's secret metadata values, sealed together, if it has any.
    async fn get_user_secrets(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<String>>;
    /// Replaces a user's metadata if its version still matches.
    async fn write_metadata(&self, write: MetadataWrite<'_>) -> StoreResult<ConnectedUser>;
    async fn set_suspended(
        &self,
        project: ProjectId,
        user: &UserId,
        suspended: bool,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser>;
    /// Erases the user and everything tied to it: metadata index entries, credentials and
    /// their configurations. `events` go to the outbox in the same transaction.
    async fn delete_user(
        &self,
        project: ProjectId,
        user: &UserId,
        events: &[OutboxEvent],
    ) -> StoreResult<ErasedCounts>;
    async fn list_users(&self, project: ProjectId, filter: &UserFilter) -> StoreResult<UserPage>;
    /// Moves `last_seen_at` forward (never back) for each entry.
    async fn record_last_seen(&self, entries: &[LastSeen]) -> StoreResult<()>;

    /// Turns an integration on for a project, or replaces its settings: there is one per
    /// (project, key). An update keeps the stored `id` and `created_at` (those of the
    /// argument are ignored) and returns the stored integration. `Conflict` if the `id`
    /// is already used by another integration.
    async fn upsert_project_integration(
        &self,
        integration: &ProjectIntegration,
    ) -> StoreResult<ProjectIntegration>;
    /// A project's integrations, ordered by key.
    async fn list_project_integrations(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<ProjectIntegration>>;
    async fn get_project_integration(
        &self,
        project: ProjectId,
        key: &IntegrationKey,
    ) -> StoreResult<Option<ProjectIntegration>>;
    /// The integration with this id, if it belongs to `project`.
    async fn get_project_integration_by_id(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<ProjectIntegration>>;

    /// Stores a new credential with its default configuration, in one transaction.
    /// `NotFound` when the user does not exist or the integration is not one of the
    /// credential's project; `Conflict` when the id, or the user's `external_id`, is taken.
    /// The configuration must be the default one and belong to `credential`
    /// (`Database` otherwise, as that is a caller bug).
    /// `executions` (those the connection starts) are enqueued, and `events` written to the
    /// outbox, in the same transaction.
    async fn insert_credential(
        &self,
        credential: &Credential,
        default_configuration: &CredentialConfiguration,
        executions: &[Execution],
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    /// A user's credentials, oldest first (by `created_at`, then `id`), each with its
    /// configurations (the default first, then oldest first). Read in one round trip, as it
    /// backs every `/sdk/me`.
    async fn list_credentials(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Vec<CredentialWithConfigurations>>;
    /// One credential of a user; `None` when it is another user's or another project's.
    async fn get_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
    ) -> StoreResult<Option<CredentialWithConfigurations>>;
    /// Replaces a credential's secrets if its version still matches: bumps the version,
    /// sets the status to `VALID` and the refresh failure count to 0. `Conflict` if the
    /// credential changed since `expected_version`, `NotFound` if it does not exist.
    async fn update_credential_secrets(
        &self,
        write: CredentialSecretsWrite<'_>,
    ) -> StoreResult<Credential>;
    /// Sets a credential's status and refresh failure count (bumping its version);
    /// `NotFound` if it does not exist in `project`. `events` go to the outbox in the same
    /// transaction.
    #[allow(clippy::too_many_arguments)] // the new state, its time and its events
    async fn set_credential_status(
        &self,
        project: ProjectId,
        credential_id: Uuid,
        status: CredentialStatus,
        refresh_failure_count: i32,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<Credential>;
    /// Replaces the settings given (`None` keeps the stored ones) of one configuration of
    /// a credential of `project`; `NotFound` if there is no such configuration.
    /// `executions` (those the change starts) are enqueued, and `events` written to the
    /// outbox, in the same transaction.
    #[allow(clippy::too_many_arguments)] // the settings, their time and what they start
    async fn update_configuration(
        &self,
        project: ProjectId,
        credential_id: Uuid,
        configuration_id: Uuid,
        workflow_settings: Option<Map<String, Value>>,
        shared_settings: Option<Map<String, Value>>,
        now: UnixMillis,
        executions: &[Execution],
        events: &[OutboxEvent],
    ) -> StoreResult<CredentialConfiguration>;
    /// Deletes a user's credential and its configurations; returns how many configurations
    /// went. `NotFound` when the user holds no such credential. `events` go to the outbox
    /// in the same transaction.
    async fn delete_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
        events: &[OutboxEvent],
    ) -> StoreResult<u64>;

    /// Takes the right to refresh a credential's tokens until `lease_until`, so only one
    /// process refreshes at a time. True when there was no lease, it had expired (its end
    /// is before `now`) or `holder` already held it (the lease is then extended); false
    /// when someone else holds it, or the credential does not exist. One conditional
    /// statement: no transaction is held while the caller refreshes.
    async fn try_acquire_refresh_lease(
        &self,
        credential_id: Uuid,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<bool>;
    /// Gives up `holder`'s lease on the credential; another holder's lease is left alone.
    async fn release_refresh_lease(&self, credential_id: Uuid, holder: &str) -> StoreResult<()>;

    /// Records a connect attempt. `NotFound` when its user or integration does not exist
    /// in its project.
    async fn insert_connect_session(&self, session: &ConnectSession) -> StoreResult<()>;
    /// Marks the attempt used and returns it, if it exists, is unused and has not expired
    /// at `now`; `None` otherwise. One conditional statement, so two concurrent callbacks
    /// with the same state cannot both succeed.
    async fn consume_connect_session(
        &self,
        id: Uuid,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Records how an attempt ended.
    async fn finish_connect_session(
        &self,
        id: Uuid,
        outcome: &ConnectOutcome,
        at: UnixMillis,
    ) -> StoreResult<()>;
    /// Records that the SDK learnt of the succeeded attempt `id` (whose credential is
    /// `credential`) through `via`, unless it already had another way; returns the way
    /// that holds. `None` when no such succeeded attempt exists.
    async fn claim_connect_report(
        &self,
        id: Uuid,
        credential: Uuid,
        via: ConnectReport,
    ) -> StoreResult<Option<ConnectReport>>;
    /// The user's newest attempt with this SDK session id.
    async fn find_connect_session(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Forgets the user's attempts with this SDK session id; returns how many went.
    async fn delete_connect_sessions(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<u64>;
    /// Deletes attempts and links that expired before `before`; returns how many went.
    async fn purge_expired_connect_records(&self, before: UnixMillis) -> StoreResult<u64>;

    /// Stores a one-time connect link. `NotFound` when its user or integration does not
    /// exist in its project.
    async fn insert_connect_link(&self, link: &ConnectLink) -> StoreResult<()>;
    /// The link, if it exists, is unused and has not expired; changes nothing.
    async fn find_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>>;
    /// Marks the link used and returns it, if it exists, is unused and has not expired.
    async fn consume_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>>;

    /// Up to `limit` sealed values of one column, ordered by id, after `after`.
    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SealedRow>>;
    /// Replaces a sealed value if it still is `expected`; false when it changed meanwhile
    /// (a refresh wrote new secrets, which are sealed with the current key anyway).
    async fn replace_sealed(
        &self,
        column: SealedColumn,
        id: Uuid,
        expected: &str,
        replacement: &str,
    ) -> StoreResult<bool>;

    /// Stores a new version of a workflow (one more than the newest, 1 for a new one)
    /// and makes it current. Returns the stored version.
    async fn deploy_workflow(&self, workflow: &WorkflowVersion) -> StoreResult<WorkflowVersion>;
    /// The current version of each of the project's workflows, ordered by id.
    async fn list_workflows(&self, project: ProjectId) -> StoreResult<Vec<WorkflowVersion>>;
    /// One version of a workflow; `None` for `version` means the current one.
    async fn get_workflow(
        &self,
        project: ProjectId,
        workflow_id: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<WorkflowVersion>>;

    /// Writes new executions, all or none, in one transaction. `NotFound` when a user
    /// does not exist.
    async fn enqueue_executions(&self, executions: &[Execution]) -> StoreResult<()>;
    /// Leases up to `limit` due executions (queued, or delayed and due, or held under an
    /// expired lease) to `holder` until `lease_until`, oldest due first, skipping users
    /// who already have `per_user_limit` executions under a live lease. One statement,
    /// committed at once; marks them `EXECUTING` and counts the run.
    async fn claim_executions(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
        per_user_limit: u32,
    ) -> StoreResult<Vec<Execution>>;
    /// Extends `holder`'s lease; false when it no longer holds the execution.
    async fn extend_execution_lease(
        &self,
        id: Uuid,
        holder: &str,
        lease_until: UnixMillis,
    ) -> StoreResult<bool>;
    /// Records how a run left the execution and gives up the lease; false (nothing
    /// written) when `holder` no longer holds it. The update's `events` go to the outbox
    /// in the same transaction (and only if the update was written).
    async fn release_execution(
        &self,
        id: Uuid,
        holder: &str,
        update: &ExecutionUpdate,
    ) -> StoreResult<bool>;
    /// Cancels a user's executions of these workflows that have not finished and are
    /// not under a live lease; returns how many.
    async fn cancel_executions(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow_ids: &[String],
        now: UnixMillis,
    ) -> StoreResult<u64>;
    async fn get_execution(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<Execution>>;
    async fn list_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<Vec<Execution>>;
    /// How many executions match `filter` (its page position and limit aside).
    async fn count_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<u64>;

    /// Deletes finished executions (and their journals) that ended before `before`;
    /// returns how many went.
    async fn purge_executions(&self, before: UnixMillis) -> StoreResult<u64>;
    /// Every credential of an integration of a project, each with its configurations.
    async fn list_integration_credentials(
        &self,
        project: ProjectId,
        integration: Uuid,
    ) -> StoreResult<Vec<CredentialWithConfigurations>>;
    /// The current version of every schedule-triggered workflow, in every project.
    async fn list_scheduled_workflows(&self) -> StoreResult<Vec<WorkflowVersion>>;
    /// The newest tick of a schedule that was run.
    async fn last_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
    ) -> StoreResult<Option<UnixMillis>>;
    /// Records that a tick ran and writes its executions, in one transaction; false (and
    /// nothing written) when the tick was already recorded, by any scheduler.
    async fn record_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
        tick_at: UnixMillis,
        executions: &[Execution],
        now: UnixMillis,
    ) -> StoreResult<bool>;

    /// The journal of an execution: one record (JSON) per step key.
    async fn load_step(&self, execution: Uuid, step_key: &str) -> StoreResult<Option<Value>>;
    async fn save_step(
        &self,
        execution: Uuid,
        step_key: &str,
        record: &Value,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// A project's sealed environment (its row id and sealed value), if it has one.
    async fn get_project_env(&self, project: ProjectId) -> StoreResult<Option<(Uuid, String)>>;
    /// Replaces a project's sealed environment (`id` names a new row; an existing row keeps
    /// its id).
    async fn put_project_env(
        &self,
        project: ProjectId,
        id: Uuid,
        sealed: &str,
        now: UnixMillis,
    ) -> StoreResult<()>;

    /// Every step record of an execution, in the order they were first written.
    async fn list_steps(&self, execution: Uuid) -> StoreResult<Vec<(String, Value, UnixMillis)>>;
    /// How many step records each of these executions has (absent: none).
    async fn count_steps(&self, executions: &[Uuid]) -> StoreResult<Vec<(Uuid, u64)>>;

    /// Up to `limit` projects, oldest first (for the admin's project picker).
    async fn list_projects(&self, limit: u32) -> StoreResult<Vec<Project>>;
    /// How many users match `filter` (its `limit` and `before_seq` are ignored), counted
    /// up to `cap` so that a broad filter over a large project stays cheap.
    async fn count_users(
        &self,
        project: ProjectId,
        filter: &UserFilter,
        cap: u64,
    ) -> StoreResult<UserCount>;
    /// Per integration, how many users connected it (and how many hold an `INVALID`
    /// credential of it); per workflow, how many users enabled it.
    async fn integration_usage(&self, project: ProjectId) -> StoreResult<IntegrationUsage>;

    /// Stores a new dashboard session; `Conflict` if its id hash exists.
    async fn insert_dashboard_session(&self, session: &DashboardSession) -> StoreResult<()>;
    /// The session with this id hash, if it has not expired at `now`.
    async fn get_dashboard_session(
        &self,
        id_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<DashboardSession>>;
    /// Points an admin session at a project; `NotFound` when there is no such admin session.
    async fn set_dashboard_session_project(
        &self,
        id_hash: &str,
        project: ProjectId,
    ) -> StoreResult<()>;
    /// Ends a session (logout); deleting one that does not exist is not an error.
    async fn delete_dashboard_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Deletes sessions that expired before `before`; returns how many went.
    async fn purge_dashboard_sessions(&self, before: UnixMillis) -> StoreResult<u64>;

    /// A project's policy document (entitlement rules, secret metadata keys), if set.
    async fn get_project_policy(&self, project: ProjectId) -> StoreResult<Option<Value>>;
    /// Replaces a project's policy document; `events` go to the outbox in the same
    /// transaction.
    async fn put_project_policy(
        &self,
        project: ProjectId,
        policy: &Value,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;

    /// Writes events to the outbox on their own (changes with no row of their own).
    async fn insert_events(&self, events: &[OutboxEvent]) -> StoreResult<()>;
    /// Up to `limit` events not yet fanned out to endpoints, oldest first.
    async fn unfanned_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    /// Marks an event fanned out and creates its deliveries, in one transaction; false
    /// (nothing written) when another node fanned it out first.
    async fn fan_out_event(
        &self,
        event_id: Uuid,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<bool>;
    async fn get_event(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<OutboxEvent>>;
    async fn list_events(
        &self,
        project: ProjectId,
        filter: &EventFilter,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Deletes events created before `before`, with their deliveries and attempts.
    async fn purge_events(&self, before: UnixMillis) -> StoreResult<u64>;

    /// `Conflict` if the id is taken.
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// A project's endpoints, oldest first.
    async fn list_webhook_endpoints(&self, project: ProjectId)
    -> StoreResult<Vec<WebhookEndpoint>>;
    async fn get_webhook_endpoint(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// Replaces an endpoint's settable fields (url, description, event types, secrets,
    /// disabled state, failure count); `NotFound` if it is not the project's.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// Deletes an endpoint with its deliveries and their attempts; `NotFound` if absent.
    async fn delete_webhook_endpoint(&self, project: ProjectId, id: Uuid) -> StoreResult<()>;

    /// Leases up to `limit` pending deliveries that are due, to enabled endpoints, oldest
    /// due first, to `holder` until `lease_until`.
    async fn claim_deliveries(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt in the delivery log, moves the delivery on (delivered, retry at,
    /// failed), releases the lease and counts the endpoint's failures in a row (resetting
    /// them on success, disabling the endpoint at the threshold), in one transaction.
    /// False (nothing written) when `holder` no longer holds the delivery.
    async fn record_delivery_attempt(
        &self,
        holder: &str,
        record: &AttemptRecord,
    ) -> StoreResult<bool>;
    /// An event's deliveries, oldest first.
    async fn list_deliveries(
        &self,
        project: ProjectId,
        event_id: Uuid,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// The attempts of a delivery, in order.
    async fn list_delivery_attempts(&self, delivery_id: Uuid) -> StoreResult<Vec<DeliveryAttempt>>;
    /// Sends an event again to these endpoints: each delivery (created when missing) is
    /// made pending and due at `now` with its attempt count reset. Returns how many.
    async fn redeliver_event(
        &self,
        project: ProjectId,
        event_id: Uuid,
        endpoints: &[Uuid],
        now: UnixMillis,
    ) -> StoreResult<u64>;

    async fn insert_audit_entry(&self, entry: &AuditEntry) -> StoreResult<()>;
    async fn list_audit_entries(
        &self,
        project: ProjectId,
        filter: &AuditFilter,
    ) -> StoreResult<Vec<AuditEntry>>;
}

/// How a connect attempt ended, as [`Store::finish_connect_session`] records it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectOutcome {
    Succeeded { credential_id: Uuid },
    Failed { code: String, message: String },
}

impl ConnectOutcome {
    pub fn status(&self) -> ConnectSessionStatus {
        match self {
            Self::Succeeded { .. } => ConnectSessionStatus::Succeeded,
            Self::Failed { .. } => ConnectSessionStatus::Failed,
        }
    }
}
