//! Workflows, executions (the queue) and step journals on SQLite. Claims are one
//! `UPDATE … RETURNING` on the single writer connection, so two workers can never take
//! the same execution.

use plugboard_core::{
    Execution, ExecutionFilter, ExecutionStatus, ExecutionUpdate, ProjectId, UnixMillis, UserId,
    WorkflowVersion,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::{db_err, uuid_col};

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

fn json_col(row: &SqliteRow, col: &str) -> StoreResult<Value> {
    let raw: String = row.try_get(col).map_err(db_err)?;
    serde_json::from_str(&raw).map_err(corrupt)
}

fn opt_json_col(row: &SqliteRow, col: &str) -> StoreResult<Option<Value>> {
    let raw: Option<String> = row.try_get(col).map_err(db_err)?;
    raw.map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(corrupt)
}

fn workflow_from_row(row: &SqliteRow) -> StoreResult<WorkflowVersion> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    Ok(WorkflowVersion {
        project_id: ProjectId::parse(&project).map_err(corrupt)?,
        workflow_id: row.try_get("workflow_id").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
        integration: row.try_get("integration").map_err(db_err)?,
        event: row.try_get("event").map_err(db_err)?,
        trigger_kind: row.try_get("trigger_kind").map_err(db_err)?,
        definition: json_col(row, "definition")?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn execution_from_row(row: &SqliteRow) -> StoreResult<Execution> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let credential: Option<String> = row.try_get("credential_id").map_err(db_err)?;
    Ok(Execution {
        id: uuid_col(row, "id")?,
        project_id: ProjectId::parse(&project).map_err(corrupt)?,
        user_id: UserId::parse(&user).map_err(corrupt)?,
        workflow_id: row.try_get("workflow_id").map_err(db_err)?,
        workflow_version: row.try_get("workflow_version").map_err(db_err)?,
        integration: row.try_get("integration").map_err(db_err)?,
        credential_id: credential
            .map(|c| Uuid::parse_str(&c))
            .transpose()
            .map_err(corrupt)?,
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

pub(crate) async fn deploy(pool: &SqlitePool, w: &WorkflowVersion) -> StoreResult<WorkflowVersion> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let newest: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(version) FROM workflow_versions WHERE project_id = ? AND workflow_id = ?",
    )
    .bind(w.project_id.to_string())
    .bind(&w.workflow_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "UPDATE workflow_versions SET is_current = 0 \
         WHERE project_id = ? AND workflow_id = ? AND is_current = 1",
    )
    .bind(w.project_id.to_string())
    .bind(&w.workflow_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let row = sqlx::query(concat!(
        "INSERT INTO workflow_versions (",
        workflow_columns!(),
        ", is_current) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING ",
        workflow_columns!()
    ))
    .bind(w.project_id.to_string())
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

pub(crate) async fn list(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<Vec<WorkflowVersion>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE project_id = ? AND is_current = 1 ORDER BY workflow_id"
    ))
    .bind(project.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(workflow_from_row).collect()
}

pub(crate) async fn get(
    pool: &SqlitePool,
    project: ProjectId,
    workflow_id: &str,
    version: Option<i64>,
) -> StoreResult<Option<WorkflowVersion>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE project_id = ? AND workflow_id = ? \
         AND (version = ? OR (? IS NULL AND is_current = 1))"
    ))
    .bind(project.to_string())
    .bind(workflow_id)
    .bind(version)
    .bind(version)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(workflow_from_row).transpose()
}

/// Rows per multi-row statement (SQLite allows 32,766 bound values).
const ROWS_PER_STATEMENT: usize = 100;

/// Inserts executions on `conn`, many rows per statement; `NotFound` when a user does not
/// exist (then some rows may be written: callers run it in a transaction).
pub(crate) async fn insert_executions(
    conn: &mut sqlx::SqliteConnection,
    executions: &[&Execution],
) -> StoreResult<()> {
    for chunk in executions.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO executions (id, project_id, user_seq, workflow_id, workflow_version, \
             integration, credential_id, status, trigger, settings, output, error, response, \
             runs, next_run_at, created_at, started_at, finished_at) \
             SELECT v.column1, u.project_id, u.seq, v.column2, v.column3, v.column4, v.column5, \
             v.column6, v.column7, v.column8, NULL, v.column9, NULL, 0, v.column10, v.column11, \
             NULL, v.column12 FROM (",
        );
        q.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.to_string())
                .push_bind(e.workflow_id.clone())
                .push_bind(e.workflow_version)
                .push_bind(e.integration.clone())
                .push_bind(e.credential_id.map(|c| c.to_string()))
                .push_bind(e.status.as_str())
                .push_bind(e.trigger.to_string())
                .push_bind(e.settings.to_string())
                .push_bind(e.error.clone())
                .push_bind(e.next_run_at)
                .push_bind(e.created_at)
                .push_bind(e.finished_at)
                .push_bind(e.project_id.to_string())
                .push_bind(e.user_id.as_str().to_owned());
        });
        q.push(") v JOIN users u ON u.project_id = v.column13 AND u.user_id = v.column14");
        let inserted = q.build().execute(&mut *conn).await.map_err(db_err)?;
        if inserted.rows_affected() != chunk.len() as u64 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

pub(crate) async fn claim(
    pool: &SqlitePool,
    holder: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: u32,
    per_user_limit: u32,
) -> StoreResult<Vec<Execution>> {
    let claimed: Vec<String> = sqlx::query_scalar(
        "UPDATE executions SET status = 'EXECUTING', lease_holder = ?1, lease_until = ?2, \
         runs = runs + 1, started_at = COALESCE(started_at, ?3) \
         WHERE id IN ( \
           SELECT c.id FROM executions c \
           WHERE c.status IN ('QUEUED', 'DELAYED', 'EXECUTING') AND c.next_run_at <= ?3 \
             AND (c.lease_until IS NULL OR c.lease_until < ?3) \
             AND (SELECT COUNT(*) FROM executions b WHERE b.user_seq = c.user_seq \
                  AND b.status = 'EXECUTING' AND b.lease_until >= ?3) < ?5 \
           ORDER BY c.next_run_at LIMIT ?4) \
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
    let mut query = QueryBuilder::<Sqlite>::new(concat!(
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
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
    holder: &str,
    lease_until: UnixMillis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE executions SET lease_until = ? WHERE id = ? AND lease_holder = ? \
         AND status = 'EXECUTING'",
    )
    .bind(lease_until)
    .bind(id.to_string())
    .bind(holder)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

/// Releases executions still held by their holders; returns those released.
pub(crate) async fn release_many(
    conn: &mut sqlx::SqliteConnection,
    releases: &[(Uuid, &str, &ExecutionUpdate)],
) -> StoreResult<Vec<Uuid>> {
    let mut released = Vec::with_capacity(releases.len());
    for chunk in releases.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE executions SET status = v.column3, next_run_at = v.column4, \
             output = v.column5, error = v.column6, \
             response = COALESCE(v.column7, executions.response), finished_at = v.column8, \
             lease_holder = NULL, lease_until = NULL FROM (",
        );
        q.push_values(chunk, |mut row, (id, holder, u)| {
            row.push_bind(id.to_string())
                .push_bind(holder.to_string())
                .push_bind(u.status.as_str())
                .push_bind(u.next_run_at)
                .push_bind(u.output.as_ref().map(Value::to_string))
                .push_bind(u.error.clone())
                .push_bind(u.response.as_ref().map(Value::to_string))
                .push_bind(u.finished_at);
        });
        q.push(
            ") v WHERE executions.id = v.column1 AND executions.lease_holder = v.column2 \
             AND executions.status = 'EXECUTING' RETURNING executions.id",
        );
        let ids: Vec<String> = q
            .build_query_scalar()
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for id in ids {
            released.push(Uuid::try_parse(&id).map_err(corrupt)?);
        }
    }
    Ok(released)
}

pub(crate) async fn cancel(
    pool: &SqlitePool,
    project: ProjectId,
    user: &UserId,
    workflow_ids: &[String],
    now: UnixMillis,
) -> StoreResult<u64> {
    if workflow_ids.is_empty() {
        return Ok(0);
    }
    let mut query =
        QueryBuilder::<Sqlite>::new("UPDATE executions SET status = 'CANCELLED', finished_at = ");
    query.push_bind(now);
    query.push(", error = 'cancelled' WHERE status IN ('QUEUED', 'DELAYED', 'EXECUTING') ");
    query.push("AND (lease_until IS NULL OR lease_until < ");
    query.push_bind(now);
    query.push(") AND user_seq = (SELECT seq FROM users WHERE project_id = ");
    query.push_bind(project.to_string());
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
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<Execution>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        execution_columns!(),
        " FROM executions e JOIN users u ON u.seq = e.user_seq WHERE e.project_id = ? AND e.id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(execution_from_row).transpose()
}

pub(crate) async fn list_executions(
    pool: &SqlitePool,
    project: ProjectId,
    f: &ExecutionFilter,
) -> StoreResult<Vec<Execution>> {
    let mut q = QueryBuilder::<Sqlite>::new(concat!(
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
            .push_bind(id.to_string())
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
    pool: &SqlitePool,
    project: ProjectId,
    f: &ExecutionFilter,
) -> StoreResult<u64> {
    let mut q = QueryBuilder::<Sqlite>::new(
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
fn push_conditions(q: &mut QueryBuilder<Sqlite>, project: ProjectId, f: &ExecutionFilter) {
    q.push_bind(project.to_string());
    if let Some(user) = &f.user_id {
        q.push(" AND u.user_id = ")
            .push_bind(user.as_str().to_owned());
    }
    for (key, value) in &f.meta {
        q.push(" AND EXISTS (SELECT 1 FROM user_meta_index mi WHERE mi.project_id = ")
            .push_bind(project.to_string())
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
    pool: &SqlitePool,
    execution: Uuid,
    key: &str,
) -> StoreResult<Option<Value>> {
    let raw: Option<String> = sqlx::query_scalar(
        "SELECT record FROM execution_steps WHERE execution_id = ? AND step_key = ?",
    )
    .bind(execution.to_string())
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    raw.map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(corrupt)
}

/// Saves step records, many rows per statement.
pub(crate) async fn save_steps(
    conn: &mut sqlx::SqliteConnection,
    records: &[(Uuid, &str, &Value, UnixMillis)],
) -> StoreResult<()> {
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO execution_steps (execution_id, step_key, record, seq, updated_at) ",
        );
        // `seq` orders an execution's steps by first write; steps of one execution saved
        // in one statement ran concurrently (a map), so any order among them is right.
        q.push_values(chunk, |mut row, (execution, key, record, now)| {
            row.push_bind(execution.to_string())
                .push_bind(key.to_string())
                .push_bind(record.to_string())
                .push("(SELECT COUNT(*) FROM execution_steps s WHERE s.execution_id = ")
                .push_bind_unseparated(execution.to_string())
                .push_unseparated(")")
                .push_bind(*now);
        });
        q.push(
            " ON CONFLICT (execution_id, step_key) DO UPDATE SET record = excluded.record, \
             updated_at = excluded.updated_at",
        );
        q.build().execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

pub(crate) async fn count_steps(
    pool: &SqlitePool,
    executions: &[Uuid],
) -> StoreResult<Vec<(Uuid, u64)>> {
    if executions.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT execution_id, COUNT(*) AS steps FROM execution_steps WHERE execution_id IN (",
    );
    let mut ids = q.separated(", ");
    for id in executions {
        ids.push_bind(id.to_string());
    }
    q.push(") GROUP BY execution_id");
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("execution_id").map_err(db_err)?;
            let id = Uuid::try_parse(&id).map_err(corrupt)?;
            let steps: i64 = row.try_get("steps").map_err(db_err)?;
            Ok((id, steps as u64))
        })
        .collect()
}

pub(crate) async fn list_steps(
    pool: &SqlitePool,
    execution: Uuid,
) -> StoreResult<Vec<(String, Value, UnixMillis)>> {
    let rows = sqlx::query(
        "SELECT step_key, record, updated_at FROM execution_steps WHERE execution_id = ? ORDER BY seq",
    )
    .bind(execution.to_string())
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

pub(crate) async fn scheduled(pool: &SqlitePool) -> StoreResult<Vec<WorkflowVersion>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        workflow_columns!(),
        " FROM workflow_versions WHERE is_current = 1 AND trigger_kind = 'schedule' \
         ORDER BY project_id, workflow_id"
    ))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(workflow_from_row).collect()
}

pub(crate) async fn last_tick(
    pool: &SqlitePool,
    project: ProjectId,
    workflow_id: &str,
) -> StoreResult<Option<UnixMillis>> {
    sqlx::query_scalar(
        "SELECT MAX(tick_at) FROM schedule_ticks WHERE project_id = ? AND workflow_id = ?",
    )
    .bind(project.to_string())
    .bind(workflow_id)
    .fetch_one(pool)
    .await
    .map_err(db_err)
}

pub(crate) async fn record_tick(
    pool: &SqlitePool,
    project: ProjectId,
    workflow_id: &str,
    tick_at: UnixMillis,
    executions: &[Execution],
    now: UnixMillis,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let inserted = sqlx::query(
        "INSERT INTO schedule_ticks (project_id, workflow_id, tick_at, executions, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(project.to_string())
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
    insert_executions(&mut tx, &executions.iter().collect::<Vec<_>>()).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn purge(pool: &SqlitePool, before: UnixMillis) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM executions WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') \
         AND finished_at < ?",
    )
    .bind(before)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}
