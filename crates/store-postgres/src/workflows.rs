//! Workflows, executions (the queue) and step journals on PostgreSQL. A claim is one
//! `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, committed at once:
//! concurrent workers on any node skip each other's rows instead of waiting on them.

use plugboard_core::{
    Execution, ExecutionFilter, ExecutionStatus, ExecutionUpdate, ProjectId, UnixMillis, UserId,
    WorkflowVersion,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::db_err;

macro_rules! workflow_columns {
    () => {
        "project_id, workflow_id, version, integration, event, trigger_kind, definition, created_at"
    };
}

/// An execution's columns; `u` is the joined `users` row.
macro_rules! execution_columns {
    () => {
        "e.id, e.project_id, u.user_id, e.workflow_id, e.workflow_version, e.integration, \
         e.credential_id, e.status, e.trigger, e.settings, e.output, e.error, e.response, \
         e.runs, e.next_run_at, e.created_at, e.started_at, e.finished_at"
    };
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn json_col(row: &PgRow, col: &str) -> StoreResult<Value> {
    let raw: String = row.try_get(col).map_err(db_err)?;
    serde_json::from_str(&raw).map_err(corrupt)
}

fn opt_json_col(row: &PgRow, col: &str) -> StoreResult<Option<Value>> {
    let raw: Option<String> = row.try_get(col).map_err(db_err)?;
    raw.map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(corrupt)
}

fn workflow_from_row(row: &PgRow) -> StoreResult<WorkflowVersion> {
    Ok(WorkflowVersion {
        project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
        workflow_id: row.try_get("workflow_id").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
        integration: row.try_get("integration").map_err(db_err)?,
        event: row.try_get("event").map_err(db_err)?,
        trigger_kind: row.try_get("trigger_kind").map_err(db_err)?,
        definition: json_col(row, "definition")?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn execution_from_row(row: &PgRow) -> StoreResult<Execution> {
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(Execution {
        id: row.try_get("id").map_err(db_err)?,
        project_id: ProjectId::from_uuid(row.try_get("project_id").map_err(db_err)?),
        user_id: UserId::parse(&user).map_err(corrupt)?,
        workflow_id: row.try_get("workflow_id").map_err(db_err)?,
        workflow_version: row.try_get("workflow_version").map_err(db_err)?,
        integration: row.try_get("integration").map_err(db_err)?,
        credential_id: row.try_get("credential_id").map_err(db_err)?,
        status: ExecutionStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown execution status `{status}`")))?,
        trigger: json_col(row, "trigger")?,
        settings: json_col(row, "settings")?,
        output: opt_json_col(row, "output")?,
        error: row.try_get("error").map_err(db_err)?,
        response: opt_json_col(row, "response")?,
        runs: row.try_get("runs").map_err(db_err)?,
        next_run_at: row.try_get("next_run_at").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        started_at: row.try_get("started_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
    })
}

pub(crate) async fn deploy(pool: &PgPool, w: &WorkflowVersion) -> StoreResult<WorkflowVersion> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let newest: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(version) FROM workflow_versions WHERE project_id = $1 AND workflow_id = $2",
    )
    .bind(w.project_id.as_uuid())
    .bind(&w.workflow_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "UPDATE workflow_versions SET is_current = FALSE \
         WHERE project_id = $1 AND workflow_id = $2 AND is_current",
    )
    .bind(w.project_id.as_uuid())
    .bind(&w.workflow_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let row = sqlx::query(concat!(
        "INSERT INTO workflow_versions (",
        workflow_columns!(),
        ", is_current) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE) RETURNING ",
        workflow_columns!()
    ))
    .bind(w.project_id.as_uuid())
    .bind(&w.workflow_id)
    .bind(newest.unwrap_or(0) + 1)
    .bind(&w.integration)
    .bind(w.event.as_deref())
    .bind(&w.trigger_kind)
    .bind(w.definition.to_string())
    .bind(w.created_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    workflow_from_row(&row)
}

pub(crate) async fn list(pool: &PgPool, project: ProjectId) -> StoreResult<Vec<WorkflowVersion>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE project_id = $1 AND is_current ORDER BY workflow_id"
    ))
    .bind(project.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(workflow_from_row).collect()
}

pub(crate) async fn get(
    pool: &PgPool,
    project: ProjectId,
    workflow_id: &str,
    version: Option<i64>,
) -> StoreResult<Option<WorkflowVersion>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE project_id = $1 AND workflow_id = $2 \
         AND (version = $3 OR ($3::BIGINT IS NULL AND is_current))"
    ))
    .bind(project.as_uuid())
    .bind(workflow_id)
    .bind(version)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(workflow_from_row).transpose()
}

pub(crate) async fn enqueue(pool: &PgPool, executions: &[Execution]) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    insert_executions(&mut tx, executions).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

/// Inserts executions on `conn`; `NotFound` when a user does not exist.
pub(crate) async fn insert_executions(
    conn: &mut sqlx::PgConnection,
    executions: &[Execution],
) -> StoreResult<()> {
    for e in executions {
        let inserted = sqlx::query(
            "INSERT INTO executions (id, project_id, user_seq, workflow_id, workflow_version, \
             integration, credential_id, status, trigger, settings, output, error, response, \
             runs, next_run_at, created_at, started_at, finished_at) \
             SELECT $1, u.project_id, u.seq, $2, $3, $4, $5, $6, $7, $8, NULL, $9, NULL, 0, $10, \
             $11, NULL, $12 FROM users u WHERE u.project_id = $13 AND u.user_id = $14",
        )
        .bind(e.id)
        .bind(&e.workflow_id)
        .bind(e.workflow_version)
        .bind(&e.integration)
        .bind(e.credential_id)
        .bind(e.status.as_str())
        .bind(e.trigger.to_string())
        .bind(e.settings.to_string())
        .bind(e.error.as_deref())
        .bind(e.next_run_at)
        .bind(e.created_at)
        .bind(e.finished_at)
        .bind(e.project_id.as_uuid())
        .bind(e.user_id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

pub(crate) async fn claim(
    pool: &PgPool,
    holder: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: u32,
    per_user_limit: u32,
) -> StoreResult<Vec<Execution>> {
    let claimed: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE executions SET status = 'EXECUTING', lease_holder = $1, lease_until = $2, \
         runs = runs + 1, started_at = COALESCE(started_at, $3) \
         WHERE id IN ( \
           SELECT c.id FROM executions c \
           WHERE c.status IN ('QUEUED', 'DELAYED', 'EXECUTING') AND c.next_run_at <= $3 \
             AND (c.lease_until IS NULL OR c.lease_until < $3) \
             AND (SELECT COUNT(*) FROM executions b WHERE b.user_seq = c.user_seq \
                  AND b.status = 'EXECUTING' AND b.lease_until >= $3) < $5 \
           ORDER BY c.next_run_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind(holder)
    .bind(lease_until)
    .bind(now)
    .bind(i64::from(limit))
    .bind(i64::from(per_user_limit))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        execution_columns!(),
        " FROM executions e JOIN users u ON u.seq = e.user_seq WHERE e.id IN ("
    ));
    let mut ids = query.separated(", ");
    for id in &claimed {
        ids.push_bind(id);
    }
    query.push(") ORDER BY e.next_run_at");
    let rows = query.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(execution_from_row).collect()
}

pub(crate) async fn extend_lease(
    pool: &PgPool,
    id: Uuid,
    holder: &str,
    lease_until: UnixMillis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE executions SET lease_until = $1 WHERE id = $2 AND lease_holder = $3 \
         AND status = 'EXECUTING'",
    )
    .bind(lease_until)
    .bind(id)
    .bind(holder)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn release(
    pool: &PgPool,
    id: Uuid,
    holder: &str,
    u: &ExecutionUpdate,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let done = sqlx::query(
        "UPDATE executions SET status = $1, next_run_at = $2, output = $3, error = $4, \
         response = COALESCE($5, response), finished_at = $6, lease_holder = NULL, \
         lease_until = NULL WHERE id = $7 AND lease_holder = $8 AND status = 'EXECUTING'",
    )
    .bind(u.status.as_str())
    .bind(u.next_run_at)
    .bind(u.output.as_ref().map(Value::to_string))
    .bind(u.error.as_deref())
    .bind(u.response.as_ref().map(Value::to_string))
    .bind(u.finished_at)
    .bind(id)
    .bind(holder)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    crate::events::insert_events(&mut tx, &u.events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn cancel(
    pool: &PgPool,
    project: ProjectId,
    user: &UserId,
    workflow_ids: &[String],
    now: UnixMillis,
) -> StoreResult<u64> {
    if workflow_ids.is_empty() {
        return Ok(0);
    }
    let mut query =
        QueryBuilder::<Postgres>::new("UPDATE executions SET status = 'CANCELLED', finished_at = ");
    query.push_bind(now);
    query.push(", error = 'cancelled' WHERE status IN ('QUEUED', 'DELAYED', 'EXECUTING') ");
    query.push("AND (lease_until IS NULL OR lease_until < ");
    query.push_bind(now);
    query.push(") AND user_seq = (SELECT seq FROM users WHERE project_id = ");
    query.push_bind(project.as_uuid());
    query.push(" AND user_id = ");
    query.push_bind(user.as_str().to_owned());
    query.push(") AND workflow_id IN (");
    let mut ids = query.separated(", ");
    for id in workflow_ids {
        ids.push_bind(id.clone());
    }
    query.push(")");
    let done = query.build().execute(pool).await.map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn get_execution(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<Execution>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        execution_columns!(),
        " FROM executions e JOIN users u ON u.seq = e.user_seq WHERE e.project_id = $1 AND e.id = $2"
    ))
    .bind(project.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(execution_from_row).transpose()
}

pub(crate) async fn list_executions(
    pool: &PgPool,
    project: ProjectId,
    f: &ExecutionFilter,
) -> StoreResult<Vec<Execution>> {
    let mut q = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        execution_columns!(),
        " FROM executions e JOIN users u ON u.seq = e.user_seq WHERE e.project_id = "
    ));
    push_conditions(&mut q, project, f);
    if let Some((at, id)) = f.after {
        let (before, after) = if f.oldest_first {
            (" > ", " > ")
        } else {
            (" < ", " < ")
        };
        q.push(" AND (e.created_at")
            .push(before)
            .push_bind(at)
            .push(" OR (e.created_at = ")
            .push_bind(at)
            .push(" AND e.id")
            .push(after)
            .push_bind(id)
            .push("))");
    }
    q.push(if f.oldest_first {
        " ORDER BY e.created_at, e.id LIMIT "
    } else {
        " ORDER BY e.created_at DESC, e.id DESC LIMIT "
    })
    .push_bind(i64::from(f.limit))
    .push(" OFFSET ")
    .push_bind(i64::from(f.offset));
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(execution_from_row).collect()
}

pub(crate) async fn count_executions(
    pool: &PgPool,
    project: ProjectId,
    f: &ExecutionFilter,
) -> StoreResult<u64> {
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT COUNT(*) FROM executions e JOIN users u ON u.seq = e.user_seq WHERE e.project_id = ",
    );
    push_conditions(&mut q, project, f);
    let count: i64 = q
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    Ok(count as u64)
}

/// The filter's conditions (all but the page position), after `e.project_id = `.
fn push_conditions(q: &mut QueryBuilder<Postgres>, project: ProjectId, f: &ExecutionFilter) {
    q.push_bind(project.as_uuid());
    if let Some(user) = &f.user_id {
        q.push(" AND u.user_id = ")
            .push_bind(user.as_str().to_owned());
    }
    for (key, value) in &f.meta {
        q.push(" AND EXISTS (SELECT 1 FROM user_meta_index mi WHERE mi.project_id = ")
            .push_bind(project.as_uuid())
            .push(" AND mi.key = ")
            .push_bind(key.clone())
            .push(" AND mi.value = ")
            .push_bind(value.clone())
            .push(" AND mi.user_seq = e.user_seq)");
    }
    if let Some(workflow) = &f.workflow_id {
        q.push(" AND e.workflow_id = ").push_bind(workflow.clone());
    }
    if let Some(integration) = &f.integration {
        q.push(" AND e.integration = ")
            .push_bind(integration.clone());
    }
    if !f.statuses.is_empty() {
        q.push(" AND e.status IN (");
        let mut list = q.separated(", ");
        for status in &f.statuses {
            list.push_bind(status.as_str());
        }
        q.push(")");
    }
    if let Some(since) = f.since {
        q.push(" AND e.created_at >= ").push_bind(since);
    }
    if let Some(until) = f.until {
        q.push(" AND e.created_at < ").push_bind(until);
    }
}

pub(crate) async fn load_step(
    pool: &PgPool,
    execution: Uuid,
    key: &str,
) -> StoreResult<Option<Value>> {
    let raw: Option<String> = sqlx::query_scalar(
        "SELECT record FROM execution_steps WHERE execution_id = $1 AND step_key = $2",
    )
    .bind(execution)
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    raw.map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(corrupt)
}

pub(crate) async fn save_step(
    pool: &PgPool,
    execution: Uuid,
    key: &str,
    record: &Value,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO execution_steps (execution_id, step_key, record, seq, updated_at) \
         VALUES ($1, $2, $3, (SELECT COUNT(*) FROM execution_steps WHERE execution_id = $1), $4) \
         ON CONFLICT (execution_id, step_key) DO UPDATE SET record = EXCLUDED.record, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(execution)
    .bind(key)
    .bind(record.to_string())
    .bind(now)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn count_steps(
    pool: &PgPool,
    executions: &[Uuid],
) -> StoreResult<Vec<(Uuid, u64)>> {
    if executions.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT execution_id, COUNT(*) AS steps FROM execution_steps WHERE execution_id IN (",
    );
    let mut ids = q.separated(", ");
    for id in executions {
        ids.push_bind(*id);
    }
    q.push(") GROUP BY execution_id");
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let id: Uuid = row.try_get("execution_id").map_err(db_err)?;
            let steps: i64 = row.try_get("steps").map_err(db_err)?;
            Ok((id, steps as u64))
        })
        .collect()
}

pub(crate) async fn list_steps(
    pool: &PgPool,
    execution: Uuid,
) -> StoreResult<Vec<(String, Value, UnixMillis)>> {
    let rows = sqlx::query(
        "SELECT step_key, record, updated_at FROM execution_steps WHERE execution_id = $1 ORDER BY seq",
    )
    .bind(execution)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("step_key").map_err(db_err)?,
                json_col(row, "record")?,
                row.try_get("updated_at").map_err(db_err)?,
            ))
        })
        .collect()
}

pub(crate) async fn scheduled(pool: &PgPool) -> StoreResult<Vec<WorkflowVersion>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE is_current AND trigger_kind = 'schedule' \
         ORDER BY project_id, workflow_id"
    ))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(workflow_from_row).collect()
}

pub(crate) async fn last_tick(
    pool: &PgPool,
    project: ProjectId,
    workflow_id: &str,
) -> StoreResult<Option<UnixMillis>> {
    sqlx::query_scalar(
        "SELECT MAX(tick_at) FROM schedule_ticks WHERE project_id = $1 AND workflow_id = $2",
    )
    .bind(project.as_uuid())
    .bind(workflow_id)
    .fetch_one(pool)
    .await
    .map_err(db_err)
}

pub(crate) async fn record_tick(
    pool: &PgPool,
    project: ProjectId,
    workflow_id: &str,
    tick_at: UnixMillis,
    executions: &[Execution],
    now: UnixMillis,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let inserted = sqlx::query(
        "INSERT INTO schedule_ticks (project_id, workflow_id, tick_at, executions, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(project.as_uuid())
    .bind(workflow_id)
    .bind(tick_at)
    .bind(executions.len() as i64)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    insert_executions(&mut tx, executions).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn purge(pool: &PgPool, before: UnixMillis) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM executions WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') \
         AND finished_at < $1",
    )
    .bind(before)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}
