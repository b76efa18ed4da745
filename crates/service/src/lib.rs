//! Plugboard's application services: what the HTTP API (and later the dashboard) call.
//! They speak domain types, hold the caches, and reach storage only through
//! `Arc<dyn Store>`. Nothing here knows about HTTP.

pub mod audit;
pub mod connect;
pub mod entitlements;
pub mod error;
pub mod integrations;
pub mod keys;
pub mod last_seen;
pub mod policy;
pub mod projects;
pub mod rotation;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod workflows;

use std::sync::Arc;
use std::time::Duration;

use plugboard_core::MetadataLimits;
use plugboard_store::Store;

pub use audit::AuditService;
pub use error::ServiceError;
pub use integrations::IntegrationsService;
use plugboard_connect::Catalog;
use plugboard_connect::vault::Vault;
pub use projects::ProjectsService;
pub use tokens::TokenVerifier;
pub use users::UsersService;

/// How a hidden value is shown: `marker`, then its last 4 characters when it is long
/// enough (12 or more) to keep the rest hidden.
pub(crate) fn masked_tail(text: &str, marker: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 12 {
        return marker.to_owned();
    }
    format!(
        "{marker}{}",
        chars[chars.len() - 4..].iter().collect::<String>()
    )
}

/// Tunables of the services, with defaults fit for one node.
#[derive(Clone)]
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
    /// The key credentials and client secrets are sealed under. `None` (tests, tools that
    /// store no secrets) uses a random key for this process only.
    pub master_key: Option<[u8; 32]>,
    /// Older master keys, still used to open values sealed before a rotation.
    pub previous_master_keys: Vec<[u8; 32]>,
    /// Whether custom integrations may use `http://` loopback URLs (tests and the
    /// development sandbox only).
    pub allow_loopback_providers: bool,
    pub connect: connect::ConnectSettings,
    pub worker: workflows::worker::WorkerSettings,
    pub webhooks: webhooks::WebhookSettings,
}

impl std::fmt::Debug for ServiceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("metadata_limits", &self.metadata_limits)
            .field("user_cache_ttl", &self.user_cache_ttl)
            .field("master_key", &self.master_key.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            metadata_limits: MetadataLimits::default(),
            token_cache_capacity: 100_000,
            signing_key_cache_ttl: Duration::from_secs(5),
            user_cache_ttl: None,
            user_cache_capacity: 100_000,
            master_key: None,
            previous_master_keys: Vec::new(),
            allow_loopback_providers: false,
            worker: workflows::worker::WorkerSettings::default(),
            webhooks: webhooks::WebhookSettings::default(),
            connect: connect::ConnectSettings::new(
                url::Url::parse("http://127.0.0.1:8080").expect("a valid URL"),
            ),
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
    pub integrations: Arc<IntegrationsService>,
    pub connect: Arc<connect::ConnectService>,
    /// The master keys, for tools such as key rotation.
    pub vault: Arc<Vault>,
    pub workflows: Arc<workflows::WorkflowsService>,
    pub worker: Arc<workflows::worker::Worker>,
    /// Each project's environment variables for workflow templates.
    pub env: Arc<workflows::env::ProjectEnv>,
    /// Each project's entitlement rules and secret metadata keys.
    pub policy: Arc<policy::PolicyService>,
    /// Policy changes and their dry runs.
    pub entitlements: Arc<entitlements::EntitlementsService>,
    /// Webhook endpoints, the outbox's events and their deliveries.
    pub webhooks: Arc<webhooks::WebhooksService>,
    /// Sends the webhooks (started by the server on worker nodes).
    pub dispatcher: Arc<webhooks::dispatcher::Dispatcher>,
    /// The audit log of management and dashboard actions.
    pub audit: Arc<AuditService>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, settings: ServiceSettings) -> Self {
        let tokens = Arc::new(TokenVerifier::new(store.clone(), &settings));
        let last_seen = Arc::new(last_seen::LastSeenTracker::default());
        let master_key = settings.master_key.unwrap_or_else(|| {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            key
        });
        let vault = Arc::new(
            Vault::new(&master_key, &settings.previous_master_keys)
                .expect("32-byte keys are valid"),
        );
        let integrations = Arc::new(IntegrationsService::new(
            store.clone(),
            Arc::new(Catalog::embedded()),
            vault.clone(),
            settings.signing_key_cache_ttl,
            settings.allow_loopback_providers,
        ));
        let connect = Arc::new(connect::ConnectService::new(
            store.clone(),
            integrations.clone(),
            vault.clone(),
            &master_key,
            settings.connect.clone(),
        ));
        let env = Arc::new(workflows::env::ProjectEnv::new(
            store.clone(),
            vault.clone(),
            settings.signing_key_cache_ttl,
        ));
        let policy = Arc::new(policy::PolicyService::new(
            store.clone(),
            vault.clone(),
            settings.signing_key_cache_ttl,
        ));
        let worker = Arc::new(workflows::worker::Worker::new(
            store.clone(),
            connect.clone(),
            (env.clone(), policy.clone()),
            settings.worker.clone(),
        ));
        let workflows = Arc::new(workflows::WorkflowsService::new(
            store.clone(),
            (integrations.clone(), connect.clone(), policy.clone()),
            worker.clone(),
            settings.signing_key_cache_ttl,
        ));
        let webhook_wake = Arc::new(tokio::sync::Notify::new());
        let webhooks = Arc::new(webhooks::WebhooksService::new(
            store.clone(),
            vault.clone(),
            settings.webhooks.clone(),
            webhook_wake.clone(),
        ));
        let dispatcher = Arc::new(
            webhooks::dispatcher::Dispatcher::new(store.clone(), webhooks.clone(), webhook_wake)
                .expect("the webhook HTTP client builds"),
        );
        let hooks: Arc<dyn connect::ConnectHooks> = workflows.clone();
        connect.set_hooks(Arc::downgrade(&hooks));
        let users = Arc::new(UsersService::new(
            store.clone(),
            tokens.clone(),
            last_seen.clone(),
            policy.clone(),
            &settings,
        ));
        let access_hooks: Arc<dyn users::AccessHooks> = workflows.clone();
        users.set_hooks(Arc::downgrade(&access_hooks));
        Self {
            entitlements: Arc::new(entitlements::EntitlementsService::new(
                store.clone(),
                users.clone(),
                policy.clone(),
            )),
            users,
            policy,
            audit: Arc::new(AuditService::new(store.clone())),
            integrations,
            connect,
            vault,
            workflows,
            worker,
            env,
            webhooks,
            dispatcher,
            projects: Arc::new(ProjectsService::new(store.clone(), tokens.clone())),
            store,
            tokens,
            last_seen,
        }
    }
}
