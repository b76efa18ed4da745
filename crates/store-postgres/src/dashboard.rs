//! The dashboard's sessions, user counts and usage figures.

use plugboard_core::{
    DashboardPrincipal, DashboardSession, IntegrationUsage, IntegrationUse, ProjectId, UnixMillis,
    UserCount, UserFilter,
};
use plugboard_store::{StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, QueryBuilder, Row};
use uuid::Uuid;

use crate::db_err;
use crate::rows::get;

pub(crate) async fn count_users(
    pool: &PgPool,
    project: ProjectId,
    filter: &UserFilter,
    cap: u64,
) -> StoreResult<UserCount> {
    // Count the rows of the list query limited to `cap + 1`: the same index-driven plan,
    // stopping early on a broad filter.
    let bounded = UserFilter {
        limit: usize::try_from(cap.min(i64::MAX as u64 - 1)).unwrap_or(usize::MAX - 1),
        before_seq: None,
        ..filter.clone()
    };
    let mut query = QueryBuilder::new("SELECT COUNT(*) FROM (");
    crate::users::push_query(&mut query, crate::users::COUNT_SELECT, project, &bounded);
    query.push(") AS matched");
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
    pool: &PgPool,
    project: ProjectId,
) -> StoreResult<IntegrationUsage> {
    let rows = sqlx::query(
        "SELECT c.integration_id, COUNT(DISTINCT c.user_seq) AS users, \
         COUNT(DISTINCT c.user_seq) FILTER (WHERE c.status = 'INVALID') AS invalid_users \
         FROM credentials c WHERE c.project_id = $1 GROUP BY c.integration_id",
    )
    .bind(project.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let integrations = rows
        .iter()
        .map(|row| {
            Ok(IntegrationUse {
                integration_id: get(row, "integration_id")?,
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
         JOIN credential_configurations cc ON cc.credential_id = c.id AND cc.is_default \
         CROSS JOIN LATERAL jsonb_each(cc.workflow_settings::jsonb) j \
         WHERE c.project_id = $1 AND j.value -> 'enabled' = 'true'::jsonb \
         GROUP BY j.key ORDER BY j.key COLLATE \"C\"",
    )
    .bind(project.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let workflows = rows
        .iter()
        .map(|row| Ok((get(row, "workflow_id")?, count_col(row, "users")?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(IntegrationUsage {
        integrations,
        workflows,
    })
}

fn count_col(row: &PgRow, col: &str) -> StoreResult<u64> {
    let n: i64 = get(row, col)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn insert_session(pool: &PgPool, session: &DashboardSession) -> StoreResult<()> {
    let (project, admin, key_id) = match &session.principal {
        DashboardPrincipal::Admin { project } => (project.map(|p| p.as_uuid()), true, None),
        DashboardPrincipal::SecretKey { project, key_id } => {
            (Some(project.as_uuid()), false, Some(*key_id))
        }
    };
    sqlx::query(
        "INSERT INTO dashboard_sessions \
         (id_hash, project_id, admin, secret_key_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    pool: &PgPool,
    id_hash: &str,
    now: UnixMillis,
) -> StoreResult<Option<DashboardSession>> {
    let row = sqlx::query(
        "SELECT id_hash, project_id, admin, secret_key_id, csrf_token, created_at, expires_at \
         FROM dashboard_sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_from_row).transpose()
}

fn session_from_row(row: &PgRow) -> StoreResult<DashboardSession> {
    let bad = |e: &str| StoreError::Database(e.to_owned());
    let project: Option<Uuid> = get(row, "project_id")?;
    let project = project.map(ProjectId::from_uuid);
    let admin: bool = get(row, "admin")?;
    let principal = if admin {
        DashboardPrincipal::Admin { project }
    } else {
        let key_id: Option<Uuid> = get(row, "secret_key_id")?;
        DashboardPrincipal::SecretKey {
            project: project.ok_or_else(|| bad("a secret-key session without a project"))?,
            key_id: key_id.ok_or_else(|| bad("a secret-key session without its key id"))?,
        }
    };
    Ok(DashboardSession {
        id_hash: get(row, "id_hash")?,
        principal,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) async fn set_session_project(
    pool: &PgPool,
    id_hash: &str,
    project: ProjectId,
) -> StoreResult<()> {
    let done =
        sqlx::query("UPDATE dashboard_sessions SET project_id = $1 WHERE id_hash = $2 AND admin")
            .bind(project.as_uuid())
            .bind(id_hash)
            .execute(pool)
            .await
            .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete_session(pool: &PgPool, id_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn purge_sessions(pool: &PgPool, before: UnixMillis) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}
