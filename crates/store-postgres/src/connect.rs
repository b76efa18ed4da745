//! Connect attempts, connect links and sealed-value listing for key rotation, on PostgreSQL.

use plugboard_core::{
    ConnectLink, ConnectReport, ConnectSession, ConnectSessionStatus, ProjectId, SealedColumn,
    SealedRow, UnixMillis, UserId,
};
use plugboard_store::{ConnectOutcome, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::db_err;

/// A session's columns; `u` is the joined `users` row that owns it.
macro_rules! session_columns {
    () => {
        "s.id, s.project_id, u.user_id, s.integration_id, s.client_session_id, \
         s.secrets_sealed, s.origin, s.options, s.status, s.credential_id, s.error_code, \
         s.error_message, s.created_at, s.expires_at, s.consumed_at, s.finished_at, s.reported_by"
    };
}

fn report_col(row: &PgRow) -> StoreResult<Option<ConnectReport>> {
    let raw: Option<String> = row.try_get("reported_by").map_err(db_err)?;
    raw.map(|r| {
        ConnectReport::parse(&r).ok_or_else(|| corrupt(format!("unknown report channel `{r}`")))
    })
    .transpose()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn session_from_row(row: &PgRow) -> StoreResult<ConnectSession> {
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let options: String = row.try_get("options").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(ConnectSession {
        id: row.try_get("id").map_err(db_err)?,
        project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
        user_id: UserId::parse(&user).map_err(corrupt)?,
        integration_id: row.try_get("integration_id").map_err(db_err)?,
        client_session_id: row.try_get("client_session_id").map_err(db_err)?,
        secrets_sealed: row.try_get("secrets_sealed").map_err(db_err)?,
        origin: row.try_get("origin").map_err(db_err)?,
        options: serde_json::from_str::<Map<String, Value>>(&options).map_err(corrupt)?,
        status: ConnectSessionStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown session status `{status}`")))?,
        credential_id: row.try_get("credential_id").map_err(db_err)?,
        error_code: row.try_get("error_code").map_err(db_err)?,
        error_message: row.try_get("error_message").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        consumed_at: row.try_get("consumed_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
        reported_by: report_col(row)?,
    })
}

pub(crate) async fn insert_session(pool: &PgPool, s: &ConnectSession) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO connect_sessions (id, project_id, user_seq, integration_id, \
         client_session_id, secrets_sealed, origin, options, status, credential_id, error_code, \
         error_message, created_at, expires_at, consumed_at) \
         SELECT $1, u.project_id, u.seq, i.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = $13 AND u.user_id = $14 AND i.id = $15",
    )
    .bind(s.id)
    .bind(s.client_session_id.as_deref())
    .bind(&s.secrets_sealed)
    .bind(s.origin.as_deref())
    .bind(Value::Object(s.options.clone()).to_string())
    .bind(s.status.as_str())
    .bind(s.credential_id)
    .bind(s.error_code.as_deref())
    .bind(s.error_message.as_deref())
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.consumed_at)
    .bind(s.project_id.as_uuid())
    .bind(s.user_id.as_str())
    .bind(s.integration_id)
    .execute(pool)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn consume_session(
    pool: &PgPool,
    id: Uuid,
    now: UnixMillis,
) -> StoreResult<Option<ConnectSession>> {
    let row = sqlx::query(concat!(
        "WITH taken AS (UPDATE connect_sessions SET consumed_at = $2 \
         WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING *) \
         SELECT ",
        session_columns!(),
        " FROM taken s JOIN users u ON u.seq = s.user_seq"
    ))
    .bind(id)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_from_row).transpose()
}

pub(crate) async fn finish_session(
    pool: &PgPool,
    id: Uuid,
    outcome: &ConnectOutcome,
    at: UnixMillis,
) -> StoreResult<()> {
    let (credential, code, message) = match outcome {
        ConnectOutcome::Succeeded { credential_id } => (Some(*credential_id), None, None),
        ConnectOutcome::Failed { code, message } => {
            (None, Some(code.as_str()), Some(message.as_str()))
        }
    };
    let done = sqlx::query(
        "UPDATE connect_sessions SET status = $1, credential_id = $2, error_code = $3, \
         error_message = $4, finished_at = $5 WHERE id = $6",
    )
    .bind(outcome.status().as_str())
    .bind(credential)
    .bind(code)
    .bind(message)
    .bind(at)
    .bind(id)
    .execute(pool)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn claim_report(
    pool: &PgPool,
    id: Uuid,
    credential: Uuid,
    via: ConnectReport,
) -> StoreResult<Option<ConnectReport>> {
    let row = sqlx::query(
        "UPDATE connect_sessions SET reported_by = COALESCE(reported_by, $1) \
         WHERE id = $2 AND credential_id = $3 AND status = 'SUCCEEDED' RETURNING reported_by",
    )
    .bind(via.as_str())
    .bind(id)
    .bind(credential)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref()
        .map(report_col)
        .transpose()
        .map(Option::flatten)
}

pub(crate) async fn find_session(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
    client_session_id: &str,
) -> StoreResult<Option<ConnectSession>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM users u JOIN connect_sessions s ON s.user_seq = u.seq \
         WHERE u.project_id = $1 AND u.user_id = $2 AND s.client_session_id = $3 \
         ORDER BY s.created_at DESC, s.id DESC LIMIT 1"
    ))
    .bind(project.as_uuid())
    .bind(user.as_str())
    .bind(client_session_id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_from_row).transpose()
}

pub(crate) async fn delete_sessions(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
    client_session_id: &str,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM connect_sessions WHERE client_session_id = $1 AND user_seq = \
         (SELECT seq FROM users WHERE project_id = $2 AND user_id = $3)",
    )
    .bind(client_session_id)
    .bind(project.as_uuid())
    .bind(user.as_str())
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn purge_expired(pool: &PgPool, before: UnixMillis) -> StoreResult<u64> {
    let sessions = sqlx::query("DELETE FROM connect_sessions WHERE expires_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    let links = sqlx::query("DELETE FROM connect_links WHERE expires_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(sessions.rows_affected() + links.rows_affected())
}

pub(crate) async fn insert_link(pool: &PgPool, link: &ConnectLink) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO connect_links (token_hash, project_id, user_seq, integration_id, \
         return_url, inputs, created_at, expires_at, used_at) \
         SELECT $1, u.project_id, u.seq, i.id, $2, $3, $4, $5, $6 \
         FROM users u JOIN project_integrations i ON i.project_id = u.project_id \
         WHERE u.project_id = $7 AND u.user_id = $8 AND i.id = $9",
    )
    .bind(&link.token_hash)
    .bind(link.return_url.as_deref())
    .bind(inputs_json(link)?)
    .bind(link.created_at)
    .bind(link.expires_at)
    .bind(link.used_at)
    .bind(link.project_id.as_uuid())
    .bind(link.user_id.as_str())
    .bind(link.integration_id)
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

fn link_from_row(row: &PgRow) -> StoreResult<ConnectLink> {
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let inputs: String = row.try_get("inputs").map_err(db_err)?;
    Ok(ConnectLink {
        token_hash: row.try_get("token_hash").map_err(db_err)?,
        project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
        user_id: UserId::parse(&user).map_err(corrupt)?,
        integration_id: row.try_get("integration_id").map_err(db_err)?,
        return_url: row.try_get("return_url").map_err(db_err)?,
        inputs: serde_json::from_str(&inputs).map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        used_at: row.try_get("used_at").map_err(db_err)?,
    })
}

pub(crate) async fn find_link(
    pool: &PgPool,
    token_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<ConnectLink>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        link_columns!(),
        " FROM connect_links l JOIN users u ON u.seq = l.user_seq \
         WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(link_from_row).transpose()
}

pub(crate) async fn consume_link(
    pool: &PgPool,
    token_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<ConnectLink>> {
    let row = sqlx::query(concat!(
        "WITH taken AS (UPDATE connect_links SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING *) \
         SELECT ",
        link_columns!(),
        " FROM taken l JOIN users u ON u.seq = l.user_seq"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(link_from_row).transpose()
}

pub(crate) async fn list_sealed(
    pool: &PgPool,
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
            "SELECT id, project_id, NULL::text AS key, secrets_sealed AS sealed FROM credentials \
             WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::ProjectEnv => {
            "SELECT id, project_id, NULL::text AS key, sealed FROM project_env \
             WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::IntegrationClientSecret => {
            "SELECT id, project_id, key::text AS key, oauth_client_secret_sealed AS sealed \
             FROM project_integrations WHERE ($1::uuid IS NULL OR id > $1) \
             AND oauth_client_secret_sealed IS NOT NULL ORDER BY id LIMIT $2"
        }
        SealedColumn::WebhookSecret => {
            "SELECT id, project_id, NULL::text AS key, secret_sealed AS sealed \
             FROM webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::WebhookPreviousSecret => {
            "SELECT id, project_id, NULL::text AS key, previous_secret_sealed AS sealed \
             FROM webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1) \
             AND previous_secret_sealed IS NOT NULL ORDER BY id LIMIT $2"
        }
    };
    let rows = sqlx::query(sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(SealedRow {
                id: row.try_get("id").map_err(db_err)?,
                project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
                key: row.try_get("key").map_err(db_err)?,
                sealed: row.try_get("sealed").map_err(db_err)?,
            })
        })
        .collect()
}

async fn list_user_secrets(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<SealedRow>> {
    let rows = sqlx::query(
        "SELECT seq, project_id, user_id, secrets_sealed FROM users \
         WHERE seq > $1 AND secrets_sealed IS NOT NULL ORDER BY seq LIMIT $2",
    )
    .bind(after.map(SealedRow::user_seq).unwrap_or(0))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(SealedRow {
                id: SealedRow::user_seq_id(row.try_get("seq").map_err(db_err)?),
                project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
                key: row.try_get("user_id").map_err(db_err)?,
                sealed: row.try_get("secrets_sealed").map_err(db_err)?,
            })
        })
        .collect()
}

pub(crate) async fn replace_sealed(
    pool: &PgPool,
    column: SealedColumn,
    id: Uuid,
    expected: &str,
    replacement: &str,
) -> StoreResult<bool> {
    if column == SealedColumn::UserSecrets {
        let done = sqlx::query(
            "UPDATE users SET secrets_sealed = $1 WHERE seq = $2 AND secrets_sealed = $3",
        )
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
            "UPDATE credentials SET secrets_sealed = $1 WHERE id = $2 AND secrets_sealed = $3"
        }
        SealedColumn::ProjectEnv => {
            "UPDATE project_env SET sealed = $1 WHERE id = $2 AND sealed = $3"
        }
        SealedColumn::IntegrationClientSecret => {
            "UPDATE project_integrations SET oauth_client_secret_sealed = $1 \
             WHERE id = $2 AND oauth_client_secret_sealed = $3"
        }
        SealedColumn::WebhookSecret => {
            "UPDATE webhook_endpoints SET secret_sealed = $1 WHERE id = $2 AND secret_sealed = $3"
        }
        SealedColumn::WebhookPreviousSecret => {
            "UPDATE webhook_endpoints SET previous_secret_sealed = $1 \
             WHERE id = $2 AND previous_secret_sealed = $3"
        }
    };
    let done = sqlx::query(sql)
        .bind(replacement)
        .bind(id)
        .bind(expected)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn get_project_env(
    pool: &PgPool,
    project: ProjectId,
) -> StoreResult<Option<(Uuid, String)>> {
    let row = sqlx::query("SELECT id, sealed FROM project_env WHERE project_id = $1")
        .bind(project.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| {
        Ok((
            row.try_get("id").map_err(db_err)?,
            row.try_get("sealed").map_err(db_err)?,
        ))
    })
    .transpose()
}

pub(crate) async fn put_project_env(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
    sealed: &str,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO project_env (id, project_id, sealed, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id) DO UPDATE SET sealed = excluded.sealed, \
         updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(project.as_uuid())
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
