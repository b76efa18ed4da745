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
use crate::wire::{SdkMe, SdkMetaPatch, sdk_integration, sdk_me_integrations};
use axum::extract::State;
use plugboard_core::{ConnectedUser, ProjectId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{projectId}/sdk/me", get(get_me).patch(patch_me))
        .route(
            "/projects/{projectId}/sdk/integrations",
            get(list_integrations),
        )
        .merge(crate::connect::sdk_router())
        .merge(crate::workflows::sdk_router())
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
pub async fn get_me(State(state): State<AppState>, auth: SdkUser) -> ApiResult<Json<SdkMe>> {
    Ok(Json(me(&state, auth.project, &auth.user).await?))
}

/// The user's `/sdk/me` view: one store call for credentials, none when the project has no
/// integrations.
async fn me(state: &AppState, project: ProjectId, user: &ConnectedUser) -> ApiResult<SdkMe> {
    let integrations = &state.services.integrations;
    let access = state.services.policy.access(user).await?;
    let mut configured = integrations.list(project).await?;
    if !access.denied_integrations.is_empty() {
        std::sync::Arc::make_mut(&mut configured)
            .retain(|c| access.allows_integration(c.integration.key.as_str()));
    }
    let credentials = integrations
        .user_credentials(project, &user.user_id, &configured)
        .await?;
    Ok(SdkMe::new(
        project,
        user,
        sdk_me_integrations(user, &configured, &credentials),
    ))
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
    State(state): State<AppState>,
    auth: SdkUser,
    JsonBody(body): JsonBody<SdkMetaPatch>,
) -> ApiResult<Json<SdkMe>> {
    let user = state
        .services
        .users
        .patch_meta(auth.project, &auth.user.user_id, body.meta)
        .await?;
    Ok(Json(me(&state, auth.project, &user).await?))
}

/// The project's integrations, in the SDK's shape.
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
pub async fn list_integrations(
    State(state): State<AppState>,
    auth: SdkUser,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let access = state.services.policy.access(&auth.user).await?;
    let configured = state.services.integrations.list(auth.project).await?;
    let mut workflows = state.services.workflows.list(auth.project).await?;
    workflows.retain(|w| access.allows_workflow(&w.workflow_id, &w.integration));
    Ok(Json(
        configured
            .iter()
            .filter(|c| access.allows_integration(c.integration.key.as_str()))
            .map(|c| sdk_integration(c, &workflows))
            .collect(),
    ))
}
