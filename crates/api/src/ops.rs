//! Operations endpoints and the JSON answers for unknown routes.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The process is up and its database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Status), (status = 503, description = "`database_unreachable`", body = ErrorBody))
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state.services.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unreachable",
            "the database does not answer",
        )
    })?;
    Ok(Json(Status { status: "ready" }))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

pub async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {}", uri.path()),
    )
}

/// Gives the bodiless errors produced by axum and tower (405 from routing, 408 from the
/// timeout layer) the JSON error shape, keeping their headers (`Allow`).
pub async fn json_bodiless_errors(response: Response) -> Response {
    let (code, message) = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            "the request took too long and was abandoned",
        ),
        _ => return response,
    };
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let json = ApiError::new(parts.status, code, message).into_response();
    let (json_parts, body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, body)
}
