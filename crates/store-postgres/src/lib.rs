//! The [`Store`] interface on PostgreSQL: the backend for shared, multi-instance servers.
//!
//! It mirrors the SQLite store query for query, so both pass the same conformance suite.
//! Every statement is static SQL with bound values; the list query is assembled from
//! fixed fragments with `QueryBuilder`.

use std::str::FromStr;

use async_trait::async_trait;
use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, ConnectLink, ConnectReport,
    ConnectSession, ConnectedUser, Credential, CredentialConfiguration, CredentialStatus,
    CredentialWithConfigurations, DashboardSession, DeliveryAttempt, ErasedCounts, EventFilter,
    Execution, ExecutionFilter, ExecutionUpdate, IntegrationKey, IntegrationUsage, Metadata,
    OutboxEvent, Project, ProjectId, ProjectIntegration, SealedColumn, SealedRow, SecretKeyRecord,
    SigningKeyRecord, UnixMillis, UserCount, UserFilter, UserId, UserPage, WebhookDelivery,
    WebhookEndpoint, WorkflowVersion,
};
use plugboard_store::{
    ConnectOutcome, CredentialSecretsWrite, LastSeen, MetadataWrite, Store, StoreError, StoreResult,
};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, QueryBuilder, Row};
use uuid::Uuid;

mod connect;
mod dashboard;
mod events;
mod integrations;
mod rows;
mod users;
mod workflows;

use rows::user_columns;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Most connections one store keeps open to the server.
const MAX_CONNECTIONS: u32 = 10;

/// Plugboard's data in one PostgreSQL database (or one schema of it).
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(db_err)?;
        Self::open(options, None).await
    }

    /// Connects like [`connect`](Self::connect), but keeps every table in `schema`: it is
    /// created if missing and is the `search_path` of every pooled connection. Used to
    /// isolate tests sharing one database.
    ///
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_in_schema(url: &str, schema: &str) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)
            .map_err(db_err)?
            .options([("search_path", schema)]);
        Self::open(options, Some(schema)).await
    }

    async fn open(options: PgConnectOptions, schema: Option<&str>) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        if let Some(schema) = schema {
            create_schema(&pool, schema).await?;
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Self { pool })
    }

    /// The plan PostgreSQL picks for a `meta.Email=<value>` search (for tests and benches),
    /// as the lines of `EXPLAIN`.
    pub async fn explain_meta_search(&self, project: ProjectId) -> StoreResult<String> {
        let filter = UserFilter {
            meta: vec![("Email".into(), "x".into())],
            limit: 10,
            ..UserFilter::default()
        };
        let mut query = QueryBuilder::new("EXPLAIN ");
        users::push_list(&mut query, project, &filter);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let lines = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0).map_err(db_err))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(lines.join("\n"))
    }

    async fn fetch_user(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<ConnectedUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.project_id = $1 AND u.user_id = $2"
        ))
        .bind(project.as_uuid())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::user).transpose()
    }

    /// Inserts a user with its index rows, and (only if it was inserted) `events`, in one
    /// transaction.
    #[allow(clippy::too_many_arguments)] // the user, its time and its events
    async fn insert_user(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        secrets_sealed: Option<&str>,
        now: UnixMillis,
        if_absent: bool,
        events: &[OutboxEvent],
    ) -> StoreResult<Option<ConnectedUser>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let created =
            users::insert(&mut tx, project, user, meta, secrets_sealed, now, if_absent).await?;
        if created.is_some() {
            events::insert_events(&mut tx, events).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(created)
    }

    /// Why a conditional write on an existing row matched nothing.
    async fn missing_or_conflict(&self, project: ProjectId, user: &UserId) -> StoreError {
        match self.fetch_user(project, user).await {
            Ok(Some(_)) => StoreError::Conflict("the user changed concurrently".into()),
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// Runs a key revocation (`$1` = time, `$2` = project, `$3` = key id); `NotFound` when
    /// no unrevoked key matched.
    async fn revoke(
        &self,
        sql: &'static str,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql)
            .bind(at)
            .bind(project.as_uuid())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// Maps a unique violation to [`StoreError::Conflict`], anything else to `Database`.
fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(db.message().to_owned());
    }
    StoreError::Database(e.to_string())
}

/// Accepts only identifiers that need no quoting and mean the same in `search_path`.
fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let valid = schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "invalid schema name `{schema}`"
        )))
    }
}

async fn create_schema(pool: &PgPool, schema: &str) -> StoreResult<()> {
    // An identifier cannot be bound; `check_schema_name` admits only `[a-z0-9_]`.
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    sqlx::query(AssertSqlSafe(sql))
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_project(&self, project: &Project) -> StoreResult<()> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(project.id.as_uuid())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::project).transpose()
    }

    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let row = sqlx::query(
            "SELECT id, name, created_at FROM projects WHERE name = $1 \
             ORDER BY created_at LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::project).transpose()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (id, project_id, public_key_pem, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.id)
        .bind(key.project_id.as_uuid())
        .bind(&key.public_key_pem)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_signing_keys(&self, project: ProjectId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, project_id, public_key_pem, created_at, revoked_at FROM signing_keys \
             WHERE project_id = $1 ORDER BY created_at, id",
        )
        .bind(project.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(rows::signing_key).collect()
    }

    async fn revoke_signing_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        self.revoke(
            "UPDATE signing_keys SET revoked_at = $1 \
             WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL",
            project,
            id,
            at,
        )
        .await
    }

    async fn insert_secret_key(&self, key: &SecretKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO secret_keys (id, project_id, name, prefix, hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id)
        .bind(key.project_id.as_uuid())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn find_active_secret_key(&self, hash: &str) -> StoreResult<Option<SecretKeyRecord>> {
        let row = sqlx::query(
            "SELECT id, project_id, name, prefix, hash, created_at, revoked_at FROM secret_keys \
             WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::secret_key).transpose()
    }

    async fn list_secret_keys(&self, project: ProjectId) -> StoreResult<Vec<SecretKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, project_id, name, prefix, hash, created_at, revoked_at FROM secret_keys \
             WHERE project_id = $1 ORDER BY created_at, id",
        )
        .bind(project.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(rows::secret_key).collect()
    }

    async fn revoke_secret_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        self.revoke(
            "UPDATE secret_keys SET revoked_at = $1 \
             WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL",
            project,
            id,
            at,
        )
        .await
    }

    async fn get_user(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<ConnectedUser>> {
        self.fetch_user(project, user).await
    }

    async fn ensure_user(
        &self,
        project: ProjectId,
        user: &UserId,
        now: UnixMillis,
        created: Option<&OutboxEvent>,
    ) -> StoreResult<ConnectedUser> {
        let meta = Metadata::default();
        let events = created.map(std::slice::from_ref).unwrap_or_default();
        if let Some(created) = self
            .insert_user(project, user, &meta, None, now, true, events)
            .await?
        {
            return Ok(created);
        }
        self.fetch_user(project, user)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn create_user(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        secrets_sealed: Option<&str>,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser> {
        self.insert_user(project, user, meta, secrets_sealed, now, false, events)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn get_user_secrets(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<String>> {
        let sealed: Option<Option<String>> = sqlx::query_scalar(
            "SELECT secrets_sealed FROM users WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project.as_uuid())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(sealed.flatten())
    }

    async fn write_metadata(&self, write: MetadataWrite<'_>) -> StoreResult<ConnectedUser> {
        let (project, user) = (write.project_id, write.user_id);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let updated = users::update_meta(
            &mut tx,
            project,
            user,
            write.meta,
            write.secrets_sealed,
            write.expected_version,
            write.now,
        )
        .await?;
        let Some(updated) = updated else {
            drop(tx);
            return Err(self.missing_or_conflict(project, user).await);
        };
        users::replace_index(&mut tx, project, updated.seq, write.meta).await?;
        events::insert_events(&mut tx, write.events).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(updated)
    }

    async fn set_suspended(
        &self,
        project: ProjectId,
        user: &UserId,
        suspended: bool,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row = sqlx::query(concat!(
            "UPDATE users u SET suspended = $1, updated_at = $2, version = u.version + 1 \
             WHERE u.project_id = $3 AND u.user_id = $4 RETURNING ",
            user_columns!()
        ))
        .bind(suspended)
        .bind(now)
        .bind(project.as_uuid())
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let updated = row
            .as_ref()
            .map(rows::user)
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(updated)
    }

    async fn delete_user(
        &self,
        project: ProjectId,
        user: &UserId,
        events: &[OutboxEvent],
    ) -> StoreResult<ErasedCounts> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM users WHERE project_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(project.as_uuid())
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let seq = seq.ok_or(StoreError::NotFound)?;
        let (credentials, configurations) =
            integrations::delete_user_credentials(&mut tx, seq).await?;
        let index = users::delete_index(&mut tx, seq).await?;
        let deleted = sqlx::query("DELETE FROM users WHERE seq = $1")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // The events outlive the user: `events` has no reference to `users`.
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ErasedCounts {
            users: deleted.rows_affected(),
            metadata_index_entries: index,
            credentials,
            configurations,
        })
    }

    async fn list_users(&self, project: ProjectId, filter: &UserFilter) -> StoreResult<UserPage> {
        let mut query = QueryBuilder::new("");
        users::push_list(&mut query, project, filter);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let mut users = rows
            .iter()
            .map(rows::user)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_before_seq = if users.len() > filter.limit {
            users.truncate(filter.limit);
            users.last().map(|u| u.seq)
        } else {
            None
        };
        Ok(UserPage {
            users,
            next_before_seq,
        })
    }

    async fn record_last_seen(&self, entries: &[LastSeen]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        users::record_last_seen(&self.pool, entries).await
    }

    async fn upsert_project_integration(
        &self,
        integration: &ProjectIntegration,
    ) -> StoreResult<ProjectIntegration> {
        integrations::upsert_integration(&self.pool, integration).await
    }

    async fn list_project_integrations(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<ProjectIntegration>> {
        integrations::list_integrations(&self.pool, project).await
    }

    async fn get_project_integration(
        &self,
        project: ProjectId,
        key: &IntegrationKey,
    ) -> StoreResult<Option<ProjectIntegration>> {
        integrations::get_integration(&self.pool, project, key).await
    }

    async fn get_project_integration_by_id(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<ProjectIntegration>> {
        integrations::get_integration_by_id(&self.pool, project, id).await
    }

    async fn insert_credential(
        &self,
        credential: &Credential,
        default_configuration: &CredentialConfiguration,
        executions: &[Execution],
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        integrations::insert_credential(
            &self.pool,
            credential,
            default_configuration,
            executions,
            events,
        )
        .await
    }

    async fn list_credentials(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Vec<CredentialWithConfigurations>> {
        integrations::list_credentials(&self.pool, project, user).await
    }

    async fn get_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
    ) -> StoreResult<Option<CredentialWithConfigurations>> {
        integrations::get_credential(&self.pool, project, user, credential_id).await
    }

    async fn update_credential_secrets(
        &self,
        write: CredentialSecretsWrite<'_>,
    ) -> StoreResult<Credential> {
        integrations::update_secrets(&self.pool, write).await
    }

    async fn set_credential_status(
        &self,
        project: ProjectId,
        credential_id: Uuid,
        status: CredentialStatus,
        refresh_failure_count: i32,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<Credential> {
        integrations::set_status(
            &self.pool,
            project,
            credential_id,
            status,
            refresh_failure_count,
            now,
            events,
        )
        .await
    }

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
    ) -> StoreResult<CredentialConfiguration> {
        integrations::update_configuration(
            &self.pool,
            project,
            credential_id,
            configuration_id,
            workflow_settings.as_ref(),
            shared_settings.as_ref(),
            now,
            executions,
            events,
        )
        .await
    }

    async fn delete_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
        events: &[OutboxEvent],
    ) -> StoreResult<u64> {
        integrations::delete_credential(&self.pool, project, user, credential_id, events).await
    }

    async fn try_acquire_refresh_lease(
        &self,
        credential_id: Uuid,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<bool> {
        integrations::try_acquire_lease(&self.pool, credential_id, holder, now, lease_until).await
    }

    async fn release_refresh_lease(&self, credential_id: Uuid, holder: &str) -> StoreResult<()> {
        integrations::release_lease(&self.pool, credential_id, holder).await
    }

    async fn insert_connect_session(&self, session: &ConnectSession) -> StoreResult<()> {
        connect::insert_session(&self.pool, session).await
    }

    async fn consume_connect_session(
        &self,
        id: Uuid,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectSession>> {
        connect::consume_session(&self.pool, id, now).await
    }

    async fn finish_connect_session(
        &self,
        id: Uuid,
        outcome: &ConnectOutcome,
        at: UnixMillis,
    ) -> StoreResult<()> {
        connect::finish_session(&self.pool, id, outcome, at).await
    }

    async fn claim_connect_report(
        &self,
        id: Uuid,
        credential: Uuid,
        via: ConnectReport,
    ) -> StoreResult<Option<ConnectReport>> {
        connect::claim_report(&self.pool, id, credential, via).await
    }

    async fn find_connect_session(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<Option<ConnectSession>> {
        connect::find_session(&self.pool, project, user, client_session_id).await
    }

    async fn delete_connect_sessions(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<u64> {
        connect::delete_sessions(&self.pool, project, user, client_session_id).await
    }

    async fn purge_expired_connect_records(&self, before: UnixMillis) -> StoreResult<u64> {
        connect::purge_expired(&self.pool, before).await
    }

    async fn insert_connect_link(&self, link: &ConnectLink) -> StoreResult<()> {
        connect::insert_link(&self.pool, link).await
    }

    async fn find_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>> {
        connect::find_link(&self.pool, token_hash, now).await
    }

    async fn consume_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>> {
        connect::consume_link(&self.pool, token_hash, now).await
    }

    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SealedRow>> {
        connect::list_sealed(&self.pool, column, after, limit).await
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        id: Uuid,
        expected: &str,
        replacement: &str,
    ) -> StoreResult<bool> {
        connect::replace_sealed(&self.pool, column, id, expected, replacement).await
    }

    async fn deploy_workflow(&self, workflow: &WorkflowVersion) -> StoreResult<WorkflowVersion> {
        workflows::deploy(&self.pool, workflow).await
    }

    async fn list_workflows(&self, project: ProjectId) -> StoreResult<Vec<WorkflowVersion>> {
        workflows::list(&self.pool, project).await
    }

    async fn get_workflow(
        &self,
        project: ProjectId,
        workflow_id: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<WorkflowVersion>> {
        workflows::get(&self.pool, project, workflow_id, version).await
    }

    async fn enqueue_executions(&self, executions: &[Execution]) -> StoreResult<()> {
        workflows::enqueue(&self.pool, executions).await
    }

    async fn claim_executions(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
        per_user_limit: u32,
    ) -> StoreResult<Vec<Execution>> {
        workflows::claim(&self.pool, holder, now, lease_until, limit, per_user_limit).await
    }

    async fn extend_execution_lease(
        &self,
        id: Uuid,
        holder: &str,
        lease_until: UnixMillis,
    ) -> StoreResult<bool> {
        workflows::extend_lease(&self.pool, id, holder, lease_until).await
    }

    async fn release_execution(
        &self,
        id: Uuid,
        holder: &str,
        update: &ExecutionUpdate,
    ) -> StoreResult<bool> {
        workflows::release(&self.pool, id, holder, update).await
    }

    async fn cancel_executions(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow_ids: &[String],
        now: UnixMillis,
    ) -> StoreResult<u64> {
        workflows::cancel(&self.pool, project, user, workflow_ids, now).await
    }

    async fn get_execution(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<Execution>> {
        workflows::get_execution(&self.pool, project, id).await
    }

    async fn list_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<Vec<Execution>> {
        workflows::list_executions(&self.pool, project, filter).await
    }

    async fn count_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<u64> {
        workflows::count_executions(&self.pool, project, filter).await
    }

    async fn load_step(&self, execution: Uuid, step_key: &str) -> StoreResult<Option<Value>> {
        workflows::load_step(&self.pool, execution, step_key).await
    }

    async fn save_step(
        &self,
        execution: Uuid,
        step_key: &str,
        record: &Value,
        now: UnixMillis,
    ) -> StoreResult<()> {
        workflows::save_step(&self.pool, execution, step_key, record, now).await
    }

    async fn get_project_env(&self, project: ProjectId) -> StoreResult<Option<(Uuid, String)>> {
        connect::get_project_env(&self.pool, project).await
    }

    async fn put_project_env(
        &self,
        project: ProjectId,
        id: Uuid,
        sealed: &str,
        now: UnixMillis,
    ) -> StoreResult<()> {
        connect::put_project_env(&self.pool, project, id, sealed, now).await
    }

    async fn count_steps(&self, executions: &[Uuid]) -> StoreResult<Vec<(Uuid, u64)>> {
        workflows::count_steps(&self.pool, executions).await
    }

    async fn list_steps(&self, execution: Uuid) -> StoreResult<Vec<(String, Value, UnixMillis)>> {
        workflows::list_steps(&self.pool, execution).await
    }

    async fn list_projects(&self, limit: u32) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM projects ORDER BY created_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(rows::project).collect()
    }

    async fn count_users(
        &self,
        project: ProjectId,
        filter: &UserFilter,
        cap: u64,
    ) -> StoreResult<UserCount> {
        dashboard::count_users(&self.pool, project, filter, cap).await
    }

    async fn integration_usage(&self, project: ProjectId) -> StoreResult<IntegrationUsage> {
        dashboard::integration_usage(&self.pool, project).await
    }

    async fn insert_dashboard_session(&self, session: &DashboardSession) -> StoreResult<()> {
        dashboard::insert_session(&self.pool, session).await
    }

    async fn get_dashboard_session(
        &self,
        id_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<DashboardSession>> {
        dashboard::get_session(&self.pool, id_hash, now).await
    }

    async fn set_dashboard_session_project(
        &self,
        id_hash: &str,
        project: ProjectId,
    ) -> StoreResult<()> {
        dashboard::set_session_project(&self.pool, id_hash, project).await
    }

    async fn delete_dashboard_session(&self, id_hash: &str) -> StoreResult<()> {
        dashboard::delete_session(&self.pool, id_hash).await
    }

    async fn purge_dashboard_sessions(&self, before: UnixMillis) -> StoreResult<u64> {
        dashboard::purge_sessions(&self.pool, before).await
    }

    async fn list_integration_credentials(
        &self,
        project: ProjectId,
        integration: Uuid,
    ) -> StoreResult<Vec<CredentialWithConfigurations>> {
        integrations::list_integration_credentials(&self.pool, project, integration).await
    }

    async fn list_scheduled_workflows(&self) -> StoreResult<Vec<WorkflowVersion>> {
        workflows::scheduled(&self.pool).await
    }

    async fn last_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
    ) -> StoreResult<Option<UnixMillis>> {
        workflows::last_tick(&self.pool, project, workflow_id).await
    }

    async fn record_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
        tick_at: UnixMillis,
        executions: &[Execution],
        now: UnixMillis,
    ) -> StoreResult<bool> {
        workflows::record_tick(&self.pool, project, workflow_id, tick_at, executions, now).await
    }

    async fn purge_executions(&self, before: UnixMillis) -> StoreResult<u64> {
        workflows::purge(&self.pool, before).await
    }

    async fn get_project_policy(&self, project: ProjectId) -> StoreResult<Option<Value>> {
        events::get_policy(&self.pool, project).await
    }

    async fn put_project_policy(
        &self,
        project: ProjectId,
        policy: &Value,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        events::put_policy(&self.pool, project, policy, now, events).await
    }

    async fn insert_events(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        events::insert_events_alone(&self.pool, events).await
    }

    async fn unfanned_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        events::unfanned(&self.pool, limit).await
    }

    async fn fan_out_event(
        &self,
        event_id: Uuid,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<bool> {
        events::fan_out(&self.pool, event_id, deliveries).await
    }

    async fn get_event(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<OutboxEvent>> {
        events::get_event(&self.pool, project, id).await
    }

    async fn list_events(
        &self,
        project: ProjectId,
        filter: &EventFilter,
    ) -> StoreResult<Vec<OutboxEvent>> {
        events::list_events(&self.pool, project, filter).await
    }

    async fn purge_events(&self, before: UnixMillis) -> StoreResult<u64> {
        events::purge_events(&self.pool, before).await
    }

    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        events::insert_endpoint(&self.pool, endpoint).await
    }

    async fn list_webhook_endpoints(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        events::list_endpoints(&self.pool, project).await
    }

    async fn get_webhook_endpoint(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        events::get_endpoint(&self.pool, project, id).await
    }

    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        events::update_endpoint(&self.pool, endpoint).await
    }

    async fn delete_webhook_endpoint(&self, project: ProjectId, id: Uuid) -> StoreResult<()> {
        events::delete_endpoint(&self.pool, project, id).await
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        events::claim_deliveries(&self.pool, holder, now, lease_until, limit).await
    }

    async fn record_delivery_attempt(
        &self,
        holder: &str,
        record: &AttemptRecord,
    ) -> StoreResult<bool> {
        events::record_attempt(&self.pool, holder, record).await
    }

    async fn list_deliveries(
        &self,
        project: ProjectId,
        event_id: Uuid,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        events::list_deliveries(&self.pool, project, event_id).await
    }

    async fn list_delivery_attempts(&self, delivery_id: Uuid) -> StoreResult<Vec<DeliveryAttempt>> {
        events::list_attempts(&self.pool, delivery_id).await
    }

    async fn redeliver_event(
        &self,
        project: ProjectId,
        event_id: Uuid,
        endpoints: &[Uuid],
        now: UnixMillis,
    ) -> StoreResult<u64> {
        events::redeliver(&self.pool, project, event_id, endpoints, now).await
    }

    async fn insert_audit_entry(&self, entry: &AuditEntry) -> StoreResult<()> {
        events::insert_audit(&self.pool, entry).await
    }

    async fn list_audit_entries(
        &self,
        project: ProjectId,
        filter: &AuditFilter,
    ) -> StoreResult<Vec<AuditEntry>> {
        events::list_audit(&self.pool, project, filter).await
    }
}
