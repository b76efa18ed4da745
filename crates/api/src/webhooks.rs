//! Lifecycle webhooks: a project's endpoints (with their signing secrets, shown once),
//! the outbox's events with their deliveries and attempts, and redelivery.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_core::{
    DeliveryAttempt, DeliveryStatus, EventFilter, OutboxEvent, WebhookDelivery, WebhookEndpoint,
    now_millis,
};
use plugboard_service::ServiceError;
use plugboard_service::webhooks::{EndpointPatch, NewEndpoint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectAdmin};
use crate::management::ListView;
use crate::query::{parse_limit, parse_time};
use crate::wire::timestamp;

pub fn router() -> Router<AppState> {
    let project = "/api/v1/projects/{projectId}";
    Router::new()
        .route(
            &format!("{project}/webhooks/endpoints"),
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            &format!("{project}/webhooks/endpoints/{{endpointId}}"),
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            &format!("{project}/webhooks/endpoints/{{endpointId}}/rotate-secret"),
            post(rotate_secret),
        )
        // `POST …/events` (app events that start workflows) is in `workflows`.
        .route(&format!("{project}/events"), get(list_events))
        .route(&format!("{project}/events/{{eventId}}"), get(get_event))
        .route(
            &format!("{project}/events/{{eventId}}/redeliver"),
            post(redeliver),
        )
}

/// A webhook endpoint as shown: never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// The event types it receives; empty means all.
    pub event_types: Vec<String>,
    /// Turned off, by hand or after too many failed attempts in a row.
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub date_disabled: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i32,
    /// After a rotation: until when the previous secret still signs (absent once past).
    pub previous_secret_expires_at: Option<String>,
    pub date_created: String,
    pub date_updated: String,
}

impl From<WebhookEndpoint> for EndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        let now = now_millis();
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            disabled: e.disabled_at.is_some(),
            disabled_reason: e.disabled_reason,
            date_disabled: e.disabled_at.map(timestamp),
            consecutive_failures: e.consecutive_failures,
            previous_secret_expires_at: e
                .previous_secret_expires_at
                .filter(|at| *at > now)
                .map(timestamp),
            date_created: timestamp(e.created_at),
            date_updated: timestamp(e.updated_at),
        }
    }
}

/// An endpoint with its signing secret: only in the answers that create it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify webhooks with it. Shown this once; keep it safe.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEndpointBody {
    /// `https://` (or `http://` on loopback where the server allows it).
    pub url: String,
    /// At most 500 characters.
    pub description: Option<String>,
    /// Event types to receive; absent or empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEndpointBody {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `false` disables it; `true` enables it again and forgets its failures.
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecretBody {
    /// How long the previous secret still signs, 0 to 604800 (default 86400).
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeliverBody {
    /// Only this endpoint; absent: every enabled endpoint that wants the event's type.
    pub endpoint_id: Option<Uuid>,
}

#[derive(Deserialize)]
pub struct EndpointPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "endpointId")]
    endpoint_id: String,
}

impl EndpointPath {
    fn id(&self) -> ApiResult<Uuid> {
        Uuid::try_parse(&self.endpoint_id).map_err(|_| ServiceError::WebhookEndpointNotFound.into())
    }
}

#[derive(Deserialize)]
pub struct EventPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "eventId")]
    event_id: String,
}

impl EventPath {
    fn id(&self) -> ApiResult<Uuid> {
        Uuid::try_parse(&self.event_id).map_err(|_| ServiceError::EventNotFound.into())
    }
}

/// The project's webhook endpoints, oldest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/webhooks/endpoints", tag = "webhooks",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<EndpointView>)),
    security(("secretKey" = []))
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<EndpointView>>> {
    let list = state.services.webhooks.list(auth.project).await?;
    Ok(Json(ListView {
        data: list.into_iter().map(EndpointView::from).collect(),
    }))
}

/// Registers an endpoint. The answer carries its signing secret, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/webhooks/endpoints", tag = "webhooks",
    params(("projectId" = String, Path)),
    request_body = CreateEndpointBody,
    responses(
        (status = 201, body = EndpointWithSecret),
        (status = 409, description = "`too_many_endpoints`: 20 already", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `invalid_input`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(body): JsonBody<CreateEndpointBody>,
) -> ApiResult<(StatusCode, Json<EndpointWithSecret>)> {
    let (endpoint, secret) = state
        .services
        .webhooks
        .create(
            auth.project,
            NewEndpoint {
                url: body.url,
                description: body.description,
                event_types: body.event_types,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint: endpoint.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/webhooks/endpoints/{endpointId}", tag = "webhooks",
    params(("projectId" = String, Path), ("endpointId" = Uuid, Path)),
    responses(
        (status = 200, body = EndpointView),
        (status = 404, description = "`webhook_endpoint_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EndpointPath>,
) -> ApiResult<Json<EndpointView>> {
    let endpoint = state
        .services
        .webhooks
        .get(auth.project, path.id()?)
        .await?;
    Ok(Json(endpoint.into()))
}

/// Changes an endpoint's URL, description or event types, or disables or re-enables it
/// (re-enabling forgets its failures; pending deliveries resume).
#[utoipa::path(
    patch, path = "/api/v1/projects/{projectId}/webhooks/endpoints/{endpointId}", tag = "webhooks",
    params(("projectId" = String, Path), ("endpointId" = Uuid, Path)),
    request_body = UpdateEndpointBody,
    responses(
        (status = 200, body = EndpointView),
        (status = 404, description = "`webhook_endpoint_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `invalid_input`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EndpointPath>,
    JsonBody(body): JsonBody<UpdateEndpointBody>,
) -> ApiResult<Json<EndpointView>> {
    let endpoint = state
        .services
        .webhooks
        .update(
            auth.project,
            path.id()?,
            EndpointPatch {
                url: body.url,
                description: body.description,
                event_types: body.event_types,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(Json(endpoint.into()))
}

/// Deletes an endpoint with its deliveries and their attempts.
#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/webhooks/endpoints/{endpointId}", tag = "webhooks",
    params(("projectId" = String, Path), ("endpointId" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`webhook_endpoint_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EndpointPath>,
) -> ApiResult<StatusCode> {
    state
        .services
        .webhooks
        .delete(auth.project, path.id()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret; the answer carries the new one, shown only this once.
/// Webhooks are signed with both secrets until `previousSecretExpiresAt`, so receivers
/// can switch without rejecting any.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/webhooks/endpoints/{endpointId}/rotate-secret", tag = "webhooks",
    params(("projectId" = String, Path), ("endpointId" = Uuid, Path)),
    request_body(content = RotateSecretBody, description = "Optional"),
    responses(
        (status = 200, body = EndpointWithSecret),
        (status = 404, description = "`webhook_endpoint_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: graceSeconds", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EndpointPath>,
    body: Bytes,
) -> ApiResult<Json<EndpointWithSecret>> {
    let body: RotateSecretBody = optional_json(&body)?;
    let (endpoint, secret) = state
        .services
        .webhooks
        .rotate_secret(
            auth.project,
            path.id()?,
            body.grace_seconds.map(std::time::Duration::from_secs),
        )
        .await?;
    Ok(Json(EndpointWithSecret {
        endpoint: endpoint.into(),
        secret: secret.expose().to_owned(),
    }))
}

/// An event of the outbox: its body is exactly what endpoints receive.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: Uuid,
    /// The `webhook-id` header (`msg_…`), the same on every retry and redelivery.
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub date_created: String,
}

impl From<OutboxEvent> for EventView {
    fn from(e: OutboxEvent) -> Self {
        Self {
            id: e.id,
            message_id: e.message_id(),
            event_type: e.event_type,
            data: e.payload,
            date_created: timestamp(e.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub data: Vec<EventView>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// One attempt at sending a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub attempt: i32,
    pub date_started: String,
    pub duration_ms: i64,
    /// The receiver's status, absent when it did not answer.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_excerpt: Option<String>,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> Self {
        Self {
            attempt: a.attempt,
            date_started: timestamp(a.started_at),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

/// An event on its way to one endpoint, with its delivery log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// `PENDING`, `DELIVERED` or `FAILED` (gave up).
    pub status: String,
    pub attempt_count: i32,
    /// When pending: when the next attempt is due.
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub date_created: String,
    pub date_updated: String,
    pub attempts: Vec<AttemptView>,
}

fn delivery_view(d: WebhookDelivery, attempts: Vec<DeliveryAttempt>) -> DeliveryView {
    DeliveryView {
        id: d.id,
        endpoint_id: d.endpoint_id,
        status: d.status.as_str().to_owned(),
        attempt_count: d.attempts,
        next_attempt_at: (d.status == DeliveryStatus::Pending)
            .then(|| timestamp(d.next_attempt_at)),
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        date_created: timestamp(d.created_at),
        date_updated: timestamp(d.updated_at),
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetailView {
    #[serde(flatten)]
    pub event: EventView,
    pub deliveries: Vec<DeliveryView>,
}

/// The project's lifecycle events, newest first: filter by `type`, `since`/`until`
/// (RFC 3339), with `limit` (1–100, default 50) and `cursor`.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/events", tag = "webhooks",
    params(
        ("projectId" = String, Path),
        ("type" = Option<String>, Query, description = "one event type"),
        ("since" = Option<String>, Query, description = "RFC 3339"),
        ("until" = Option<String>, Query, description = "RFC 3339"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, body = EventPage),
        (status = 400, description = "`invalid_filter`, `invalid_cursor`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<EventPage>> {
    let filter = parse_filter(query.as_deref().unwrap_or(""))?;
    let limit = filter.limit;
    let list = state.services.webhooks.events(auth.project, filter).await?;
    let next_cursor = (list.len() as u32 == limit)
        .then(|| list.last().map(|e| cursor_of(e.id)))
        .flatten();
    Ok(Json(EventPage {
        data: list.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

/// An event with each of its deliveries and their attempts.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/events/{eventId}", tag = "webhooks",
    params(("projectId" = String, Path), ("eventId" = Uuid, Path)),
    responses(
        (status = 200, body = EventDetailView),
        (status = 404, description = "`event_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn get_event(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EventPath>,
) -> ApiResult<Json<EventDetailView>> {
    let detail = state
        .services
        .webhooks
        .event(auth.project, path.id()?)
        .await?;
    Ok(Json(EventDetailView {
        event: detail.event.into(),
        deliveries: detail
            .deliveries
            .into_iter()
            .map(|(d, attempts)| delivery_view(d, attempts))
            .collect(),
    }))
}

/// Sends an event again, now, with the same `webhook-id`: to `endpointId`, or to every
/// enabled endpoint that wants its type.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/events/{eventId}/redeliver", tag = "webhooks",
    params(("projectId" = String, Path), ("eventId" = Uuid, Path)),
    request_body(content = RedeliverBody, description = "Optional"),
    responses(
        (status = 202, description = "`{\"deliveries\": N}`: how many were queued", body = Object),
        (status = 404, description = "`event_not_found`, `webhook_endpoint_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<EventPath>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: RedeliverBody = optional_json(&body)?;
    let count = state
        .services
        .webhooks
        .redeliver(auth.project, path.id()?, body.endpoint_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "deliveries": count }))))
}

/// An optional JSON body: empty means the defaults.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })
}

fn cursor_of(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("e1:{id}"))
}

fn parse_cursor(raw: &str) -> Option<Uuid> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    Uuid::try_parse(text.strip_prefix("e1:")?).ok()
}

fn parse_filter(raw: &str) -> ApiResult<EventFilter> {
    let invalid = |msg: String| ApiError::bad_request("invalid_filter", msg);
    let mut filter = EventFilter {
        limit: 50,
        ..EventFilter::default()
    };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "type" => filter.event_type = Some(value.into_owned()),
            "since" => filter.since = Some(parse_time("since", &value)?),
            "until" => filter.until = Some(parse_time("until", &value)?),
            "limit" => filter.limit = parse_limit(&value, 100)?,
            "cursor" => {
                filter.before = Some(parse_cursor(&value).ok_or_else(|| {
                    ApiError::bad_request("invalid_cursor", "pass back `nextCursor` unchanged")
                })?)
            }
            other => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    Ok(filter)
}
