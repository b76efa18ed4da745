//! The one place where failures become HTTP: status, stable `code`, human `message`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plugboard_core::{IdError, MetadataError};
use plugboard_service::ServiceError;
use plugboard_service::connect::{ConnectError, UpstreamError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer: `{ "code", "message" }`, plus a correlation id on internal errors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable, machine-readable error code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// On internal errors only: quote it when reporting; the details are in the server log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn internal(detail: impl std::fmt::Display) -> Self {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(%correlation_id, error = %detail, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: correlation_id,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            ServiceError::Token(t) => (S::UNAUTHORIZED, t.code()),
            ServiceError::UserSuspended => (S::FORBIDDEN, "user_suspended"),
            ServiceError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            ServiceError::WrongProject => (S::FORBIDDEN, "wrong_project"),
            ServiceError::ProjectNotFound => (S::NOT_FOUND, "project_not_found"),
            ServiceError::UserNotFound => (S::NOT_FOUND, "user_not_found"),
            ServiceError::UserExists => (S::CONFLICT, "user_exists"),
            ServiceError::KeyNotFound => (S::NOT_FOUND, "key_not_found"),
            ServiceError::InvalidPublicKey(_) => (S::UNPROCESSABLE_ENTITY, "invalid_public_key"),
            ServiceError::Metadata(m @ MetadataError::TooLarge { .. }) => {
                (S::PAYLOAD_TOO_LARGE, m.code())
            }
            ServiceError::Metadata(m) => (S::UNPROCESSABLE_ENTITY, m.code()),
            ServiceError::InvalidId(IdError::InvalidProjectId) => {
                (S::NOT_FOUND, "project_not_found")
            }
            ServiceError::InvalidId(_) => (S::BAD_REQUEST, "invalid_user_id"),
            ServiceError::InvalidCursor => (S::BAD_REQUEST, "invalid_cursor"),
            ServiceError::InvalidFilter(_) => (S::BAD_REQUEST, "invalid_filter"),
            ServiceError::InvalidInput(_) => (S::UNPROCESSABLE_ENTITY, "invalid_input"),
            ServiceError::UnknownIntegration(_) => (S::UNPROCESSABLE_ENTITY, "unknown_integration"),
            ServiceError::InvalidWebhookUrl(_) => (S::UNPROCESSABLE_ENTITY, "invalid_webhook_url"),
            ServiceError::WebhookEndpointNotFound => (S::NOT_FOUND, "webhook_endpoint_not_found"),
            ServiceError::EventNotFound => (S::NOT_FOUND, "event_not_found"),
            ServiceError::TooManyEndpoints(_) => (S::CONFLICT, "too_many_endpoints"),
            ServiceError::ConcurrentUpdate => (S::CONFLICT, "concurrent_update"),
            // 402, not 401/403: those make the browser SDK sign the user out.
            ServiceError::EntitlementRequired(_) => (S::PAYMENT_REQUIRED, "entitlement_required"),
            ServiceError::InvalidPolicy(_) => (S::UNPROCESSABLE_ENTITY, "invalid_policy"),
            ServiceError::IntegrationNotFound(_) => (S::NOT_FOUND, "integration_not_found"),
            ServiceError::WorkflowNotFound(_) => (S::NOT_FOUND, "workflow_not_found"),
            ServiceError::ExecutionNotFound => (S::NOT_FOUND, "execution_not_found"),
            ServiceError::WorkflowNotEnabled(_) => (S::CONFLICT, "workflow_not_enabled"),
            ServiceError::IntegrationInactive(_) => (S::CONFLICT, "integration_inactive"),
            ServiceError::WrongAuthKind(_) => (S::BAD_REQUEST, "wrong_auth_kind"),
            ServiceError::CredentialNotFound => (S::NOT_FOUND, "credential_not_found"),
            ServiceError::NotConnected(_) => (S::NOT_FOUND, "not_connected"),
            ServiceError::CredentialInvalid(_) => (S::CONFLICT, "credential_invalid"),
            ServiceError::CredentialRejected(_) => (S::UNPROCESSABLE_ENTITY, "credential_rejected"),
            ServiceError::Connect(c) => (connect_status(c), c.code()),
            ServiceError::Upstream(u) => upstream_status(u),
            ServiceError::Internal(_) | ServiceError::Store(_) => return Self::internal(&e),
        };
        Self::new(status, code, message)
    }
}

fn connect_status(e: &ConnectError) -> StatusCode {
    match e {
        ConnectError::InvalidState | ConnectError::Denied(_) => StatusCode::BAD_REQUEST,
        ConnectError::InvalidLink => StatusCode::GONE,
        ConnectError::LinkFormMismatch => StatusCode::FORBIDDEN,
        ConnectError::ExchangeFailed(_) => StatusCode::BAD_GATEWAY,
    }
}

fn upstream_status(e: &UpstreamError) -> (StatusCode, &'static str) {
    match e {
        UpstreamError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        UpstreamError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
        UpstreamError::TooLarge(_) => (StatusCode::BAD_GATEWAY, "upstream_too_large"),
        UpstreamError::RateLimited { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "upstream_rate_limited")
        }
        UpstreamError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_proxy_path"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            ErrorBody {
                code: self.code.to_owned(),
                message: "internal error; quote the correlation id when reporting it".to_owned(),
                correlation_id: Some(self.message),
            }
        } else {
            ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
                correlation_id: None,
            }
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
