//! Extractors: authentication and parsing happen here, so a handler only ever sees an
//! authorised caller and well-formed input.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use plugboard_core::{ConnectedUser, ProjectId, TokenError, UserId};
use plugboard_service::ServiceError;
use plugboard_service::keys::secrets_match;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body, parsed whatever its `Content-Type`, with typed errors: `body_too_large`
/// (413), `invalid_json` (400) for malformed JSON, `invalid_body` (422) for JSON of the
/// wrong shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    rejection.body_text(),
                )
            } else {
                ApiError::bad_request("invalid_body", rejection.body_text())
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
        // Every body of this API is an object; serde would otherwise read arrays as structs.
        if !value.is_object() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "request body must be a JSON object",
            ));
        }
        serde_json::from_value(value).map(JsonBody).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.to_string(),
            )
        })
    }
}

/// A named route parameter, percent-decoded.
async fn path_param(parts: &mut Parts, name: &str) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The `{projectId}` of the route.
pub async fn project_id(parts: &mut Parts) -> Result<ProjectId, ApiError> {
    let raw = path_param(parts, "projectId")
        .await
        .ok_or_else(|| ApiError::from(ServiceError::ProjectNotFound))?;
    ProjectId::parse(&raw).map_err(|_| ServiceError::ProjectNotFound.into())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The connected user behind a verified user token, for `/projects/{projectId}/sdk/*`.
pub struct SdkUser {
    pub project: ProjectId,
    pub user: ConnectedUser,
}

impl FromRequestParts<AppState> for SdkUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let project = project_id(parts).await?;
        let token = bearer(parts).ok_or(ServiceError::Token(TokenError::Missing))?;
        let user = state.services.users.authenticate(project, token).await?;
        Ok(Self { project, user })
    }
}

/// Who called the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Admin,
    SecretKey(uuid::Uuid),
}

/// A caller allowed to manage `{projectId}`: one of its secret keys, or the admin token.
#[derive(Debug, Clone)]
pub struct ProjectAdmin {
    pub project: ProjectId,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for ProjectAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let project = project_id(parts).await?;
        // Already authenticated by the audit middleware (extensions are server-side only).
        if let Some(done) = parts
            .extensions
            .get::<Self>()
            .filter(|d| d.project == project)
        {
            return Ok(done.clone());
        }
        let token = bearer(parts).ok_or(ServiceError::InvalidCredentials)?;
        if is_admin_token(state, token) {
            state.services.projects.get(project).await?;
            return Ok(Self {
                project,
                actor: Actor::Admin,
            });
        }
        let key = state
            .services
            .projects
            .authenticate_secret_key(project, token)
            .await?;
        Ok(Self {
            project,
            actor: Actor::SecretKey(key.id),
        })
    }
}

/// A caller holding the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ServiceError::InvalidCredentials)?;
        if state.settings.admin_token.is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "no admin token is configured on this server (set PLUGBOARD_ADMIN_TOKEN)",
            ));
        }
        if is_admin_token(state, token) {
            Ok(Admin)
        } else {
            Err(ServiceError::InvalidCredentials.into())
        }
    }
}

fn is_admin_token(state: &AppState, token: &str) -> bool {
    state
        .settings
        .admin_token
        .as_deref()
        .is_some_and(|admin| secrets_match(admin, token))
}

/// The `{userId}` of the route, validated.
pub struct UserIdPath(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_param(parts, "userId")
            .await
            .ok_or_else(|| ApiError::bad_request("invalid_user_id", "missing user id"))?;
        UserId::parse(&raw)
            .map(UserIdPath)
            .map_err(|e| ApiError::from(ServiceError::InvalidId(e)))
    }
}
