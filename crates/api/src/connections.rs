//! `/api/v1/projects/{projectId}/users/{userId}/…`: a user's connections as the SaaS
//! backend manages them: list, disconnect, connect links, and the proxy twin.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use plugboard_core::CredentialWithConfigurations;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::connect::{Forwarded, proxy_request, run_proxy};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectAdmin, UserIdPath};
use crate::management::ListView;
use crate::wire::timestamp;

pub fn router() -> Router<AppState> {
    let user = "/api/v1/projects/{projectId}/users/{userId}";
    Router::new()
        .route(&format!("{user}/credentials"), get(list_credentials))
        .route(
            &format!("{user}/integrations/{{integration}}"),
            delete(disconnect),
        )
        .route(&format!("{user}/connect-links"), post(create_connect_link))
        .route(
            &format!("{user}/proxy/{{integration}}/{{*path}}"),
            any(proxy),
        )
}

/// One connected account of a user. Secrets are never shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub id: Uuid,
    /// The integration's key (`salesforce`, `custom.x`).
    pub integration: String,
    pub integration_id: Uuid,
    /// `VALID`, `INVALID` (the user must reconnect) or `PENDING`.
    pub status: String,
    /// The account's id at the provider.
    pub provider_id: Option<String>,
    #[schema(value_type = Object)]
    pub provider_data: Map<String, Value>,
    pub external_id: Option<String>,
    /// Failed refreshes since the last good one.
    pub refresh_failure_count: i32,
    pub date_created: String,
    pub date_updated: String,
    pub date_refreshed: Option<String>,
    /// When the current access token expires, if the provider said.
    pub token_expires_at: Option<String>,
    pub configurations: Vec<ConfigurationView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationView {
    pub id: Uuid,
    pub is_default: bool,
    #[schema(value_type = Object)]
    pub workflow_settings: Map<String, Value>,
    #[schema(value_type = Object)]
    pub shared_settings: Map<String, Value>,
}

fn credential_view(key: String, c: &CredentialWithConfigurations) -> CredentialView {
    let cred = &c.credential;
    CredentialView {
        id: cred.id,
        integration: key,
        integration_id: cred.integration_id,
        status: cred.status.as_str().to_owned(),
        provider_id: cred.provider_id.clone(),
        provider_data: cred.provider_data.clone(),
        external_id: cred.external_id.clone(),
        refresh_failure_count: cred.refresh_failure_count,
        date_created: timestamp(cred.created_at),
        date_updated: timestamp(cred.updated_at),
        date_refreshed: cred.refreshed_at.map(timestamp),
        token_expires_at: cred.expires_at.map(timestamp),
        configurations: c
            .configurations
            .iter()
            .map(|cf| ConfigurationView {
                id: cf.id,
                is_default: cf.is_default,
                workflow_settings: cf.workflow_settings.clone(),
                shared_settings: cf.shared_settings.clone(),
            })
            .collect(),
    }
}

/// The user's connected accounts, oldest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/users/{userId}/credentials", tag = "connections",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 200, body = ListView<CredentialView>),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn list_credentials(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<ListView<CredentialView>>> {
    state.services.users.get(auth.project, &user).await?;
    let integrations = state.services.integrations.list(auth.project).await?;
    let credentials = state
        .services
        .connect
        .credentials(auth.project, &user)
        .await?;
    let key_of = |id: Uuid| {
        integrations
            .iter()
            .find(|i| i.integration.id == id)
            .map(|i| i.integration.key.to_string())
            .unwrap_or_default()
    };
    Ok(Json(ListView {
        data: credentials
            .iter()
            .map(|c| credential_view(key_of(c.credential.integration_id), c))
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectQuery {
    credential_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisconnectView {
    /// How many of the user's credentials were removed.
    pub disconnected: usize,
}

/// Disconnects the user from an integration (one credential with `?credentialId=`, else
/// all of them): tokens are revoked at the provider where it supports RFC 7009, then the
/// credentials and their settings are deleted.
#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/users/{userId}/integrations/{integration}", tag = "connections",
    params(("projectId" = String, Path), ("userId" = String, Path),
           ("integration" = String, Path, description = "Integration key or id"),
           ("credentialId" = Option<Uuid>, Query, description = "Only this credential")),
    responses(
        (status = 200, body = DisconnectView),
        (status = 404, description = "`user_not_found`, `integration_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn disconnect(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    Path(path): Path<DisconnectPathParams>,
    axum::extract::Query(query): axum::extract::Query<DisconnectQuery>,
) -> ApiResult<Json<DisconnectView>> {
    state.services.users.get(auth.project, &user).await?;
    let disconnected = state
        .services
        .workflows
        .disconnect(auth.project, &user, &path.integration, query.credential_id)
        .await?;
    Ok(Json(DisconnectView { disconnected }))
}

/// The route's parameters (the user id is read by its own extractor).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectPathParams {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "userId")]
    _user_id: String,
    integration: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectLinkBody {
    /// The integration's key or id; it must use OAuth.
    pub integration: String,
    /// Where the user lands afterwards, with `status=connected&credentialId=…` or
    /// `status=failed&error=<code>` added.
    pub return_url: Option<String>,
    /// The provider's user inputs (e.g. Zendesk's `subdomain`), checked now; the link's
    /// page asks the user for those left out.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectLinkView {
    /// Open it once, in the user's browser.
    pub url: String,
    pub expires_at: String,
}

/// A one-time URL that connects an integration for the user, for apps without the
/// browser SDK. The user must exist.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/users/{userId}/connect-links", tag = "connections",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    request_body = ConnectLinkBody,
    responses(
        (status = 201, body = ConnectLinkView),
        (status = 400, description = "`wrong_auth_kind`", body = ErrorBody),
        (status = 404, description = "`user_not_found`, `integration_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_input` (naming the field, e.g. `inputs.subdomain`), `invalid_body`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn create_connect_link(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    JsonBody(body): JsonBody<ConnectLinkBody>,
) -> ApiResult<(StatusCode, Json<ConnectLinkView>)> {
    let return_url = body
        .return_url
        .map(|raw| {
            Url::parse(&raw).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    "returnUrl must be an absolute URL",
                )
            })
        })
        .transpose()?;
    state.services.users.get(auth.project, &user).await?;
    let (url, expires_at) = state
        .services
        .connect
        .create_link(
            auth.project,
            &user,
            &body.integration,
            return_url,
            body.inputs,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectLinkView {
            url,
            expires_at: timestamp(expires_at),
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ProxyPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "userId")]
    _user_id: String,
    integration: String,
    path: String,
}

/// Calls the provider's API with the user's connection, as the SDK's proxy does:
/// `{"output": …}` with the provider's status, or the raw answer with
/// `X-Paragon-Use-Raw-Response: 1`.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/users/{userId}/proxy/{integration}/{path}", tag = "connections",
    params(("projectId" = String, Path), ("userId" = String, Path),
           ("integration" = String, Path), ("path" = String, Path, description = "Path under the integration's API base URL")),
    request_body(content = String, description = "Forwarded to the provider as is", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "The provider's answer, as `{\"output\": …}` (any status the provider gave)"),
        (status = 404, description = "`not_connected`, `integration_not_found`", body = ErrorBody),
        (status = 409, description = "`credential_invalid`", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`, `upstream_too_large`", body = ErrorBody),
        (status = 504, description = "`upstream_timeout`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn proxy(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    Path(path): Path<ProxyPath>,
    forwarded: Forwarded,
) -> ApiResult<Response> {
    if state
        .services
        .users
        .get(auth.project, &user)
        .await?
        .suspended
    {
        return Err(plugboard_service::ServiceError::UserSuspended.into());
    }
    let request = proxy_request(path.integration, &path.path, forwarded);
    run_proxy(&state, auth.project, &user, request).await
}
