//! The dashboard's sessions, user counts and usage figures.

use plugboard_core::{
    DashboardPrincipal, DashboardSession, IntegrationUsage, IntegrationUse, ProjectId, UnixMillis,
    UserCount, UserFilter,
};
use plugboard_store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, SqlitePool};
use uuid::Uuid;

use crate::{COUNT_SELECT, db_err, push_users_query, uuid_col};

pub(crate) async fn count_users(
    pool: &SqlitePool,
    project: ProjectId,
    filter: &UserFilter,
    cap: u64,
) -> StoreResult<UserCount> {
    // Count the rows of the list query limited to `cap + 1`: the same index-driven plan,
    // stopping early on a broad filter.
    let bounded = UserFilter {
        limit: usize::try_from(cap).unwrap_or(usize::MAX - 1),
        before_seq: None,
        ..filter.clone()
    };
    let mut query = QueryBuilder::new("SELECT COUNT(*) FROM (");
    push_users_query(&mut query, COUNT_SELECT, project, &bounded);
    query.push(")");
    let found: i64 = query
        .build()
        .fetch_one(pool)
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
    let found = found.max(0) as u64;
    Ok(UserCount {
        count: found.min(cap),
        capped: found > cap,
    })
}

pub(crate) async fn integration_usage(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<IntegrationUsage> {
    let project = project.to_string();
    let rows = sqlx::query(
        "SELECT c.integration_id, COUNT(DISTINCT c.user_seq) AS users, \
         COUNT(DISTINCT CASE WHEN c.status = 'INVALID' THEN c.user_seq END) AS invalid_users \
         FROM credentials c WHERE c.project_id = ? GROUP BY c.integration_id",
    )
    .bind(&project)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let integrations = rows
        .iter()
        .map(|row| {
            Ok(IntegrationUse {
                integration_id: uuid_col(row, "integration_id")?,
                users: count_col(row, "users")?,
                invalid_users: count_col(row, "invalid_users")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // Enablement lives in each credential's default configuration:
    // `{"<workflowId>": {"enabled": true, …}}`.
    let rows = sqlx::query(
        "SELECT j.key AS workflow_id, COUNT(DISTINCT c.user_seq) AS users \
         FROM credentials c \
         JOIN credential_configurations cc ON cc.credential_id = c.id AND cc.is_default = 1 \
         JOIN json_each(cc.workflow_settings) j \
         WHERE c.project_id = ? AND json_extract(j.value, '$.enabled') = 1 \
         GROUP BY j.key ORDER BY j.key",
    )
    .bind(&project)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let workflows = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("workflow_id").map_err(db_err)?,
                count_col(row, "users")?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(IntegrationUsage {
        integrations,
        workflows,
    })
}

fn count_col(row: &SqliteRow, col: &str) -> StoreResult<u64> {
    let n: i64 = row.try_get(col).map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn insert_session(
    pool: &SqlitePool,
    session: &DashboardSession,
) -> StoreResult<()> {
    let (project, admin, key_id) = match &session.principal {
        DashboardPrincipal::Admin { project } => (project.map(|p| p.to_string()), true, None),
        DashboardPrincipal::SecretKey { project, key_id } => {
            (Some(project.to_string()), false, Some(key_id.to_string()))
        }
    };
    sqlx::query(
        "INSERT INTO dashboard_sessions \
         (id_hash, project_id, admin, secret_key_id, csrf_token, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&session.id_hash)
    .bind(project)
    .bind(admin)
    .bind(key_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get_session(
    pool: &SqlitePool,
    id_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<DashboardSession>> {
    let row = sqlx::query(
        "SELECT id_hash, project_id, admin, secret_key_id, csrf_token, created_at, expires_at \
         FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_from_row).transpose()
}

fn session_from_row(row: &SqliteRow) -> StoreResult<DashboardSession> {
    let bad = |e: String| StoreError::Database(e);
    let project: Option<String> = row.try_get("project_id").map_err(db_err)?;
    let project = project
        .map(|p| ProjectId::parse(&p).map_err(|e| bad(e.to_string())))
        .transpose()?;
    let admin: bool = row.try_get("admin").map_err(db_err)?;
    let principal = if admin {
        DashboardPrincipal::Admin { project }
    } else {
        let key_id: Option<String> = row.try_get("secret_key_id").map_err(db_err)?;
        let key_id = key_id
            .and_then(|k| Uuid::parse_str(&k).ok())
            .ok_or_else(|| bad("a secret-key session without its key id".into()))?;
        DashboardPrincipal::SecretKey {
            project: project.ok_or_else(|| bad("a secret-key session without a project".into()))?,
            key_id,
        }
    };
    Ok(DashboardSession {
        id_hash: row.try_get("id_hash").map_err(db_err)?,
        principal,
        csrf_token: row.try_get("csrf_token").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
    })
}

pub(crate) async fn set_session_project(
    pool: &SqlitePool,
    id_hash: &str,
    project: ProjectId,
) -> StoreResult<()> {
    let done =
        sqlx::query("UPDATE dashboard_sessions SET project_id = ? WHERE id_hash = ? AND admin = 1")
            .bind(project.to_string())
            .bind(id_hash)
            .execute(pool)
            .await
            .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete_session(pool: &SqlitePool, id_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn purge_sessions(pool: &SqlitePool, before: UnixMillis) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < ?")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}
