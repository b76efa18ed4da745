//! The dashboard, served at `/dashboard`: Connected Users, a user's detail, the Task History
//! and the project's integrations, rendered on the server from templates embedded in the
//! binary (no JavaScript, no CDN).
//!
//! Every page reads and every action writes through [`plugboard_service::Services`], the
//! same methods the management API calls. Access is a session made by logging in with a
//! project secret key or the admin token ([`session`]); every form carries the session's
//! CSRF token.

mod audit;
mod error;
mod pages;
pub mod session;
mod templates;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use plugboard_service::Services;

pub use error::PageError;

/// Where the dashboard is mounted; links and cookies are scoped to it.
pub const BASE: &str = "/dashboard";

/// The dashboard's settings.
#[derive(Clone)]
pub struct DashboardSettings {
    /// How long a session lasts after login.
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// The admin token, which may log in and pick any project; `None` disables that.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for DashboardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardSettings")
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(8 * 3600),
            secure_cookies: false,
            admin_token: None,
        }
    }
}

/// What every dashboard handler can reach.
#[derive(Clone)]
pub struct DashboardState {
    pub services: Services,
    pub settings: Arc<DashboardSettings>,
}

/// The dashboard's routes, relative to [`BASE`]; mount with `nest_service(BASE, …)`.
pub fn router(services: Services, settings: DashboardSettings) -> Router {
    let state = DashboardState {
        services,
        settings: Arc::new(settings),
    };
    Router::new()
        .route(
            "/",
            get(|| async { Redirect::to(&format!("{BASE}/users")) }),
        )
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route(
            "/projects",
            get(pages::login::projects).post(pages::login::pick_project),
        )
        .route("/users", get(pages::users::list))
        .route("/users/{userId}", get(pages::user::show))
        .route("/users/{userId}/suspend", post(pages::user::suspend))
        .route("/users/{userId}/resume", post(pages::user::resume))
        .route("/users/{userId}/erase", post(pages::user::erase))
        .route(
            "/users/{userId}/workflows/{workflowId}",
            post(pages::user::set_workflow),
        )
        .route(
            "/users/{userId}/credentials/{credentialId}/disconnect",
            post(pages::user::disconnect),
        )
        .route("/executions", get(pages::executions::list))
        .route("/executions/{executionId}", get(pages::executions::show))
        .route(
            "/executions/{executionId}/replay",
            post(pages::executions::replay),
        )
        .route("/integrations", get(pages::integrations::show))
        .route(&templates::css_path(), get(stylesheet))
        .fallback(|| async { PageError::NotFound })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The stylesheet, under a path naming its content hash, so it can be cached for good.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        templates::CSS,
    )
        .into_response()
}

/// Headers on every dashboard answer: no framing, no inline script, nothing cached but the
/// stylesheet.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
