//! Plugboard's HTTP surface.
//!
//! - `/projects/{projectId}/sdk/*`: the Paragon-compatible API the browser SDK calls with a
//!   user token ([`sdk`]; its wire shapes live in [`wire`]).
//! - `/api/v1/*`: the management API the SaaS backend calls with a secret key ([`management`]).
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json` ([`ops`]).
//! - `/dashboard`: the dashboard (`plugboard_dashboard`), mounted here.
//!
//! Handlers are thin: an extractor authenticates and parses, a service does the work, and
//! [`error::ApiError`] is the one place errors become HTTP.

pub mod audit;
pub mod connect;
pub mod connections;
pub mod error;
pub mod extract;
pub mod management;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod policy;
pub mod query;
pub mod sdk;
pub mod task_history;
pub mod webhooks;
pub mod wire;
pub mod workflows;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use plugboard_service::Services;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

/// HTTP-level settings.
#[derive(Clone)]
pub struct ApiSettings {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// The admin token that may create projects; `None` disables admin calls.
    pub admin_token: Option<String>,
    /// Longest time a request may take before it is answered 408 `request_timeout`.
    pub request_timeout: std::time::Duration,
    /// The dashboard's settings (its admin token is this struct's `admin_token`).
    pub dashboard: plugboard_dashboard::DashboardSettings,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            admin_token: None,
            request_timeout: std::time::Duration::from_secs(30),
            dashboard: plugboard_dashboard::DashboardSettings::default(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub settings: Arc<ApiSettings>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(services: Services, settings: ApiSettings) -> Self {
        Self {
            services,
            settings: Arc::new(settings),
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit_bytes;
    let timeout = state.settings.request_timeout;
    let dashboard = plugboard_dashboard::router(
        state.services.clone(),
        plugboard_dashboard::DashboardSettings {
            admin_token: state.settings.admin_token.clone(),
            ..state.settings.dashboard.clone()
        },
    );
    let routes = Router::new()
        // Server-rendered pages over the same services as the handlers below.
        .nest_service(plugboard_dashboard::BASE, dashboard)
        .merge(sdk::router())
        .merge(management::router())
        .merge(connect::public_router())
        .merge(connections::router())
        .merge(workflows::router())
        .merge(policy::router())
        .merge(task_history::router())
        .merge(webhooks::router())
        .merge(ops::router())
        .merge(audit::router())
        // With the SDK's CORS, so that a browser calling a route that does not exist (yet:
        // workflows, events) sees this JSON 404 and not an opaque CORS failure.
        .fallback_service(axum::routing::any(ops::route_not_found).layer(sdk::cors()));
    // Records the management API's mutations, with digests of GET twins through `routes`.
    audit::layer(routes, &state)
        // Not `method_not_allowed_fallback`: it would replace the per-route fallbacks that
        // the SDK routes' CORS layer wraps, and browsers' preflight requests would fail.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(ops::json_bodiless_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `router` on an already-bound listener until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
