//! `/api/v1/projects/{projectId}/policy`: entitlement rules and secret metadata keys.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use plugboard_service::entitlements::PolicyImpact;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectAdmin, UserIdPath};

pub fn router() -> Router<AppState> {
    let project = "/api/v1/projects/{projectId}";
    Router::new()
        .route(
            &format!("{project}/policy"),
            get(get_policy).put(put_policy),
        )
        .route(&format!("{project}/policy/dry-run"), post(dry_run))
        .route(
            &format!("{project}/users/{{userId}}/entitlements"),
            get(user_entitlements),
        )
}

/// What the project's rules deny one user now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserEntitlementsView {
    pub user_id: String,
    /// Integrations the user may not connect or use (their workflows are paused).
    pub denied_integrations: Vec<String>,
    /// Workflows the user may not run, by their own rule.
    pub denied_workflows: Vec<String>,
    /// Rules that could not be evaluated for this user (they deny), with why.
    pub rule_errors: Vec<String>,
}

/// What the project's entitlement rules deny this user, from its current metadata.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/users/{userId}/entitlements", tag = "policy",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 200, body = UserEntitlementsView),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn user_entitlements(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<UserEntitlementsView>> {
    let user = state.services.users.get(auth.project, &user).await?;
    let access = state.services.policy.access(&user).await?;
    Ok(Json(UserEntitlementsView {
        user_id: user.user_id.to_string(),
        denied_integrations: access.denied_integrations.into_iter().collect(),
        denied_workflows: access.denied_workflows.into_iter().collect(),
        rule_errors: access.errors,
    }))
}

/// A policy change's effect: `{usersEvaluated, usersChanged, usersWithRuleErrors,
/// secretValuesSealed, changes: [{userId, lostIntegrations, regainedIntegrations,
/// lostWorkflows, regainedWorkflows}], truncated}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyChangeView {
    #[schema(value_type = Object)]
    pub policy: Value,
    #[schema(value_type = Object)]
    pub impact: PolicyImpact,
}

/// The project's policy: `{entitlements: {onLoss, integrations: {key: rule}, workflows:
/// {id: rule}}, secretMetadataKeys: [..]}`. Rules are CEL over `user` (`user.id`,
/// `user.meta.<key>`).
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/policy", tag = "policy",
    params(("projectId" = String, Path)),
    responses((status = 200, body = Object)),
    security(("secretKey" = []))
)]
pub async fn get_policy(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.services.entitlements.get(auth.project).await?))
}

/// Replaces the policy and applies it to every user at once: what a user loses is
/// paused (or disconnected, under `onLoss: "disconnect"`) and reported as
/// `entitlement.changed`; values of keys made secret are sealed.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/policy", tag = "policy",
    params(("projectId" = String, Path)),
    request_body(content = Object, description = "The policy document"),
    responses(
        (status = 200, body = PolicyChangeView),
        (status = 422, description = "`invalid_policy`: a rule does not compile, an unknown field, too many keys", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn put_policy(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(document): JsonBody<Value>,
) -> ApiResult<Json<PolicyChangeView>> {
    let entitlements = &state.services.entitlements;
    let impact = entitlements.replace(auth.project, document).await?;
    let policy = entitlements.get(auth.project).await?;
    Ok(Json(PolicyChangeView { policy, impact }))
}

/// Which users would lose (or regain) what if the policy became this one; nothing
/// changes. Lists up to 1,000 users, counts all.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/policy/dry-run", tag = "policy",
    params(("projectId" = String, Path)),
    request_body(content = Object, description = "The proposed policy document"),
    responses(
        (status = 200, body = Object),
        (status = 422, description = "`invalid_policy`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn dry_run(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(document): JsonBody<Value>,
) -> ApiResult<Json<PolicyImpact>> {
    Ok(Json(
        state
            .services
            .entitlements
            .dry_run(auth.project, document)
            .await?,
    ))
}
