//! Connecting users' accounts and using them: the OAuth round trip, credentials typed in
//! by the user, the refresh gate every use of a token goes through, disconnecting, and
//! the proxy to the provider's API.

mod flow;
mod gate;
mod manage;
mod proxy;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plugboard_connect::credentials::CredentialSecrets;
use plugboard_connect::oauth::{OAuthError, ProviderClient};
use plugboard_connect::vault::Vault;
use plugboard_core::{Credential, CredentialWithConfigurations, Execution, ProjectId};
use plugboard_store::Store;
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::integrations::{ConfiguredIntegration, IntegrationsService};

pub use flow::{BeginConnect, CallbackOutcome, LinkPage, MAX_INPUT_CHARS, SessionState};
pub use manage::{CredentialRequest, NewCredential, SettingsUpdate};
pub use proxy::{ProxyRequest, ProxyResponse};

/// Tunables of connecting and using accounts.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// Where this server is reached from browsers; the OAuth callback is
    /// `{public_url}/oauth/callback`.
    pub public_url: Url,
    /// How long a user has to finish an OAuth round trip.
    pub session_ttl: Duration,
    /// How long a connect link stays usable.
    pub link_ttl: Duration,
    /// How long the SDK's polling leaves the callback page's message to report a new
    /// credential first (the page posts it as soon as it loads and the SDK confirms it
    /// at once; SDK 2.4.0 fires `onIntegrationInstall` once per channel that reports).
    pub message_grace: Duration,
    /// Tokens expiring within this margin are refreshed before use.
    pub refresh_margin: Duration,
    /// How long one node may hold a credential's refresh lease.
    pub refresh_lease: Duration,
    /// Time allowed for each request to a provider (token endpoint or API).
    pub provider_timeout: Duration,
    /// Largest provider answer the proxy relays.
    pub proxy_max_response_bytes: usize,
    /// Tries of a refresh that fails transiently (5xx, 429, network) before giving up.
    pub refresh_attempts: u32,
}

impl ConnectSettings {
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            session_ttl: Duration::from_secs(600),
            link_ttl: Duration::from_secs(7 * 24 * 3600),
            message_grace: Duration::from_secs(3),
            refresh_margin: Duration::from_secs(300),
            refresh_lease: Duration::from_secs(30),
            provider_timeout: Duration::from_secs(30),
            proxy_max_response_bytes: 10 * 1024 * 1024,
            refresh_attempts: 3,
        }
    }

    /// The redirect URI to register with providers.
    pub fn callback_url(&self) -> String {
        format!(
            "{}/oauth/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}

/// Why connecting failed; each has a stable code shown to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("this connect request is unknown, already used or expired; start again")]
    InvalidState,
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    #[error("the provider did not accept the authorization code: {0}")]
    ExchangeFailed(OAuthError),
    #[error("this connect link is unknown, already used or expired")]
    InvalidLink,
    #[error("this confirmation did not come from the connect link's page; open the link again")]
    LinkFormMismatch,
}

impl ConnectError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidState => "invalid_state",
            Self::Denied(_) => "access_denied",
            Self::ExchangeFailed(_) => "token_exchange_failed",
            Self::InvalidLink => "invalid_connect_link",
            Self::LinkFormMismatch => "connect_link_form_mismatch",
        }
    }
}

/// A failure of the provider's API, as the proxy meets it.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
    #[error("the provider's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the provider is rate limiting token refreshes; retry later")]
    RateLimited { retry_after: Option<Duration> },
    #[error("{0}")]
    BadRequest(String),
}

/// A credential ready for use: fresh secrets and what they unlock.
pub struct UsableCredential {
    pub integration: ConfiguredIntegration,
    pub credential: Credential,
    pub secrets: CredentialSecrets,
}

impl UsableCredential {
    /// User inputs recorded at connect time (a subdomain, a shop name).
    pub fn inputs(&self) -> BTreeMap<String, String> {
        inputs_of(&self.credential.provider_data)
    }
}

pub(crate) fn inputs_of(provider_data: &Map<String, Value>) -> BTreeMap<String, String> {
    provider_data
        .get("inputs")
        .and_then(Value::as_object)
        .map(|inputs| {
            inputs
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What a new connection comes with, decided outside this module (by the workflows):
/// its default configuration's workflow settings and the executions it starts, both
/// written in the credential's own transaction.
#[derive(Debug, Default)]
pub struct ConnectPlan {
    pub workflow_settings: Map<String, Value>,
    pub executions: Vec<Execution>,
    /// Written to the outbox with the credential.
    pub events: Vec<plugboard_core::OutboxEvent>,
}

#[async_trait::async_trait]
pub trait ConnectHooks: Send + Sync {
    /// Called before `credential`, of integration `integration`, is stored.
    async fn plan_connection(
        &self,
        credential: &Credential,
        integration: &str,
    ) -> ServiceResult<ConnectPlan>;
    /// Called once executions of a plan are stored.
    fn enqueued(&self);
    /// Fails with `EntitlementRequired` when the user may not connect `integration`.
    async fn check_entitlement(
        &self,
        project: ProjectId,
        user: &plugboard_core::UserId,
        integration: &str,
    ) -> ServiceResult<()>;
}

pub struct ConnectService {
    /// Set once at start; weak because the hooks' owner holds this service.
    hooks: std::sync::OnceLock<std::sync::Weak<dyn ConnectHooks>>,
    store: Arc<dyn Store>,
    integrations: Arc<IntegrationsService>,
    vault: Arc<Vault>,
    client: ProviderClient,
    settings: ConnectSettings,
    state_key: state::StateKey,
}

impl ConnectService {
    pub fn new(
        store: Arc<dyn Store>,
        integrations: Arc<IntegrationsService>,
        vault: Arc<Vault>,
        master_key: &[u8; 32],
        settings: ConnectSettings,
    ) -> Self {
        Self {
            hooks: std::sync::OnceLock::new(),
            client: ProviderClient::new(settings.provider_timeout),
            state_key: state::StateKey::derive(master_key),
            store,
            integrations,
            vault,
            settings,
        }
    }

    pub fn settings(&self) -> &ConnectSettings {
        &self.settings
    }

    /// Installs the hooks new connections consult (once; later calls are ignored).
    pub fn set_hooks(&self, hooks: std::sync::Weak<dyn ConnectHooks>) {
        let _ = self.hooks.set(hooks);
    }

    fn hooks(&self) -> Option<Arc<dyn ConnectHooks>> {
        self.hooks.get().and_then(std::sync::Weak::upgrade)
    }

    /// Refuses early (before any round trip to the provider) a connection the user's
    /// plan does not include; storing the credential checks again.
    async fn check_entitlement(
        &self,
        project: ProjectId,
        user: &plugboard_core::UserId,
        integration: &str,
    ) -> ServiceResult<()> {
        match self.hooks() {
            Some(hooks) => hooks.check_entitlement(project, user, integration).await,
            None => Ok(()),
        }
    }

    fn seal_secrets(
        &self,
        project: ProjectId,
        credential: Uuid,
        secrets: &CredentialSecrets,
    ) -> ServiceResult<String> {
        let json = serde_json::to_vec(secrets).map_err(internal)?;
        self.vault
            .seal(&json, &credential_context(project, credential))
            .map_err(internal)
    }

    fn open_secrets(&self, credential: &Credential) -> ServiceResult<CredentialSecrets> {
        let opened = self
            .vault
            .open(
                &credential.secrets_sealed,
                &credential_context(credential.project_id, credential.id),
            )
            .map_err(internal)?;
        serde_json::from_slice(opened.as_bytes()).map_err(internal)
    }

    /// The integration, which must be active.
    async fn active_integration(
        &self,
        project: ProjectId,
        key: &str,
    ) -> ServiceResult<ConfiguredIntegration> {
        let configured = self
            .integrations
            .find(project, key)
            .await?
            .ok_or_else(|| ServiceError::IntegrationNotFound(key.to_owned()))?;
        if !configured.integration.active {
            return Err(ServiceError::IntegrationInactive(key.to_owned()));
        }
        Ok(configured)
    }
}

/// Binds a credential's sealed secrets to its project and id.
pub(crate) fn credential_context(project: ProjectId, credential: Uuid) -> Vec<u8> {
    format!("credential/{project}/{credential}").into_bytes()
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// The credentials of one integration among a user's, oldest first.
pub(crate) fn of_integration(
    all: Vec<CredentialWithConfigurations>,
    integration: Uuid,
) -> Vec<CredentialWithConfigurations> {
    all.into_iter()
        .filter(|c| c.credential.integration_id == integration)
        .collect()
}
