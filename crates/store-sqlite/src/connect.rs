//! Connect attempts, connect links and sealed-value listing for key rotation, on SQLite.

use plugboard_core::{
    ConnectLink, ConnectReport, ConnectSession, ConnectSessionStatus, ProjectId, SealedColumn,
    SealedRow, UnixMillis, UserId,
};
use plugboard_store::{ConnectOutcome, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use crate::{db_err, uuid_col};

/// A session's columns; `u` is the joined `users` row that owns it.
macro_rules! session_columns {
    () => {
        "s.id, s.project_id, u.user_id, s.integration_id, s.client_session_id, \
         s.secrets_sealed, s.origin, s.options, s.status, s.credential_id, s.error_code, \
         s.error_message, s.created_at, s.expires_at, s.consumed_at, s.finished_at, s.reported_by"
    };
}

fn report_col(row: &SqliteRow) -> StoreResult<Option<ConnectReport>> {
    let raw: Option<String> = row.try_get("reported_by").map_err(db_err)?;
    raw.map(|r| {
        ConnectReport::parse(&r).ok_or_else(|| corrupt(format!("unknown report channel `{r}`")))
    })
    .transpose()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn session_from_row(row: &SqliteRow) -> StoreResult<ConnectSession> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let options: String = row.try_get("options").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let credential: Option<String> = row.try_get("credential_id").map_err(db_err)?;
    Ok(ConnectSession {
        id: uuid_col(row, "id")?,
        project_id: ProjectId::parse(&project).map_err(corrupt)?,
        user_id: UserId::parse(&user).map_err(corrupt)?,
        integration_id: uuid_col(row, "integration_id")?,
        client_session_id: row.try_get("client_session_id").map_err(db_err)?,
        secrets_sealed: row.try_get("secrets_sealed").map_err(db_err)?,
        origin: row.try_get("origin").map_err(db_err)?,
        options: serde_json::from_str::<Map<String, Value>>(&options).map_err(corrupt)?,
        status: ConnectSessionStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown session status `{status}`")))?,
        credential_id: credential
            .map(|c| Uuid::parse_str(&c))
            .transpose()
            .map_err(corrupt)?,
        error_code: row.try_get("error_code").map_err(db_err)?,
        error_message: row.try_get("error_message").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        consumed_at: row.try_get("consumed_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
        reported_by: report_col(row)?,
    })
}

pub(crate) async fn insert_session(pool: &SqlitePool, s: &ConnectSession) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO connect_sessions (id, project_id, user_seq, integration_id, \
         client_session_id, secrets_sealed, origin, options, status, credential_id, error_code, \
         error_message, created_at, expires_at, consumed_at) \
         SELECT ?, u.project_id, u.seq, i.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = ? AND u.user_id = ? AND i.id = ?",
    )
    .bind(s.id.to_string())
    .bind(s.client_session_id.as_deref())
    .bind(&s.secrets_sealed)
    .bind(s.origin.as_deref())
    .bind(Value::Object(s.options.clone()).to_string())
    .bind(s.status.as_str())
    .bind(s.credential_id.map(|c| c.to_string()))
    .bind(s.error_code.as_deref())
    .bind(s.error_message.as_deref())
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.consumed_at)
    .bind(s.project_id.to_string())
    .bind(s.user_id.as_str())
    .bind(s.integration_id.to_string())
    .execute(pool)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn consume_session(
    pool: &SqlitePool,
    id: Uuid,
    now: UnixMillis,
) -> StoreResult<Option<ConnectSession>> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let taken = sqlx::query(
        "UPDATE connect_sessions SET consumed_at = ? \
         WHERE id = ? AND consumed_at IS NULL AND expires_at > ?",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if taken.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM connect_sessions s JOIN users u ON u.seq = s.user_seq WHERE s.id = ?"
    ))
    .bind(id.to_string())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    session_from_row(&row).map(Some)
}

pub(crate) async fn finish_session(
    pool: &SqlitePool,
    id: Uuid,
    outcome: &ConnectOutcome,
    at: UnixMillis,
) -> StoreResult<()> {
    let (credential, code, message) = match outcome {
        ConnectOutcome::Succeeded { credential_id } => {
            (Some(credential_id.to_string()), None, None)
        }
        ConnectOutcome::Failed { code, message } => {
            (None, Some(code.as_str()), Some(message.as_str()))
        }
    };
    let done = sqlx::query(
        "UPDATE connect_sessions SET status = ?, credential_id = ?, error_code = ?, \
         error_message = ?, finished_at = ? WHERE id = ?",
    )
    .bind(outcome.status().as_str())
    .bind(credential)
    .bind(code)
    .bind(message)
    .bind(at)
    .bind(id.to_string())
    .execute(pool)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn claim_report(
    pool: &SqlitePool,
    id: Uuid,
    credential: Uuid,
    via: ConnectReport,
) -> StoreResult<Option<ConnectReport>> {
    let row = sqlx::query(
        "UPDATE connect_sessions SET reported_by = COALESCE(reported_by, ?) \
         WHERE id = ? AND credential_id = ? AND status = 'SUCCEEDED' RETURNING reported_by",
    )
    .bind(via.as_str())
    .bind(id.to_string())
    .bind(credential.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref()
        .map(report_col)
        .transpose()
        .map(Option::flatten)
}

pub(crate) async fn find_session(
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
    client_session_id: &str,
) -> StoreResult<Option<ConnectSession>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM users u JOIN connect_sessions s ON s.user_seq = u.seq \
         WHERE u.project_id = ? AND u.user_id = ? AND s.client_session_id = ? \
         ORDER BY s.created_at DESC, s.id DESC LIMIT 1"
    ))
    .bind(project.to_string())
    .bind(user.as_str())
    .bind(client_session_id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_from_row).transpose()
}

pub(crate) async fn delete_sessions(
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
    client_session_id: &str,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM connect_sessions WHERE client_session_id = ? AND user_seq = \
         (SELECT seq FROM users WHERE project_id = ? AND user_id = ?)",
    )
    .bind(client_session_id)
    .bind(project.to_string())
    .bind(user.as_str())
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn purge_expired(pool: &SqlitePool, before: UnixMillis) -> StoreResult<u64> {
    let sessions = sqlx::query("DELETE FROM connect_sessions WHERE expires_at < ?")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    let links = sqlx::query("DELETE FROM connect_links WHERE expires_at < ?")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(sessions.rows_affected() + links.rows_affected())
}

pub(crate) async fn insert_link(pool: &SqlitePool, link: &ConnectLink) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO connect_links (token_hash, project_id, user_seq, integration_id, \
         return_url, inputs, created_at, expires_at, used_at) \
         SELECT ?, u.project_id, u.seq, i.id, ?, ?, ?, ?, ? \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = ? AND u.user_id = ? AND i.id = ?",
    )
    .bind(&link.token_hash)
    .bind(link.return_url.as_deref())
    .bind(inputs_json(link)?)
    .bind(link.created_at)
    .bind(link.expires_at)
    .bind(link.used_at)
    .bind(link.project_id.to_string())
    .bind(link.user_id.as_str())
    .bind(link.integration_id.to_string())
    .execute(pool)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A link's columns; `u` is the joined `users` row that owns it.
macro_rules! link_columns {
    () => {
        "l.token_hash, l.project_id, u.user_id, l.integration_id, l.return_url, l.inputs, \
         l.created_at, l.expires_at, l.used_at"
    };
}

fn inputs_json(link: &ConnectLink) -> StoreResult<String> {
    serde_json::to_string(&link.inputs).map_err(corrupt)
}

fn link_from_row(row: &SqliteRow) -> StoreResult<ConnectLink> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let inputs: String = row.try_get("inputs").map_err(db_err)?;
    Ok(ConnectLink {
        token_hash: row.try_get("token_hash").map_err(db_err)?,
        project_id: ProjectId::parse(&project).map_err(corrupt)?,
        user_id: UserId::parse(&user).map_err(corrupt)?,
        integration_id: uuid_col(row, "integration_id")?,
        return_url: row.try_get("return_url").map_err(db_err)?,
        inputs: serde_json::from_str(&inputs).map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        used_at: row.try_get("used_at").map_err(db_err)?,
    })
}

pub(crate) async fn find_link(
    pool: &SqlitePool,
    token_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<ConnectLink>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        link_columns!(),
        " FROM connect_links l JOIN users u ON u.seq = l.user_seq \
         WHERE l.token_hash = ? AND l.used_at IS NULL AND l.expires_at > ?"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(link_from_row).transpose()
}

pub(crate) async fn consume_link(
    pool: &SqlitePool,
    token_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<ConnectLink>> {
    let row = sqlx::query(
        "UPDATE connect_links SET used_at = ? \
         WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? \
         RETURNING token_hash, project_id, user_seq, integration_id, return_url, inputs, \
         created_at, expires_at, used_at, (SELECT user_id FROM users WHERE seq = user_seq) AS user_id",
    )
    .bind(now)
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(link_from_row).transpose()
}

pub(crate) async fn list_sealed(
    pool: &SqlitePool,
    column: SealedColumn,
    after: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<SealedRow>> {
    if column == SealedColumn::UserSecrets {
        return list_user_secrets(pool, after, limit).await;
    }
    let sql = match column {
        SealedColumn::UserSecrets => unreachable!("listed above"),
        SealedColumn::CredentialSecrets => {
            "SELECT id, project_id, NULL AS key, secrets_sealed AS sealed FROM credentials \
             WHERE id > ? ORDER BY id LIMIT ?"
        }
        SealedColumn::ProjectEnv => {
            "SELECT id, project_id, NULL AS key, sealed FROM project_env \
             WHERE id > ? ORDER BY id LIMIT ?"
        }
        SealedColumn::IntegrationClientSecret => {
            "SELECT id, project_id, key, oauth_client_secret_sealed AS sealed \
             FROM project_integrations \
             WHERE id > ? AND oauth_client_secret_sealed IS NOT NULL ORDER BY id LIMIT ?"
        }
        SealedColumn::WebhookSecret => {
            "SELECT id, project_id, NULL AS key, secret_sealed AS sealed FROM webhook_endpoints \
             WHERE id > ? ORDER BY id LIMIT ?"
        }
        SealedColumn::WebhookPreviousSecret => {
            "SELECT id, project_id, NULL AS key, previous_secret_sealed AS sealed \
             FROM webhook_endpoints \
             WHERE id > ? AND previous_secret_sealed IS NOT NULL ORDER BY id LIMIT ?"
        }
    };
    let rows = sqlx::query(sql)
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let project: String = row.try_get("project_id").map_err(db_err)?;
            Ok(SealedRow {
                id: uuid_col(row, "id")?,
                project_id: ProjectId::parse(&project).map_err(corrupt)?,
                key: row.try_get("key").map_err(db_err)?,
                sealed: row.try_get("sealed").map_err(db_err)?,
            })
        })
        .collect()
}

async fn list_user_secrets(
    pool: &SqlitePool,
    after: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<SealedRow>> {
    let rows = sqlx::query(
        "SELECT seq, project_id, user_id, secrets_sealed FROM users \
         WHERE seq > ? AND secrets_sealed IS NOT NULL ORDER BY seq LIMIT ?",
    )
    .bind(after.map(SealedRow::user_seq).unwrap_or(0))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let project: String = row.try_get("project_id").map_err(db_err)?;
            Ok(SealedRow {
                id: SealedRow::user_seq_id(row.try_get("seq").map_err(db_err)?),
                project_id: ProjectId::parse(&project).map_err(corrupt)?,
                key: row.try_get("user_id").map_err(db_err)?,
                sealed: row.try_get("secrets_sealed").map_err(db_err)?,
            })
        })
        .collect()
}

pub(crate) async fn replace_sealed(
    pool: &SqlitePool,
    column: SealedColumn,
    id: Uuid,
    expected: &str,
    replacement: &str,
) -> StoreResult<bool> {
    if column == SealedColumn::UserSecrets {
        let done =
            sqlx::query("UPDATE users SET secrets_sealed = ? WHERE seq = ? AND secrets_sealed = ?")
                .bind(replacement)
                .bind(SealedRow::user_seq(id))
                .bind(expected)
                .execute(pool)
                .await
                .map_err(db_err)?;
        return Ok(done.rows_affected() == 1);
    }
    let sql = match column {
        SealedColumn::UserSecrets => unreachable!("replaced above"),
        SealedColumn::CredentialSecrets => {
            "UPDATE credentials SET secrets_sealed = ? WHERE id = ? AND secrets_sealed = ?"
        }
        SealedColumn::ProjectEnv => "UPDATE project_env SET sealed = ? WHERE id = ? AND sealed = ?",
        SealedColumn::IntegrationClientSecret => {
            "UPDATE project_integrations SET oauth_client_secret_sealed = ? \
             WHERE id = ? AND oauth_client_secret_sealed = ?"
        }
        SealedColumn::WebhookSecret => {
            "UPDATE webhook_endpoints SET secret_sealed = ? WHERE id = ? AND secret_sealed = ?"
        }
        SealedColumn::WebhookPreviousSecret => {
            "UPDATE webhook_endpoints SET previous_secret_sealed = ? \
             WHERE id = ? AND previous_secret_sealed = ?"
        }
    };
    let done = sqlx::query(sql)
        .bind(replacement)
        .bind(id.to_string())
        .bind(expected)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn get_project_env(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<Option<(Uuid, String)>> {
    let row = sqlx::query("SELECT id, sealed FROM project_env WHERE project_id = ?")
        .bind(project.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| {
        Ok((
            uuid_col(&row, "id")?,
            row.try_get("sealed").map_err(db_err)?,
        ))
    })
    .transpose()
}

pub(crate) async fn put_project_env(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
    sealed: &str,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO project_env (id, project_id, sealed, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (project_id) DO UPDATE SET sealed = excluded.sealed, \
         updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(project.to_string())
    .bind(sealed)
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
        other => db_err(other),
    })?;
    Ok(())
}
