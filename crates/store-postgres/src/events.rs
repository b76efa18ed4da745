//! The SQL behind lifecycle events (the transactional outbox), webhook endpoints, their
//! deliveries and attempts, project policies and the audit log.
//!
//! A delivery claim is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` in a
//! CTE joined back to its event and endpoint: concurrent senders on any node skip each
//! other's rows instead of waiting on them.

use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, DeliveryAttempt, DeliveryNext,
    DeliveryStatus, EventFilter, OutboxEvent, ProjectId, UnixMillis, WebhookDelivery,
    WebhookEndpoint,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::db_err;
use crate::rows::get;

/// An event's columns under `ev_` names; `ev` is the `events` row.
macro_rules! event_columns {
    () => {
        "ev.id AS ev_id, ev.project_id AS ev_project_id, ev.event_type AS ev_event_type, \
         ev.payload::text AS ev_payload, ev.created_at AS ev_created_at"
    };
}

/// An endpoint's columns under `ep_` names; `ep` is the `webhook_endpoints` row.
macro_rules! endpoint_columns {
    () => {
        "ep.id AS ep_id, ep.project_id AS ep_project_id, ep.url AS ep_url, \
         ep.description AS ep_description, ep.event_types AS ep_event_types, \
         ep.secret_sealed AS ep_secret_sealed, \
         ep.previous_secret_sealed AS ep_previous_secret_sealed, \
         ep.previous_secret_expires_at AS ep_previous_secret_expires_at, \
         ep.disabled_at AS ep_disabled_at, ep.disabled_reason AS ep_disabled_reason, \
         ep.consecutive_failures AS ep_consecutive_failures, ep.created_at AS ep_created_at, \
         ep.updated_at AS ep_updated_at"
    };
}

/// A delivery's columns under `d_` names; `d` is the `webhook_deliveries` row.
macro_rules! delivery_columns {
    () => {
        "d.id AS d_id, d.project_id AS d_project_id, d.event_id AS d_event_id, \
         d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, \
         d.next_attempt_at AS d_next_attempt_at, d.last_status_code AS d_last_status_code, \
         d.last_error AS d_last_error, d.created_at AS d_created_at, d.updated_at AS d_updated_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "id, delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt"
    };
}

macro_rules! audit_columns {
    () => {
        "id, project_id, at, actor, action, target, before_digest, after_digest, status"
    };
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn project_id(row: &PgRow, column: &str) -> StoreResult<ProjectId> {
    Ok(ProjectId::from_uuid(get(row, column)?))
}

fn event(row: &PgRow) -> StoreResult<OutboxEvent> {
    let payload: String = get(row, "ev_payload")?;
    Ok(OutboxEvent {
        id: get(row, "ev_id")?,
        project_id: project_id(row, "ev_project_id")?,
        event_type: get(row, "ev_event_type")?,
        payload: serde_json::from_str(&payload).map_err(corrupt)?,
        created_at: get(row, "ev_created_at")?,
    })
}

fn endpoint(row: &PgRow) -> StoreResult<WebhookEndpoint> {
    let event_types: String = get(row, "ep_event_types")?;
    Ok(WebhookEndpoint {
        id: get(row, "ep_id")?,
        project_id: project_id(row, "ep_project_id")?,
        url: get(row, "ep_url")?,
        description: get(row, "ep_description")?,
        event_types: serde_json::from_str(&event_types).map_err(corrupt)?,
        secret_sealed: get(row, "ep_secret_sealed")?,
        previous_secret_sealed: get(row, "ep_previous_secret_sealed")?,
        previous_secret_expires_at: get(row, "ep_previous_secret_expires_at")?,
        disabled_at: get(row, "ep_disabled_at")?,
        disabled_reason: get(row, "ep_disabled_reason")?,
        consecutive_failures: get(row, "ep_consecutive_failures")?,
        created_at: get(row, "ep_created_at")?,
        updated_at: get(row, "ep_updated_at")?,
    })
}

fn delivery(row: &PgRow) -> StoreResult<WebhookDelivery> {
    let status: String = get(row, "d_status")?;
    Ok(WebhookDelivery {
        id: get(row, "d_id")?,
        project_id: project_id(row, "d_project_id")?,
        event_id: get(row, "d_event_id")?,
        endpoint_id: get(row, "d_endpoint_id")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown delivery status `{status}`")))?,
        attempts: get(row, "d_attempts")?,
        next_attempt_at: get(row, "d_next_attempt_at")?,
        last_status_code: get(row, "d_last_status_code")?,
        last_error: get(row, "d_last_error")?,
        created_at: get(row, "d_created_at")?,
        updated_at: get(row, "d_updated_at")?,
    })
}

fn attempt(row: &PgRow) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        id: get(row, "id")?,
        delivery_id: get(row, "delivery_id")?,
        attempt: get(row, "attempt")?,
        started_at: get(row, "started_at")?,
        duration_ms: get(row, "duration_ms")?,
        status_code: get(row, "status_code")?,
        error: get(row, "error")?,
        response_excerpt: get(row, "response_excerpt")?,
    })
}

fn audit_entry(row: &PgRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        at: get(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        before_digest: get(row, "before_digest")?,
        after_digest: get(row, "after_digest")?,
        status: get(row, "status")?,
    })
}

fn event_types_text(endpoint: &WebhookEndpoint) -> StoreResult<String> {
    serde_json::to_string(&endpoint.event_types).map_err(corrupt)
}

fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// Writes events to the outbox on `conn` (in the caller's transaction), in one statement.
pub(crate) async fn insert_events(
    conn: &mut PgConnection,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let projects: Vec<Uuid> = events.iter().map(|e| e.project_id.as_uuid()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
    let created: Vec<i64> = events.iter().map(|e| e.created_at).collect();
    sqlx::query(
        "INSERT INTO events (id, project_id, event_type, payload, created_at, fanned_out) \
         SELECT e.id, e.project_id, e.event_type, e.payload::jsonb, e.created_at, FALSE \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[]) \
         AS e (id, project_id, event_type, payload, created_at)",
    )
    .bind(ids)
    .bind(projects)
    .bind(types)
    .bind(payloads)
    .bind(created)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn insert_events_alone(pool: &PgPool, events: &[OutboxEvent]) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(db_err)?;
    insert_events(&mut conn, events).await
}

pub(crate) async fn get_policy(pool: &PgPool, project: ProjectId) -> StoreResult<Option<Value>> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT document::text FROM project_policies WHERE project_id = $1")
            .bind(project.as_uuid())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    raw.map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(corrupt)
}

pub(crate) async fn put_policy(
    pool: &PgPool,
    project: ProjectId,
    policy: &Value,
    now: UnixMillis,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO project_policies (project_id, document, updated_at) \
         VALUES ($1, $2::jsonb, $3) ON CONFLICT (project_id) DO UPDATE SET \
         document = EXCLUDED.document, updated_at = EXCLUDED.updated_at",
    )
    .bind(project.as_uuid())
    .bind(policy.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_events(&mut tx, events).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn unfanned(pool: &PgPool, n: u32) -> StoreResult<Vec<OutboxEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events ev WHERE NOT ev.fanned_out ORDER BY ev.id LIMIT $1"
    ))
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(event).collect()
}

/// Inserts deliveries on `conn`; one that exists already for its (event, endpoint) is
/// left alone.
async fn insert_deliveries(
    conn: &mut PgConnection,
    deliveries: &[WebhookDelivery],
) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "INSERT INTO webhook_deliveries (id, project_id, event_id, endpoint_id, status, \
         attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at) ",
    );
    q.push_values(deliveries, |mut row, d| {
        row.push_bind(d.id)
            .push_bind(d.project_id.as_uuid())
            .push_bind(d.event_id)
            .push_bind(d.endpoint_id)
            .push_bind(d.status.as_str())
            .push_bind(d.attempts)
            .push_bind(d.next_attempt_at)
            .push_bind(d.last_status_code)
            .push_bind(d.last_error.clone())
            .push_bind(d.created_at)
            .push_bind(d.updated_at);
    });
    q.push(" ON CONFLICT (event_id, endpoint_id) DO NOTHING");
    q.build().execute(conn).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn fan_out(
    pool: &PgPool,
    event_id: Uuid,
    deliveries: &[WebhookDelivery],
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let marked =
        sqlx::query("UPDATE events SET fanned_out = TRUE WHERE id = $1 AND NOT fanned_out")
            .bind(event_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    if marked.rows_affected() == 0 {
        return Ok(false);
    }
    insert_deliveries(&mut tx, deliveries).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn get_event(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<OutboxEvent>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events ev WHERE ev.project_id = $1 AND ev.id = $2"
    ))
    .bind(project.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(event).transpose()
}

pub(crate) async fn list_events(
    pool: &PgPool,
    project: ProjectId,
    f: &EventFilter,
) -> StoreResult<Vec<OutboxEvent>> {
    let mut q = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events ev WHERE ev.project_id = "
    ));
    q.push_bind(project.as_uuid());
    if let Some(event_type) = &f.event_type {
        q.push(" AND ev.event_type = ")
            .push_bind(event_type.clone());
    }
    if let Some(since) = f.since {
        q.push(" AND ev.created_at >= ").push_bind(since);
    }
    if let Some(until) = f.until {
        q.push(" AND ev.created_at < ").push_bind(until);
    }
    if let Some(before) = f.before {
        q.push(" AND ev.id < ").push_bind(before);
    }
    q.push(" ORDER BY ev.id DESC LIMIT ")
        .push_bind(limit(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(event).collect()
}

pub(crate) async fn purge_events(pool: &PgPool, before: UnixMillis) -> StoreResult<u64> {
    // Deliveries and their attempts go with their event (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM events WHERE created_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn insert_endpoint(pool: &PgPool, e: &WebhookEndpoint) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, project_id, url, description, event_types, \
         secret_sealed, previous_secret_sealed, previous_secret_expires_at, disabled_at, \
         disabled_reason, consecutive_failures, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(e.id)
    .bind(e.project_id.as_uuid())
    .bind(&e.url)
    .bind(&e.description)
    .bind(event_types_text(e)?)
    .bind(&e.secret_sealed)
    .bind(e.previous_secret_sealed.as_deref())
    .bind(e.previous_secret_expires_at)
    .bind(e.disabled_at)
    .bind(e.disabled_reason.as_deref())
    .bind(e.consecutive_failures)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_endpoints(
    pool: &PgPool,
    project: ProjectId,
) -> StoreResult<Vec<WebhookEndpoint>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints ep WHERE ep.project_id = $1 ORDER BY ep.created_at, ep.id"
    ))
    .bind(project.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(endpoint).collect()
}

pub(crate) async fn get_endpoint(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<Option<WebhookEndpoint>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints ep WHERE ep.project_id = $1 AND ep.id = $2"
    ))
    .bind(project.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(endpoint).transpose()
}

pub(crate) async fn update_endpoint(pool: &PgPool, e: &WebhookEndpoint) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, \
         secret_sealed = $4, previous_secret_sealed = $5, previous_secret_expires_at = $6, \
         disabled_at = $7, disabled_reason = $8, consecutive_failures = $9, updated_at = $10 \
         WHERE project_id = $11 AND id = $12",
    )
    .bind(&e.url)
    .bind(&e.description)
    .bind(event_types_text(e)?)
    .bind(&e.secret_sealed)
    .bind(e.previous_secret_sealed.as_deref())
    .bind(e.previous_secret_expires_at)
    .bind(e.disabled_at)
    .bind(e.disabled_reason.as_deref())
    .bind(e.consecutive_failures)
    .bind(e.updated_at)
    .bind(e.project_id.as_uuid())
    .bind(e.id)
    .execute(pool)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete_endpoint(
    pool: &PgPool,
    project: ProjectId,
    id: Uuid,
) -> StoreResult<()> {
    // Deliveries and their attempts go with the endpoint (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE project_id = $1 AND id = $2")
        .bind(project.as_uuid())
        .bind(id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn claim_deliveries(
    pool: &PgPool,
    holder: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
    n: u32,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(concat!(
        "WITH d AS ( \
           UPDATE webhook_deliveries SET lease_holder = $1, lease_until = $2 \
           WHERE id IN ( \
             SELECT c.id FROM webhook_deliveries c \
             JOIN webhook_endpoints w ON w.id = c.endpoint_id \
             WHERE c.status = 'PENDING' AND c.next_attempt_at <= $3 \
               AND (c.lease_until IS NULL OR c.lease_until < $3) \
               AND w.disabled_at IS NULL \
             ORDER BY c.next_attempt_at, c.id LIMIT $4 \
             FOR UPDATE OF c SKIP LOCKED) \
           RETURNING *) \
         SELECT ",
        delivery_columns!(),
        ", ",
        event_columns!(),
        ", ",
        endpoint_columns!(),
        " FROM d JOIN events ev ON ev.id = d.event_id \
         JOIN webhook_endpoints ep ON ep.id = d.endpoint_id \
         ORDER BY d.next_attempt_at, d.id"
    ))
    .bind(holder)
    .bind(lease_until)
    .bind(now)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(ClaimedDelivery {
                delivery: delivery(row)?,
                event: event(row)?,
                endpoint: endpoint(row)?,
            })
        })
        .collect()
}

pub(crate) async fn record_attempt(
    pool: &PgPool,
    holder: &str,
    r: &AttemptRecord,
) -> StoreResult<bool> {
    let a = &r.attempt;
    let (status, next_attempt_at) = match r.next {
        DeliveryNext::Delivered => (DeliveryStatus::Delivered, None),
        DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
        DeliveryNext::GiveUp => (DeliveryStatus::Failed, None),
    };
    let mut tx = pool.begin().await.map_err(db_err)?;
    let endpoint_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, \
         next_attempt_at = COALESCE($3, next_attempt_at), last_status_code = $4, \
         last_error = $5, lease_holder = NULL, lease_until = NULL, updated_at = $6 \
         WHERE id = $7 AND lease_holder = $8 AND status = 'PENDING' RETURNING endpoint_id",
    )
    .bind(status.as_str())
    .bind(a.attempt)
    .bind(next_attempt_at)
    .bind(a.status_code)
    .bind(a.error.as_deref())
    .bind(r.now)
    .bind(a.delivery_id)
    .bind(holder)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(endpoint_id) = endpoint_id else {
        return Ok(false);
    };
    sqlx::query(concat!(
        "INSERT INTO webhook_attempts (",
        attempt_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(a.id)
    .bind(a.delivery_id)
    .bind(a.attempt)
    .bind(a.started_at)
    .bind(a.duration_ms)
    .bind(a.status_code)
    .bind(a.error.as_deref())
    .bind(a.response_excerpt.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if r.next == DeliveryNext::Delivered {
        sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = $1")
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    } else {
        // A threshold of 0 or less never disables; an endpoint already disabled keeps
        // its original time and reason.
        sqlx::query(
            "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
             disabled_at = CASE WHEN disabled_at IS NULL AND $2 > 0 \
                 AND consecutive_failures + 1 >= $2 THEN $3 ELSE disabled_at END, \
             disabled_reason = CASE WHEN disabled_at IS NULL AND $2 > 0 \
                 AND consecutive_failures + 1 >= $2 \
                 THEN 'disabled after ' || (consecutive_failures + 1) \
                      || ' failed attempts in a row' \
                 ELSE disabled_reason END, \
             updated_at = CASE WHEN disabled_at IS NULL AND $2 > 0 \
                 AND consecutive_failures + 1 >= $2 THEN $3 ELSE updated_at END \
             WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(r.disable_after_failures)
        .bind(r.now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn list_deliveries(
    pool: &PgPool,
    project: ProjectId,
    event_id: Uuid,
) -> StoreResult<Vec<WebhookDelivery>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries d WHERE d.project_id = $1 AND d.event_id = $2 \
         ORDER BY d.created_at, d.id"
    ))
    .bind(project.as_uuid())
    .bind(event_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(delivery).collect()
}

pub(crate) async fn list_attempts(
    pool: &PgPool,
    delivery_id: Uuid,
) -> StoreResult<Vec<DeliveryAttempt>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM webhook_attempts WHERE delivery_id = $1 ORDER BY started_at, id"
    ))
    .bind(delivery_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(attempt).collect()
}

pub(crate) async fn redeliver(
    pool: &PgPool,
    project: ProjectId,
    event_id: Uuid,
    endpoints: &[Uuid],
    now: UnixMillis,
) -> StoreResult<u64> {
    // One row per endpoint: an upsert may not touch a row twice.
    let mut endpoints = endpoints.to_vec();
    endpoints.sort_unstable();
    endpoints.dedup();
    if endpoints.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = endpoints.iter().map(|_| Uuid::now_v7()).collect();
    // Only the project's endpoints, and only for the project's event.
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (id, project_id, event_id, endpoint_id, status, \
         attempts, next_attempt_at, created_at, updated_at) \
         SELECT t.id, ev.project_id, ev.id, ep.id, 'PENDING', 0, $4, $4, $4 \
         FROM UNNEST($1::uuid[], $2::uuid[]) AS t (id, endpoint_id) \
         JOIN webhook_endpoints ep ON ep.id = t.endpoint_id AND ep.project_id = $3 \
         JOIN events ev ON ev.id = $5 AND ev.project_id = $3 \
         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'PENDING', attempts = 0, \
         next_attempt_at = EXCLUDED.next_attempt_at, lease_holder = NULL, lease_until = NULL, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(ids)
    .bind(endpoints)
    .bind(project.as_uuid())
    .bind(now)
    .bind(event_id)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn insert_audit(pool: &PgPool, e: &AuditEntry) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO audit_log (",
        audit_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(e.id)
    .bind(e.project_id.as_uuid())
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.target)
    .bind(e.before_digest.as_deref())
    .bind(e.after_digest.as_deref())
    .bind(e.status)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_audit(
    pool: &PgPool,
    project: ProjectId,
    f: &AuditFilter,
) -> StoreResult<Vec<AuditEntry>> {
    let mut q = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE project_id = "
    ));
    q.push_bind(project.as_uuid());
    if let Some(since) = f.since {
        q.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = f.until {
        q.push(" AND at < ").push_bind(until);
    }
    if let Some(actor) = &f.actor {
        q.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(prefix) = &f.target {
        // `target` compares bytewise (COLLATE "C"): a prefix is a range.
        let mut high = String::with_capacity(prefix.len() + 4);
        high.push_str(prefix);
        high.push(char::MAX);
        q.push(" AND target >= ")
            .push_bind(prefix.clone())
            .push(" AND target < ")
            .push_bind(high);
    }
    if let Some(before) = f.before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(audit_entry).collect()
}
