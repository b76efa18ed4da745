//! `/projects/{projectId}/sdk/*`: what the browser SDK calls with a user token.

use axum::Json;
use axum::Router;
use axum::http::{HeaderName, Method};
use axum::routing::get;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, SdkUser};
use crate::wire::{SdkMe, SdkMetaPatch};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{projectId}/sdk/me", get(get_me).patch(patch_me))
        .route(
            "/projects/{projectId}/sdk/integrations",
            get(list_integrations),
        )
        .layer(cors())
}

/// Browsers call the SDK API cross-origin with `Authorization` and `X-Paragon-*` headers.
/// The SDK never sends cookies, so any origin may call; requested headers are echoed
/// because `*` does not cover `Authorization`.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static("retry-after")])
        .max_age(Duration::from_secs(600))
}

/// The connected user's state, in the SDK's shape.
#[utoipa::path(
    get, path = "/projects/{projectId}/sdk/me", tag = "sdk",
    params(("projectId" = String, Path, description = "Project id (UUID)")),
    responses(
        (status = 200, body = SdkMe),
        (status = 401, description = "Missing, malformed, expired or otherwise invalid user token", body = ErrorBody),
        (status = 403, description = "`user_suspended`", body = ErrorBody),
        (status = 404, description = "`project_not_found`", body = ErrorBody),
    ),
    security(("userToken" = []))
)]
pub async fn get_me(auth: SdkUser) -> Json<SdkMe> {
    Json(SdkMe::new(auth.project, &auth.user))
}

/// Merges `meta` into the user's metadata (JSON Merge Patch; `null` deletes a key).
#[utoipa::path(
    patch, path = "/projects/{projectId}/sdk/me", tag = "sdk",
    params(("projectId" = String, Path, description = "Project id (UUID)")),
    request_body = SdkMetaPatch,
    responses(
        (status = 200, body = SdkMe),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 401, description = "Invalid user token", body = ErrorBody),
        (status = 403, description = "`user_suspended`", body = ErrorBody),
        (status = 413, description = "`metadata_too_large`, `body_too_large`", body = ErrorBody),
        (status = 422, description = "`metadata_too_deep`, `metadata_key_too_long`, `metadata_too_many_keys`, `metadata_not_object`, `invalid_body`", body = ErrorBody),
    ),
    security(("userToken" = []))
)]
pub async fn patch_me(
    axum::extract::State(state): axum::extract::State<AppState>,
    auth: SdkUser,
    JsonBody(body): JsonBody<SdkMetaPatch>,
) -> ApiResult<Json<SdkMe>> {
    let user = state
        .services
        .users
        .patch_meta(auth.project, &auth.user.user_id, body.meta)
        .await?;
    Ok(Json(SdkMe::new(auth.project, &user)))
}

/// The project's integrations, in the SDK's shape (none can be configured yet).
#[utoipa::path(
    get, path = "/projects/{projectId}/sdk/integrations", tag = "sdk",
    params(("projectId" = String, Path, description = "Project id (UUID)")),
    responses(
        (status = 200, body = Vec<Object>),
        (status = 401, description = "Invalid user token", body = ErrorBody),
        (status = 403, description = "`user_suspended`", body = ErrorBody),
    ),
    security(("userToken" = []))
)]
pub async fn list_integrations(_auth: SdkUser) -> Json<Vec<serde_json::Value>> {
    Json(Vec::new())
}
