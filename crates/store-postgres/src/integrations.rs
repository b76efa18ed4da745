//! The SQL behind project integrations, credentials and credential configurations.
//!
//! Conditional writes (credential versions, refresh leases) are single statements whose
//! WHERE clause PostgreSQL re-checks against the latest row version after waiting for a
//! concurrent writer, so no transaction is held across a token refresh.

use plugboard_core::{
    Credential, CredentialConfiguration, CredentialStatus, CredentialWithConfigurations, Execution,
    IntegrationKey, OutboxEvent, ProjectId, ProjectIntegration, UnixMillis, UserId,
};
use plugboard_store::{CredentialSecretsWrite, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::db_err;
use crate::rows::{self, configuration_columns, credential_columns, integration_columns};

/// A user's credentials joined with their configurations (`$1` project, `$2` user id),
/// followed by `$tail`.
macro_rules! select_user_credentials {
    ($tail:literal) => {
        concat!(
            "SELECT ",
            credential_columns!(),
            ", ",
            configuration_columns!("cf."),
            " FROM users u \
             JOIN credentials c ON c.project_id = u.project_id AND c.user_seq = u.seq \
             LEFT JOIN credential_configurations cf ON cf.credential_id = c.id \
             WHERE u.project_id = $1 AND u.user_id = $2",
            $tail
        )
    };
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn map_text(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

pub(crate) async fn upsert_integration(
    pool: &PgPool,
    i: &ProjectIntegration,
) -> StoreResult<ProjectIntegration> {
    let scopes = i
        .scopes
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(corrupt)?;
    let row = sqlx::query(concat!(
        "INSERT INTO project_integrations (",
        integration_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (project_id, key) DO UPDATE SET \
         oauth_client_id = EXCLUDED.oauth_client_id, \
         oauth_client_secret_sealed = EXCLUDED.oauth_client_secret_sealed, \
         scopes = EXCLUDED.scopes, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at, \
         custom_spec = EXCLUDED.custom_spec \
         RETURNING ",
        integration_columns!()
    ))
    .bind(i.id)
    .bind(i.project_id.as_uuid())
    .bind(i.key.as_str())
    .bind(i.oauth_client_id.as_deref())
    .bind(i.oauth_client_secret_sealed.as_deref())
    .bind(scopes)
    .bind(i.active)
    .bind(i.created_at)
    .bind(i.updated_at)
    .bind(i.custom_spec.as_deref())
    .fetch_one(pool)
    .await
    .map_err(db_err)?;
    rows::integration(&row)
}

pub(crate) async fn list_integrations(
    pool: &PgPool,
    project: ProjectId,
) -> StoreResult<Vec<ProjectIntegration>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = $1 ORDER BY key"
    ))
    .bind(project.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    found.iter().map(rows::integration).collect()
}

pub(crate) async fn get_integration(
    pool: &PgPool,
    project: ProjectId,
    key: &IntegrationKey,
) -> StoreResult<Option<ProjectIntegration>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = $1 AND key = $2"
    ))
    .bind(project.as_uuid())
    .bind(key.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(rows::integration).transpose()
}

pub(crate) async fn get_integration_by_id(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<ProjectIntegration>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = $1 AND id = $2"
    ))
    .bind(project.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(rows::integration).transpose()
}

pub(crate) async fn insert_credential(
    pool: &PgPool,
    c: &Credential,
    default: &CredentialConfiguration,
    executions: &[Execution],
    events: &[OutboxEvent],
) -> StoreResult<()> {
    if default.credential_id != c.id || !default.is_default {
        return Err(StoreError::Database(
            "a new credential needs its own default configuration".into(),
        ));
    }
    let mut tx = pool.begin().await.map_err(db_err)?;
    // The user and the integration are looked up by the insert itself: nothing is
    // inserted unless both exist in the credential's project.
    let inserted = sqlx::query(
        "INSERT INTO credentials (id, project_id, user_seq, integration_id, status, provider_id, \
         provider_data, secrets_sealed, expires_at, refresh_failure_count, external_id, \
         created_at, updated_at, refreshed_at, version) \
         SELECT $1, u.project_id, u.seq, i.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = $13 AND u.user_id = $14 AND i.id = $15",
    )
    .bind(c.id)
    .bind(c.status.as_str())
    .bind(c.provider_id.as_deref())
    .bind(map_text(&c.provider_data))
    .bind(&c.secrets_sealed)
    .bind(c.expires_at)
    .bind(c.refresh_failure_count)
    .bind(c.external_id.as_deref())
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.refreshed_at)
    .bind(c.version)
    .bind(c.project_id.as_uuid())
    .bind(c.user_id.as_str())
    .bind(c.integration_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    insert_configuration(&mut tx, default).await?;
    crate::workflows::insert_executions(&mut tx, executions).await?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

async fn insert_configuration(
    conn: &mut PgConnection,
    cf: &CredentialConfiguration,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO credential_configurations (id, credential_id, is_default, workflow_settings, \
         shared_settings, external_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(cf.id)
    .bind(cf.credential_id)
    .bind(cf.is_default)
    .bind(map_text(&cf.workflow_settings))
    .bind(map_text(&cf.shared_settings))
    .bind(cf.external_id.as_deref())
    .bind(cf.created_at)
    .bind(cf.updated_at)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_credentials(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let found = sqlx::query(select_user_credentials!(
        " ORDER BY c.created_at, c.id, cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.as_uuid())
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows::credentials_with_configurations(&found)
}

pub(crate) async fn list_integration_credentials(
    pool: &PgPool,
    project: ProjectId,
    integration: Uuid,
) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        credential_columns!(),
        ", ",
        configuration_columns!("cf."),
        " FROM credentials c JOIN users u ON u.seq = c.user_seq \
         LEFT JOIN credential_configurations cf ON cf.credential_id = c.id \
         WHERE c.project_id = $1 AND c.integration_id = $2 \
         ORDER BY c.created_at, c.id, cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.as_uuid())
    .bind(integration)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows::credentials_with_configurations(&found)
}

pub(crate) async fn get_credential(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
    id: Uuid,
) -> StoreResult<Option<CredentialWithConfigurations>> {
    let found = sqlx::query(select_user_credentials!(
        " AND c.id = $3 ORDER BY cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.as_uuid())
    .bind(user.as_str())
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows::credentials_with_configurations(&found)?.pop())
}

/// Whether a credential with this id exists in `project`.
async fn credential_exists(
    executor: impl PgExecutor<'_>,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM credentials WHERE project_id = $1 AND id = $2")
            .bind(project.as_uuid())
            .bind(id)
            .fetch_optional(executor)
            .await
            .map_err(db_err)?;
    Ok(found.is_some())
}

pub(crate) async fn update_secrets(
    pool: &PgPool,
    w: CredentialSecretsWrite<'_>,
) -> StoreResult<Credential> {
    let row = sqlx::query(concat!(
        "UPDATE credentials c SET secrets_sealed = $1, expires_at = $2, refreshed_at = $3, \
         status = 'VALID', refresh_failure_count = 0, updated_at = $4, version = c.version + 1 \
         FROM users u WHERE u.seq = c.user_seq \
         AND c.project_id = $5 AND c.id = $6 AND c.version = $7 RETURNING ",
        credential_columns!()
    ))
    .bind(w.secrets_sealed)
    .bind(w.expires_at)
    .bind(w.refreshed_at)
    .bind(w.now)
    .bind(w.project_id.as_uuid())
    .bind(w.credential_id)
    .bind(w.expected_version)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    match row {
        Some(row) => rows::credential(&row),
        None if credential_exists(pool, w.project_id, w.credential_id).await? => Err(
            StoreError::Conflict("the credential changed concurrently".into()),
        ),
        None => Err(StoreError::NotFound),
    }
}

pub(crate) async fn set_status(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
    status: CredentialStatus,
    refresh_failure_count: i32,
    now: UnixMillis,
    events: &[OutboxEvent],
) -> StoreResult<Credential> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = sqlx::query(concat!(
        "UPDATE credentials c SET status = $1, refresh_failure_count = $2, updated_at = $3, \
         version = c.version + 1 FROM users u WHERE u.seq = c.user_seq \
         AND c.project_id = $4 AND c.id = $5 RETURNING ",
        credential_columns!()
    ))
    .bind(status.as_str())
    .bind(refresh_failure_count)
    .bind(now)
    .bind(project.as_uuid())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let updated = row
        .as_ref()
        .map(rows::credential)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(updated)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn update_configuration(
    pool: &PgPool,
    project: ProjectId,
    credential_id: Uuid,
    configuration_id: Uuid,
    workflow_settings: Option<&Map<String, Value>>,
    shared_settings: Option<&Map<String, Value>>,
    now: UnixMillis,
    executions: &[Execution],
    events: &[OutboxEvent],
) -> StoreResult<CredentialConfiguration> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = sqlx::query(concat!(
        "UPDATE credential_configurations SET \
         workflow_settings = COALESCE($1, workflow_settings), \
         shared_settings = COALESCE($2, shared_settings), updated_at = $3 \
         WHERE id = $4 AND credential_id = $5 \
         AND EXISTS (SELECT 1 FROM credentials WHERE id = $5 AND project_id = $6) \
         RETURNING ",
        configuration_columns!("")
    ))
    .bind(workflow_settings.map(map_text))
    .bind(shared_settings.map(map_text))
    .bind(now)
    .bind(configuration_id)
    .bind(credential_id)
    .bind(project.as_uuid())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let updated = match row {
        Some(row) => rows::configuration(&row)?.ok_or(StoreError::NotFound)?,
        None => return Err(StoreError::NotFound),
    };
    crate::workflows::insert_executions(&mut tx, executions).await?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(updated)
}

pub(crate) async fn delete_credential(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
    id: Uuid,
    events: &[OutboxEvent],
) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let found: Option<Uuid> = sqlx::query_scalar(
        "SELECT c.id FROM credentials c JOIN users u ON u.seq = c.user_seq \
         WHERE c.project_id = $1 AND c.id = $2 AND u.project_id = $1 AND u.user_id = $3 \
         FOR UPDATE OF c",
    )
    .bind(project.as_uuid())
    .bind(id)
    .bind(user.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let found = found.ok_or(StoreError::NotFound)?;
    let configurations =
        sqlx::query("DELETE FROM credential_configurations WHERE credential_id = $1")
            .bind(found)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    sqlx::query("DELETE FROM credentials WHERE id = $1")
        .bind(found)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(configurations.rows_affected())
}

/// Deletes the credentials of the user with this `seq` and their configurations; returns
/// (credentials, configurations) deleted.
pub(crate) async fn delete_user_credentials(
    conn: &mut PgConnection,
    seq: i64,
) -> StoreResult<(u64, u64)> {
    let configurations = sqlx::query(
        "DELETE FROM credential_configurations \
         WHERE credential_id IN (SELECT id FROM credentials WHERE user_seq = $1)",
    )
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let credentials = sqlx::query("DELETE FROM credentials WHERE user_seq = $1")
        .bind(seq)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok((credentials.rows_affected(), configurations.rows_affected()))
}

pub(crate) async fn try_acquire_lease(
    pool: &PgPool,
    id: Uuid,
    holder: &str,
    now: UnixMillis,
    until: UnixMillis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE credentials SET refresh_lease_holder = $1, refresh_lease_until = $2 \
         WHERE id = $3 AND (refresh_lease_until IS NULL OR refresh_lease_until < $4 \
         OR refresh_lease_holder = $1)",
    )
    .bind(holder)
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn release_lease(pool: &PgPool, id: Uuid, holder: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE credentials SET refresh_lease_holder = NULL, refresh_lease_until = NULL \
         WHERE id = $1 AND refresh_lease_holder = $2",
    )
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}
