//! Plugboard's application services: what the HTTP API (and later the dashboard) call.
//! They speak domain types, hold the caches, and reach storage only through
//! `Arc<dyn Store>`. Nothing here knows about HTTP.

pub mod error;
pub mod keys;
pub mod last_seen;
pub mod projects;
pub mod tokens;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use plugboard_core::MetadataLimits;
use plugboard_store::Store;

pub use error::ServiceError;
pub use projects::ProjectsService;
pub use tokens::TokenVerifier;
pub use users::UsersService;

/// Tunables of the services, with defaults fit for one node.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub metadata_limits: MetadataLimits,
    /// How many verified user tokens are remembered, so a busy user does not pay an RSA
    /// verification per request.
    pub token_cache_capacity: u64,
    /// How long a project's signing keys are cached; a key revoked on another node stops
    /// verifying within this time (at once on the node that revoked it).
    pub signing_key_cache_ttl: Duration,
    /// How long connected users are cached in memory for SDK calls; `None` disables the
    /// cache. Writes made through this node update it at once; writes made by another node
    /// sharing the database show after at most this long, so multi-node deployments keep
    /// it short or off.
    pub user_cache_ttl: Option<Duration>,
    /// How many users the cache holds.
    pub user_cache_capacity: u64,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            metadata_limits: MetadataLimits::default(),
            token_cache_capacity: 100_000,
            signing_key_cache_ttl: Duration::from_secs(5),
            user_cache_ttl: None,
            user_cache_capacity: 100_000,
        }
    }
}

/// Every service, built over one store.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub projects: Arc<ProjectsService>,
    pub users: Arc<UsersService>,
    pub tokens: Arc<TokenVerifier>,
    pub last_seen: Arc<last_seen::LastSeenTracker>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, settings: ServiceSettings) -> Self {
        let tokens = Arc::new(TokenVerifier::new(store.clone(), &settings));
        let last_seen = Arc::new(last_seen::LastSeenTracker::default());
        Self {
            projects: Arc::new(ProjectsService::new(store.clone(), tokens.clone())),
            users: Arc::new(UsersService::new(
                store.clone(),
                tokens.clone(),
                last_seen.clone(),
                &settings,
            )),
            store,
            tokens,
            last_seen,
        }
    }
}
