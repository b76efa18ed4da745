//! A fake OAuth 2.0 provider, in memory, for development and tests only.
//!
//! It plays two parts:
//! - `plugboard dev` mounts [`Sandbox::router`] under `/sandbox`, so a newcomer can connect an
//!   integration end to end without registering an OAuth app with a real provider;
//! - integration tests run it on its own loopback port ([`Sandbox::serve_on_loopback`]) and
//!   steer it: [`Faults`] injects failures, [`Sandbox::stats`] counts what clients did.
//!
//! It implements the authorization code grant (with PKCE S256), refresh tokens (rotated by
//! default), client credentials and token revocation (RFC 7009), plus a tiny bearer-protected
//! API under `/api`. Nothing is persisted and nothing here is hardened for real use.

mod api;
mod authorize;
mod client_auth;
mod faults;
mod html;
mod oauth_error;
mod params;
mod pkce;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, get, post};

pub use faults::Faults;
pub use state::Stats;

use state::State;

/// The client that [`SandboxConfig::default`] registers, so `plugboard dev` works as is.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client";
/// The secret of [`DEFAULT_CLIENT_ID`].
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-secret";

/// How the sandbox behaves; see [`SandboxConfig::default`] for the defaults.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The registered OAuth clients.
    pub clients: Vec<SandboxClient>,
    /// Lifetime of access tokens (`expires_in`).
    pub access_token_ttl: Duration,
    /// Each refresh issues a new refresh token and the old one stops working.
    pub rotate_refresh_tokens: bool,
    /// `GET /oauth/authorize` redirects at once with a code, for tests without a browser.
    pub auto_approve: bool,
}

impl Default for SandboxConfig {
    /// One client ([`DEFAULT_CLIENT_ID`]) accepting any redirect URI, tokens valid for an hour,
    /// rotation on, consent page shown.
    fn default() -> Self {
        Self {
            clients: vec![SandboxClient::new(
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
                Vec::new(),
            )],
            access_token_ttl: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            auto_approve: false,
        }
    }
}

/// A registered OAuth client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxClient {
    pub id: String,
    /// An empty secret makes a public client: it authenticates with `client_id` alone.
    pub secret: String,
    /// Exact redirect URIs allowed; empty allows any `http(s)` URI.
    pub redirect_uris: Vec<String>,
}

impl SandboxClient {
    pub fn new(
        id: impl Into<String>,
        secret: impl Into<String>,
        redirect_uris: Vec<String>,
    ) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
            redirect_uris,
        }
    }
}

/// The sandbox provider: cheap to clone, every clone shares the same state.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

struct Shared {
    settings: Settings,
    state: Arc<Mutex<State>>,
    faults: Faults,
}

/// The parts of [`SandboxConfig`] fixed at creation.
#[derive(Clone, Copy)]
struct Settings {
    access_token_ttl: Duration,
    rotate_refresh_tokens: bool,
    auto_approve: bool,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let state = Arc::new(Mutex::new(State::new(config.clients)));
        let settings = Settings {
            access_token_ttl: config.access_token_ttl,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            auto_approve: config.auto_approve,
        };
        let faults = Faults::new(state.clone());
        Self {
            shared: Arc::new(Shared {
                settings,
                state,
                faults,
            }),
        }
    }

    /// The sandbox's routes, relative to wherever they are mounted
    /// (`Router::new().nest("/sandbox", sandbox.router())` works: pages only use relative links).
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/me", get(api::me))
            .route("/echo", any(api::echo))
            .route("/echo/{*rest}", any(api::echo))
            .route("/contacts", get(api::list_contacts).post(api::add_contact))
            .route("/text", get(api::text))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                api::guard,
            ));
        Router::new()
            .route(
                "/oauth/authorize",
                get(authorize::show).post(authorize::decide),
            )
            .route("/oauth/token", post(token::token))
            .route("/oauth/revoke", post(token::revoke))
            .nest("/api", api)
            .with_state(self.clone())
    }

    /// Failure injection, usable while the server runs.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Makes every access token issued so far expired now (to force a refresh in tests).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for token in self.lock().access.values_mut() {
            token.expires_at = now;
        }
    }

    /// Registers a client, replacing one with the same id.
    pub fn add_client(&self, client: SandboxClient) {
        self.lock().clients.insert(client.id.clone(), client);
    }

    /// Serves the sandbox at the root of `127.0.0.1:<free port>` on a background task (which
    /// lives as long as the Tokio runtime) and returns the address.
    pub async fn serve_on_loopback(&self) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(addr)
    }

    fn settings(&self) -> Settings {
        self.shared.settings
    }

    /// The state lock; a panic elsewhere must not wedge a test server, so poison is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
