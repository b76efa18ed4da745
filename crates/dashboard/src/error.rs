//! Failures of a dashboard page, each shown as a friendly page with the right status.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use plugboard_service::ServiceError;

use crate::BASE;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// No valid session: the login page.
    #[error("log in to continue")]
    LoginRequired,
    /// An admin session that has not picked a project yet.
    #[error("pick a project first")]
    PickProject,
    /// The form's CSRF token is missing or not this session's.
    #[error(
        "this form has expired or did not come from this dashboard; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("there is no such page")]
    NotFound,
    #[error("rendering failed: {0}")]
    Template(#[from] minijinja::Error),
}

pub type PageResult<T> = Result<T, PageError>;

impl PageError {
    /// The status a failed service call shows with. The JSON API maps the same errors to
    /// the same statuses (in `plugboard_api::error`); here only the status class matters.
    fn status(&self) -> StatusCode {
        use ServiceError as E;
        match self {
            Self::Service(e) => match e {
                E::ProjectNotFound
                | E::UserNotFound
                | E::KeyNotFound
                | E::IntegrationNotFound(_)
                | E::WorkflowNotFound(_)
                | E::ExecutionNotFound
                | E::CredentialNotFound
                | E::NotConnected(_) => StatusCode::NOT_FOUND,
                E::InvalidCredentials | E::Token(_) => StatusCode::UNAUTHORIZED,
                E::WrongProject | E::UserSuspended => StatusCode::FORBIDDEN,
                E::UserExists
                | E::ConcurrentUpdate
                | E::WorkflowNotEnabled(_)
                | E::IntegrationInactive(_)
                | E::CredentialInvalid(_) => StatusCode::CONFLICT,
                E::EntitlementRequired(_) => StatusCode::PAYMENT_REQUIRED,
                E::Internal(_) | E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                E::Upstream(_) | E::Connect(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::LoginRequired | Self::PickProject => StatusCode::SEE_OTHER,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text shown to the reader; internal details only go to the log.
    pub fn message(&self) -> String {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            "Something went wrong on the server. The details are in the server log.".to_owned()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::LoginRequired => return Redirect::to(&format!("{BASE}/login")).into_response(),
            Self::PickProject => {
                return Redirect::to(&format!("{BASE}/projects")).into_response();
            }
            _ => {}
        }
        let status = self.status();
        let mut reference = None;
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            let id = uuid::Uuid::new_v4().to_string();
            tracing::error!(correlation_id = %id, error = %self, "dashboard page failed");
            reference = Some(id);
        }
        let page = crate::templates::render(
            "error.html",
            minijinja::context! {
                layout => crate::templates::bare_layout("Error"),
                status => status.as_u16(),
                reason => status.canonical_reason().unwrap_or(""),
                message => self.message(),
                reference => reference,
            },
        );
        match page {
            Ok(html) => (status, html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "the error page did not render");
                (
                    status,
                    Html(format!(
                        "<!doctype html><title>Error</title><p>{}",
                        status.as_u16()
                    )),
                )
                    .into_response()
            }
        }
    }
}
