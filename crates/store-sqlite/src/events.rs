//! The outbox, webhook endpoints, deliveries and their attempts, project policies and the
//! audit log.

use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, DeliveryAttempt, DeliveryNext,
    DeliveryStatus, EventFilter, OutboxEvent, ProjectId, UnixMillis, WebhookDelivery,
    WebhookEndpoint,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::{db_err, uuid_col};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn project_col(row: &SqliteRow, col: &str) -> StoreResult<ProjectId> {
    let raw: String = row.try_get(col).map_err(db_err)?;
    ProjectId::parse(&raw).map_err(corrupt)
}

/// Writes events into the outbox within the caller's transaction.
pub(crate) async fn insert_events(
    conn: &mut SqliteConnection,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    // SQLite binds at most 32,766 parameters; 5 per row.
    for chunk in events.chunks(1000) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, project_id, event_type, payload, created_at) ",
        );
        query.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.to_string())
                .push_bind(e.project_id.to_string())
                .push_bind(&e.event_type)
                .push_bind(e.payload.to_string())
                .push_bind(e.created_at);
        });
        query.build().execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

macro_rules! event_columns {
    () => {
        "e.id, e.project_id, e.event_type, e.payload, e.created_at"
    };
}

fn event_from_row(row: &SqliteRow) -> StoreResult<OutboxEvent> {
    let payload: String = row.try_get("payload").map_err(db_err)?;
    Ok(OutboxEvent {
        id: uuid_col(row, "id")?,
        project_id: project_col(row, "project_id")?,
        event_type: row.try_get("event_type").map_err(db_err)?,
        payload: serde_json::from_str(&payload).map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

pub(crate) async fn unfanned_events(
    pool: &SqlitePool,
    limit: u32,
) -> StoreResult<Vec<OutboxEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events e WHERE e.fanned_out = 0 ORDER BY e.id LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(event_from_row).collect()
}

pub(crate) async fn fan_out_event(
    pool: &SqlitePool,
    event_id: Uuid,
    deliveries: &[WebhookDelivery],
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let marked = sqlx::query("UPDATE events SET fanned_out = 1 WHERE id = ? AND fanned_out = 0")
        .bind(event_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if marked.rows_affected() == 0 {
        return Ok(false);
    }
    for delivery in deliveries {
        insert_delivery(&mut tx, delivery).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

async fn insert_delivery(conn: &mut SqliteConnection, d: &WebhookDelivery) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, project_id, event_id, endpoint_id, status, attempts, \
         next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (event_id, endpoint_id) DO NOTHING",
    )
    .bind(d.id.to_string())
    .bind(d.project_id.to_string())
    .bind(d.event_id.to_string())
    .bind(d.endpoint_id.to_string())
    .bind(d.status.as_str())
    .bind(d.attempts)
    .bind(d.next_attempt_at)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get_event(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<OutboxEvent>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events e WHERE e.project_id = ? AND e.id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(event_from_row).transpose()
}

pub(crate) async fn list_events(
    pool: &SqlitePool,
    project: ProjectId,
    filter: &EventFilter,
) -> StoreResult<Vec<OutboxEvent>> {
    let mut query = QueryBuilder::<Sqlite>::new(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events e WHERE e.project_id = "
    ));
    query.push_bind(project.to_string());
    if let Some(kind) = &filter.event_type {
        query.push(" AND e.event_type = ").push_bind(kind.clone());
    }
    if let Some(since) = filter.since {
        query.push(" AND e.created_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND e.created_at < ").push_bind(until);
    }
    if let Some(before) = filter.before {
        query.push(" AND e.id < ").push_bind(before.to_string());
    }
    query
        .push(" ORDER BY e.id DESC LIMIT ")
        .push_bind(filter.limit);
    let rows = query.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(event_from_row).collect()
}

pub(crate) async fn purge_events(pool: &SqlitePool, before: UnixMillis) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    macro_rules! old {
        () => {
            "SELECT id FROM events WHERE created_at < ?"
        };
    }
    sqlx::query(concat!(
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE event_id IN (",
        old!(),
        "))"
    ))
    .bind(before)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query(concat!(
        "DELETE FROM webhook_deliveries WHERE event_id IN (",
        old!(),
        ")"
    ))
    .bind(before)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let events = sqlx::query("DELETE FROM events WHERE created_at < ?")
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(events.rows_affected())
}

macro_rules! endpoint_columns {
    () => {
        "w.id AS w_id, w.project_id AS w_project_id, w.url, w.description, \
    w.event_types, w.secret_sealed, w.previous_secret_sealed, w.previous_secret_expires_at, \
    w.disabled_at, w.disabled_reason, w.consecutive_failures, w.created_at AS w_created_at, \
    w.updated_at AS w_updated_at"
    };
}

fn endpoint_from_row(row: &SqliteRow) -> StoreResult<WebhookEndpoint> {
    let types: String = row.try_get("event_types").map_err(db_err)?;
    Ok(WebhookEndpoint {
        id: uuid_col(row, "w_id")?,
        project_id: project_col(row, "w_project_id")?,
        url: row.try_get("url").map_err(db_err)?,
        description: row.try_get("description").map_err(db_err)?,
        event_types: serde_json::from_str(&types).map_err(corrupt)?,
        secret_sealed: row.try_get("secret_sealed").map_err(db_err)?,
        previous_secret_sealed: row.try_get("previous_secret_sealed").map_err(db_err)?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at").map_err(db_err)?,
        disabled_at: row.try_get("disabled_at").map_err(db_err)?,
        disabled_reason: row.try_get("disabled_reason").map_err(db_err)?,
        consecutive_failures: row.try_get("consecutive_failures").map_err(db_err)?,
        created_at: row.try_get("w_created_at").map_err(db_err)?,
        updated_at: row.try_get("w_updated_at").map_err(db_err)?,
    })
}

fn types_text(endpoint: &WebhookEndpoint) -> String {
    serde_json::to_string(&endpoint.event_types).expect("strings serialize")
}

pub(crate) async fn insert_endpoint(pool: &SqlitePool, w: &WebhookEndpoint) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, project_id, url, description, event_types, \
         secret_sealed, previous_secret_sealed, previous_secret_expires_at, disabled_at, \
         disabled_reason, consecutive_failures, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(w.id.to_string())
    .bind(w.project_id.to_string())
    .bind(&w.url)
    .bind(&w.description)
    .bind(types_text(w))
    .bind(&w.secret_sealed)
    .bind(w.previous_secret_sealed.as_deref())
    .bind(w.previous_secret_expires_at)
    .bind(w.disabled_at)
    .bind(w.disabled_reason.as_deref())
    .bind(w.consecutive_failures)
    .bind(w.created_at)
    .bind(w.updated_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_endpoints(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<Vec<WebhookEndpoint>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints w WHERE w.project_id = ? \
         ORDER BY w.created_at, w.id"
    ))
    .bind(project.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(endpoint_from_row).collect()
}

pub(crate) async fn get_endpoint(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<WebhookEndpoint>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints w WHERE w.project_id = ? AND w.id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(endpoint_from_row).transpose()
}

pub(crate) async fn update_endpoint(pool: &SqlitePool, w: &WebhookEndpoint) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, \
         secret_sealed = ?, previous_secret_sealed = ?, previous_secret_expires_at = ?, \
         disabled_at = ?, disabled_reason = ?, consecutive_failures = ?, updated_at = ? \
         WHERE project_id = ? AND id = ?",
    )
    .bind(&w.url)
    .bind(&w.description)
    .bind(types_text(w))
    .bind(&w.secret_sealed)
    .bind(w.previous_secret_sealed.as_deref())
    .bind(w.previous_secret_expires_at)
    .bind(w.disabled_at)
    .bind(w.disabled_reason.as_deref())
    .bind(w.consecutive_failures)
    .bind(w.updated_at)
    .bind(w.project_id.to_string())
    .bind(w.id.to_string())
    .execute(pool)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete_endpoint(
    pool: &SqlitePool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let id = id.to_string();
    let found: Option<String> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE project_id = ? AND id = ?")
            .bind(project.to_string())
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
    if found.is_none() {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE endpoint_id = ?)",
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?",
        "DELETE FROM webhook_endpoints WHERE id = ?",
    ] {
        sqlx::query(sql)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

macro_rules! delivery_columns {
    () => {
        "d.id AS d_id, d.project_id AS d_project_id, d.event_id, \
    d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, \
    d.created_at AS d_created_at, d.updated_at AS d_updated_at"
    };
}

fn delivery_from_row(row: &SqliteRow) -> StoreResult<WebhookDelivery> {
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(WebhookDelivery {
        id: uuid_col(row, "d_id")?,
        project_id: project_col(row, "d_project_id")?,
        event_id: uuid_col(row, "event_id")?,
        endpoint_id: uuid_col(row, "endpoint_id")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt(&status))?,
        attempts: row.try_get("attempts").map_err(db_err)?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(db_err)?,
        last_status_code: row.try_get("last_status_code").map_err(db_err)?,
        last_error: row.try_get("last_error").map_err(db_err)?,
        created_at: row.try_get("d_created_at").map_err(db_err)?,
        updated_at: row.try_get("d_updated_at").map_err(db_err)?,
    })
}

pub(crate) async fn claim_deliveries(
    writer: &SqlitePool,
    holder: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: u32,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET lease_holder = ?, lease_until = ? WHERE id IN ( \
           SELECT d.id FROM webhook_deliveries d \
           JOIN webhook_endpoints w ON w.id = d.endpoint_id \
           WHERE d.status = 'PENDING' AND d.next_attempt_at <= ? \
             AND (d.lease_until IS NULL OR d.lease_until < ?) AND w.disabled_at IS NULL \
           ORDER BY d.next_attempt_at, d.id LIMIT ?) \
         RETURNING id",
    )
    .bind(holder)
    .bind(lease_until)
    .bind(now)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            ", ",
            event_columns!(),
            ", ",
            endpoint_columns!(),
            " \
             FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        claimed.push(ClaimedDelivery {
            delivery: delivery_from_row(&row)?,
            event: event_from_row(&row)?,
            endpoint: endpoint_from_row(&row)?,
        });
    }
    tx.commit().await.map_err(db_err)?;
    claimed.sort_by_key(|c| (c.delivery.next_attempt_at, c.delivery.id));
    Ok(claimed)
}

pub(crate) async fn record_attempt(
    writer: &SqlitePool,
    holder: &str,
    record: &AttemptRecord,
) -> StoreResult<bool> {
    let attempt = &record.attempt;
    let (status, next_at) = match record.next {
        DeliveryNext::Delivered => (DeliveryStatus::Delivered, None),
        DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
        DeliveryNext::GiveUp => (DeliveryStatus::Failed, None),
    };
    let mut tx = writer.begin().await.map_err(db_err)?;
    let endpoint: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET status = ?, attempts = ?, \
         next_attempt_at = COALESCE(?, next_attempt_at), last_status_code = ?, last_error = ?, \
         lease_holder = NULL, lease_until = NULL, updated_at = ? \
         WHERE id = ? AND lease_holder = ? AND status = 'PENDING' RETURNING endpoint_id",
    )
    .bind(status.as_str())
    .bind(attempt.attempt)
    .bind(next_at)
    .bind(attempt.status_code)
    .bind(attempt.error.as_deref())
    .bind(record.now)
    .bind(attempt.delivery_id.to_string())
    .bind(holder)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(endpoint) = endpoint else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO webhook_attempts (id, delivery_id, attempt, started_at, duration_ms, \
         status_code, error, response_excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(attempt.id.to_string())
    .bind(attempt.delivery_id.to_string())
    .bind(attempt.attempt)
    .bind(attempt.started_at)
    .bind(attempt.duration_ms)
    .bind(attempt.status_code)
    .bind(attempt.error.as_deref())
    .bind(attempt.response_excerpt.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    count_endpoint_outcome(&mut tx, &endpoint, record).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

/// A success clears the endpoint's failures in a row; a failure adds one and, at the
/// threshold, disables the endpoint.
async fn count_endpoint_outcome(
    conn: &mut SqliteConnection,
    endpoint: &str,
    record: &AttemptRecord,
) -> StoreResult<()> {
    if record.next == DeliveryNext::Delivered {
        sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ?")
            .bind(endpoint)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        return Ok(());
    }
    let threshold = record.disable_after_failures;
    sqlx::query(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
         disabled_at = CASE WHEN ? > 0 AND consecutive_failures + 1 >= ? AND disabled_at IS NULL \
           THEN ? ELSE disabled_at END, \
         disabled_reason = CASE WHEN ? > 0 AND consecutive_failures + 1 >= ? AND disabled_at IS NULL \
           THEN ? ELSE disabled_reason END, \
         updated_at = CASE WHEN ? > 0 AND consecutive_failures + 1 >= ? AND disabled_at IS NULL \
           THEN ? ELSE updated_at END \
         WHERE id = ?",
    )
    .bind(threshold)
    .bind(threshold)
    .bind(record.now)
    .bind(threshold)
    .bind(threshold)
    .bind(format!("disabled after {threshold} failed attempts in a row"))
    .bind(threshold)
    .bind(threshold)
    .bind(record.now)
    .bind(endpoint)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_deliveries(
    pool: &SqlitePool,
    project: ProjectId,
    event_id: Uuid,
) -> StoreResult<Vec<WebhookDelivery>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries d \
         WHERE d.project_id = ? AND d.event_id = ? ORDER BY d.created_at, d.id"
    ))
    .bind(project.to_string())
    .bind(event_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(delivery_from_row).collect()
}

pub(crate) async fn list_attempts(
    pool: &SqlitePool,
    delivery_id: Uuid,
) -> StoreResult<Vec<DeliveryAttempt>> {
    let rows = sqlx::query(
        "SELECT id, delivery_id, attempt, started_at, duration_ms, status_code, error, \
         response_excerpt FROM webhook_attempts WHERE delivery_id = ? ORDER BY started_at, id",
    )
    .bind(delivery_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryAttempt {
                id: uuid_col(row, "id")?,
                delivery_id: uuid_col(row, "delivery_id")?,
                attempt: row.try_get("attempt").map_err(db_err)?,
                started_at: row.try_get("started_at").map_err(db_err)?,
                duration_ms: row.try_get("duration_ms").map_err(db_err)?,
                status_code: row.try_get("status_code").map_err(db_err)?,
                error: row.try_get("error").map_err(db_err)?,
                response_excerpt: row.try_get("response_excerpt").map_err(db_err)?,
            })
        })
        .collect()
}

pub(crate) async fn redeliver(
    writer: &SqlitePool,
    project: ProjectId,
    event_id: Uuid,
    endpoints: &[Uuid],
    now: UnixMillis,
) -> StoreResult<u64> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let mut count = 0;
    let mut unique = endpoints.to_vec();
    unique.sort();
    unique.dedup();
    for endpoint in &unique {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, project_id, event_id, endpoint_id, status, \
             attempts, next_attempt_at, created_at, updated_at) \
             SELECT ?, e.project_id, e.id, w.id, 'PENDING', 0, ?, ?, ? FROM events e \
             JOIN webhook_endpoints w ON w.project_id = e.project_id \
             WHERE e.project_id = ? AND e.id = ? AND w.id = ? \
             ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'PENDING', attempts = 0, \
             next_attempt_at = excluded.next_attempt_at, lease_holder = NULL, lease_until = NULL, \
             updated_at = excluded.updated_at",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(project.to_string())
        .bind(event_id.to_string())
        .bind(endpoint.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        count += done.rows_affected();
    }
    tx.commit().await.map_err(db_err)?;
    Ok(count)
}

pub(crate) async fn get_policy(
    pool: &SqlitePool,
    project: ProjectId,
) -> StoreResult<Option<Value>> {
    let document: Option<String> =
        sqlx::query_scalar("SELECT document FROM project_policies WHERE project_id = ?")
            .bind(project.to_string())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    document
        .map(|d| serde_json::from_str(&d).map_err(corrupt))
        .transpose()
}

pub(crate) async fn put_policy(
    writer: &SqlitePool,
    project: ProjectId,
    policy: &Value,
    now: UnixMillis,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO project_policies (project_id, document, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (project_id) DO UPDATE SET document = excluded.document, \
         updated_at = excluded.updated_at",
    )
    .bind(project.to_string())
    .bind(policy.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn insert_audit(writer: &SqlitePool, a: &AuditEntry) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, project_id, at, actor, action, target, before_digest, \
         after_digest, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id.to_string())
    .bind(a.project_id.to_string())
    .bind(a.at)
    .bind(&a.actor)
    .bind(&a.action)
    .bind(&a.target)
    .bind(a.before_digest.as_deref())
    .bind(a.after_digest.as_deref())
    .bind(a.status)
    .execute(writer)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_audit(
    pool: &SqlitePool,
    project: ProjectId,
    filter: &AuditFilter,
) -> StoreResult<Vec<AuditEntry>> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT id, project_id, at, actor, action, target, before_digest, after_digest, status \
         FROM audit_log WHERE project_id = ",
    );
    query.push_bind(project.to_string());
    if let Some(since) = filter.since {
        query.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND at < ").push_bind(until);
    }
    if let Some(actor) = &filter.actor {
        query.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(target) = &filter.target {
        // A range rather than LIKE, so `%` and `_` in targets mean themselves.
        query
            .push(" AND target >= ")
            .push_bind(target.clone())
            .push(" AND target < ")
            .push_bind(format!("{target}\u{10FFFF}"));
    }
    if let Some(before) = filter.before {
        query.push(" AND id < ").push_bind(before.to_string());
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(filter.limit);
    let rows = query.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                id: uuid_col(row, "id")?,
                project_id: project_col(row, "project_id")?,
                at: row.try_get("at").map_err(db_err)?,
                actor: row.try_get("actor").map_err(db_err)?,
                action: row.try_get("action").map_err(db_err)?,
                target: row.try_get("target").map_err(db_err)?,
                before_digest: row.try_get("before_digest").map_err(db_err)?,
                after_digest: row.try_get("after_digest").map_err(db_err)?,
                status: row.try_get("status").map_err(db_err)?,
            })
        })
        .collect()
}
