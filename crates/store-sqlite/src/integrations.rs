//! Project integrations, credentials and credential configurations on SQLite.
//!
//! Every statement is static SQL with bound values. Writes go to the single writer
//! connection, so conditional updates (versions, refresh leases) never race each other.

use plugboard_core::{
    Credential, CredentialConfiguration, CredentialStatus, CredentialWithConfigurations, Execution,
    IntegrationKey, OutboxEvent, ProjectId, ProjectIntegration, UnixMillis, UserId,
};
use plugboard_store::{CredentialSecretsWrite, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqliteExecutor, SqlitePool};
use uuid::Uuid;

use crate::{db_err, uuid_col};

macro_rules! integration_columns {
    () => {
        "id, project_id, key, oauth_client_id, oauth_client_secret_sealed, scopes, active, \
         created_at, updated_at, custom_spec"
    };
}

/// A credential's columns; `u` is the joined `users` row that owns it.
macro_rules! credential_columns {
    () => {
        "c.id, c.project_id, u.user_id, c.integration_id, c.status, c.provider_id, \
         c.provider_data, c.secrets_sealed, c.expires_at, c.refresh_failure_count, \
         c.external_id, c.created_at, c.updated_at, c.refreshed_at, c.version"
    };
}

/// A configuration's columns under `cf_` names (they sit beside a credential's in joins);
/// `$table` is the qualifier to read them from (`"cf."`, or `""` in a RETURNING clause).
macro_rules! configuration_columns {
    ($table:literal) => {
        concat!(
            $table,
            "id AS cf_id, ",
            $table,
            "credential_id AS cf_credential_id, ",
            $table,
            "is_default AS cf_is_default, ",
            $table,
            "workflow_settings AS cf_workflow_settings, ",
            $table,
            "shared_settings AS cf_shared_settings, ",
            $table,
            "external_id AS cf_external_id, ",
            $table,
            "created_at AS cf_created_at, ",
            $table,
            "updated_at AS cf_updated_at"
        )
    };
}

/// A user's credentials joined with their configurations (`?1` project, `?2` user id),
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
             WHERE u.project_id = ? AND u.user_id = ?",
            $tail
        )
    };
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn json_map(raw: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(raw).map_err(corrupt)
}

fn map_text(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

fn project_col(row: &SqliteRow, col: &str) -> StoreResult<ProjectId> {
    let raw: String = row.try_get(col).map_err(db_err)?;
    ProjectId::parse(&raw).map_err(corrupt)
}

fn integration_from_row(row: &SqliteRow) -> StoreResult<ProjectIntegration> {
    let key: String = row.try_get("key").map_err(db_err)?;
    let scopes: Option<String> = row.try_get("scopes").map_err(db_err)?;
    Ok(ProjectIntegration {
        id: uuid_col(row, "id")?,
        project_id: project_col(row, "project_id")?,
        key: IntegrationKey::parse(&key).map_err(corrupt)?,
        oauth_client_id: row.try_get("oauth_client_id").map_err(db_err)?,
        oauth_client_secret_sealed: row.try_get("oauth_client_secret_sealed").map_err(db_err)?,
        scopes: scopes
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(corrupt)?,
        active: row.try_get("active").map_err(db_err)?,
        custom_spec: row.try_get("custom_spec").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn credential_from_row(row: &SqliteRow) -> StoreResult<Credential> {
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let provider_data: String = row.try_get("provider_data").map_err(db_err)?;
    Ok(Credential {
        id: uuid_col(row, "id")?,
        project_id: project_col(row, "project_id")?,
        user_id: UserId::parse(&user).map_err(corrupt)?,
        integration_id: uuid_col(row, "integration_id")?,
        status: CredentialStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown credential status `{status}`")))?,
        provider_id: row.try_get("provider_id").map_err(db_err)?,
        provider_data: json_map(&provider_data)?,
        secrets_sealed: row.try_get("secrets_sealed").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        refresh_failure_count: row.try_get("refresh_failure_count").map_err(db_err)?,
        external_id: row.try_get("external_id").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        refreshed_at: row.try_get("refreshed_at").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
    })
}

/// The configuration in a row, or `None` for a credential without any (outer join).
fn configuration_from_row(row: &SqliteRow) -> StoreResult<Option<CredentialConfiguration>> {
    let id: Option<String> = row.try_get("cf_id").map_err(db_err)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let workflow: String = row.try_get("cf_workflow_settings").map_err(db_err)?;
    let shared: String = row.try_get("cf_shared_settings").map_err(db_err)?;
    Ok(Some(CredentialConfiguration {
        id: Uuid::parse_str(&id).map_err(corrupt)?,
        credential_id: uuid_col(row, "cf_credential_id")?,
        is_default: row.try_get("cf_is_default").map_err(db_err)?,
        workflow_settings: json_map(&workflow)?,
        shared_settings: json_map(&shared)?,
        external_id: row.try_get("cf_external_id").map_err(db_err)?,
        created_at: row.try_get("cf_created_at").map_err(db_err)?,
        updated_at: row.try_get("cf_updated_at").map_err(db_err)?,
    }))
}

/// Folds joined rows, ordered by credential, into credentials with their configurations.
fn group(rows: &[SqliteRow]) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let mut out: Vec<CredentialWithConfigurations> = Vec::new();
    for row in rows {
        let id = uuid_col(row, "id")?;
        if out.last().is_none_or(|last| last.credential.id != id) {
            out.push(CredentialWithConfigurations {
                credential: credential_from_row(row)?,
                configurations: Vec::new(),
            });
        }
        if let Some(configuration) = configuration_from_row(row)?
            && let Some(last) = out.last_mut()
        {
            last.configurations.push(configuration);
        }
    }
    Ok(out)
}

pub(crate) async fn upsert_integration(
    pool: &SqlitePool,
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
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (project_id, key) DO UPDATE SET \
         oauth_client_id = excluded.oauth_client_id, \
         oauth_client_secret_sealed = excluded.oauth_client_secret_sealed, \
         scopes = excluded.scopes, active = excluded.active, updated_at = excluded.updated_at, \
         custom_spec = excluded.custom_spec \
         RETURNING ",
        integration_columns!()
    ))
    .bind(i.id.to_string())
    .bind(i.project_id.to_string())
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
    integration_from_row(&row)
}

pub(crate) async fn list_integrations(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<Vec<ProjectIntegration>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = ? ORDER BY key"
    ))
    .bind(project.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(integration_from_row).collect()
}

pub(crate) async fn get_integration(
    pool: &SqlitePool,
    project: ProjectId,
    key: &IntegrationKey,
) -> StoreResult<Option<ProjectIntegration>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = ? AND key = ?"
    ))
    .bind(project.to_string())
    .bind(key.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(integration_from_row).transpose()
}

pub(crate) async fn get_integration_by_id(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<ProjectIntegration>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        integration_columns!(),
        " FROM project_integrations WHERE project_id = ? AND id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(integration_from_row).transpose()
}

pub(crate) async fn insert_credential(
    pool: &SqlitePool,
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
         SELECT ?, u.project_id, u.seq, i.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = ? AND u.user_id = ? AND i.id = ?",
    )
    .bind(c.id.to_string())
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
    .bind(c.project_id.to_string())
    .bind(c.user_id.as_str())
    .bind(c.integration_id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    insert_configuration(&mut tx, default).await?;
    crate::workflows::insert_executions(&mut tx, &executions.iter().collect::<Vec<_>>()).await?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

async fn insert_configuration(
    conn: &mut SqliteConnection,
    cf: &CredentialConfiguration,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO credential_configurations (id, credential_id, is_default, workflow_settings, \
         shared_settings, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(cf.id.to_string())
    .bind(cf.credential_id.to_string())
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
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let rows = sqlx::query(select_user_credentials!(
        " ORDER BY c.created_at, c.id, cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.to_string())
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    group(&rows)
}

pub(crate) async fn list_integration_credentials(
    pool: &SqlitePool,
    project: ProjectId,
    integration: Uuid,
) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        credential_columns!(),
        ", ",
        configuration_columns!("cf."),
        " FROM credentials c JOIN users u ON u.seq = c.user_seq \
         LEFT JOIN credential_configurations cf ON cf.credential_id = c.id \
         WHERE c.project_id = ? AND c.integration_id = ? \
         ORDER BY c.created_at, c.id, cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.to_string())
    .bind(integration.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    group(&rows)
}

pub(crate) async fn get_credential(
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
    id: Uuid,
) -> StoreResult<Option<CredentialWithConfigurations>> {
    let rows = sqlx::query(select_user_credentials!(
        " AND c.id = ? ORDER BY cf.is_default DESC, cf.created_at, cf.id"
    ))
    .bind(project.to_string())
    .bind(user.as_str())
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(group(&rows)?.pop())
}

/// The credential with this id in `project`, whoever holds it.
async fn fetch_credential(
    executor: impl SqliteExecutor<'_>,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<Credential>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        credential_columns!(),
        " FROM credentials c JOIN users u ON u.seq = c.user_seq \
         WHERE c.project_id = ? AND c.id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(executor)
    .await
    .map_err(db_err)?;
    row.as_ref().map(credential_from_row).transpose()
}

pub(crate) async fn update_secrets(
    pool: &SqlitePool,
    w: CredentialSecretsWrite<'_>,
) -> StoreResult<Credential> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let updated = sqlx::query(
        "UPDATE credentials SET secrets_sealed = ?, expires_at = ?, refreshed_at = ?, \
         status = 'VALID', refresh_failure_count = 0, updated_at = ?, version = version + 1 \
         WHERE project_id = ? AND id = ? AND version = ?",
    )
    .bind(w.secrets_sealed)
    .bind(w.expires_at)
    .bind(w.refreshed_at)
    .bind(w.now)
    .bind(w.project_id.to_string())
    .bind(w.credential_id.to_string())
    .bind(w.expected_version)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let current = fetch_credential(&mut *tx, w.project_id, w.credential_id).await?;
    tx.commit().await.map_err(db_err)?;
    match current {
        Some(credential) if updated.rows_affected() == 1 => Ok(credential),
        Some(_) => Err(StoreError::Conflict(
            "the credential changed concurrently".into(),
        )),
        None => Err(StoreError::NotFound),
    }
}

pub(crate) async fn set_status(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
    (status, refresh_failure_count): (CredentialStatus, i32),
    now: UnixMillis,
    events: &[OutboxEvent],
) -> StoreResult<Credential> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "UPDATE credentials SET status = ?, refresh_failure_count = ?, updated_at = ?, \
         version = version + 1 WHERE project_id = ? AND id = ?",
    )
    .bind(status.as_str())
    .bind(refresh_failure_count)
    .bind(now)
    .bind(project.to_string())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let current = fetch_credential(&mut *tx, project, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(current)
}

pub(crate) async fn update_configuration(
    pool: &SqlitePool,
    project: ProjectId,
    (credential_id, configuration_id): (Uuid, Uuid),
    workflow_settings: Option<&Map<String, Value>>,
    shared_settings: Option<&Map<String, Value>>,
    now: UnixMillis,
    (executions, events): (&[Execution], &[OutboxEvent]),
) -> StoreResult<CredentialConfiguration> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = sqlx::query(concat!(
        "UPDATE credential_configurations SET \
         workflow_settings = COALESCE(?, workflow_settings), \
         shared_settings = COALESCE(?, shared_settings), updated_at = ? \
         WHERE id = ? AND credential_id = ? \
         AND EXISTS (SELECT 1 FROM credentials WHERE id = ? AND project_id = ?) \
         RETURNING ",
        configuration_columns!("")
    ))
    .bind(workflow_settings.map(map_text))
    .bind(shared_settings.map(map_text))
    .bind(now)
    .bind(configuration_id.to_string())
    .bind(credential_id.to_string())
    .bind(credential_id.to_string())
    .bind(project.to_string())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let updated = match row {
        Some(row) => configuration_from_row(&row)?.ok_or(StoreError::NotFound)?,
        None => return Err(StoreError::NotFound),
    };
    crate::workflows::insert_executions(&mut tx, &executions.iter().collect::<Vec<_>>()).await?;
    crate::events::insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(updated)
}

pub(crate) async fn delete_credential(
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
    id: Uuid,
    events: &[OutboxEvent],
) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let found: Option<String> = sqlx::query_scalar(
        "SELECT c.id FROM credentials c JOIN users u ON u.seq = c.user_seq \
         WHERE c.project_id = ? AND c.id = ? AND u.project_id = ? AND u.user_id = ?",
    )
    .bind(project.to_string())
    .bind(id.to_string())
    .bind(project.to_string())
    .bind(user.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let found = found.ok_or(StoreError::NotFound)?;
    let configurations =
        sqlx::query("DELETE FROM credential_configurations WHERE credential_id = ?")
            .bind(&found)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    sqlx::query("DELETE FROM credentials WHERE id = ?")
        .bind(&found)
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
    conn: &mut SqliteConnection,
    seq: i64,
) -> StoreResult<(u64, u64)> {
    let configurations = sqlx::query(
        "DELETE FROM credential_configurations \
         WHERE credential_id IN (SELECT id FROM credentials WHERE user_seq = ?)",
    )
    .bind(seq)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let credentials = sqlx::query("DELETE FROM credentials WHERE user_seq = ?")
        .bind(seq)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok((credentials.rows_affected(), configurations.rows_affected()))
}

pub(crate) async fn try_acquire_lease(
    pool: &SqlitePool,
    id: Uuid,
    holder: &str,
    now: UnixMillis,
    until: UnixMillis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE credentials SET refresh_lease_holder = ?, refresh_lease_until = ? \
         WHERE id = ? AND (refresh_lease_until IS NULL OR refresh_lease_until < ? \
         OR refresh_lease_holder = ?)",
    )
    .bind(holder)
    .bind(until)
    .bind(id.to_string())
    .bind(now)
    .bind(holder)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn release_lease(pool: &SqlitePool, id: Uuid, holder: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE credentials SET refresh_lease_holder = NULL, refresh_lease_until = NULL \
         WHERE id = ? AND refresh_lease_holder = ?",
    )
    .bind(id.to_string())
    .bind(holder)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}
