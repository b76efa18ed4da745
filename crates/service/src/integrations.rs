//! The integrations a project turns on, with its OAuth app's client id and secret.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use plugboard_connect::ProviderSpec;
use plugboard_connect::catalog::{AuthSpec, Catalog};
use plugboard_connect::vault::Vault;
use plugboard_core::{
    CredentialWithConfigurations, IntegrationKey, ProjectId, ProjectIntegration, UserId, now_millis,
};
use plugboard_store::Store;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

pub const MAX_SCOPES: usize = 100;

/// A project integration with the provider facts it is built on.
#[derive(Debug, Clone)]
pub struct ConfiguredIntegration {
    pub integration: ProjectIntegration,
    pub spec: ProviderSpec,
}

/// What a project sets when it turns an integration on or changes it. `None` keeps the
/// current value.
#[derive(Debug, Clone, Default)]
pub struct IntegrationSettings {
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub active: Option<bool>,
}

pub struct IntegrationsService {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    vault: Arc<Vault>,
    /// Every SDK call lists the project's integrations; they change rarely.
    by_project: Cache<ProjectId, Arc<Vec<ConfiguredIntegration>>>,
}

/// Binds a sealed client secret to its project and integration.
fn secret_context(project: ProjectId, key: &IntegrationKey) -> Vec<u8> {
    format!("project-integration/{project}/{key}").into_bytes()
}

impl IntegrationsService {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        vault: Arc<Vault>,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            store,
            catalog,
            vault,
            by_project: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cache_ttl)
                .build(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Turns `key` on for `project`, or changes its settings.
    pub async fn configure(
        &self,
        project: ProjectId,
        key: &str,
        settings: IntegrationSettings,
    ) -> ServiceResult<ConfiguredIntegration> {
        let key =
            IntegrationKey::parse(key).map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        let spec = self
            .catalog
            .get(key.as_str())
            .cloned()
            .ok_or_else(|| ServiceError::UnknownIntegration(key.to_string()))?;
        validate_settings(&settings)?;
        let existing = self.store.get_project_integration(project, &key).await?;
        let now = now_millis();
        let sealed_secret = match &settings.oauth_client_secret {
            Some(secret) => Some(
                self.vault
                    .seal(secret.as_bytes(), &secret_context(project, &key))
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => existing
                .as_ref()
                .and_then(|e| e.oauth_client_secret_sealed.clone()),
        };
        let integration = ProjectIntegration {
            id: existing.as_ref().map_or_else(Uuid::new_v4, |e| e.id),
            project_id: project,
            key,
            oauth_client_id: settings
                .oauth_client_id
                .or_else(|| existing.as_ref().and_then(|e| e.oauth_client_id.clone())),
            oauth_client_secret_sealed: sealed_secret,
            scopes: settings
                .scopes
                .or_else(|| existing.as_ref().and_then(|e| e.scopes.clone())),
            active: settings
                .active
                .or(existing.as_ref().map(|e| e.active))
                .unwrap_or(true),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        if integration.active && needs_oauth_app(&spec) && integration.oauth_client_id.is_none() {
            return Err(ServiceError::InvalidInput(format!(
                "{} uses OAuth: set oauthClientId (and oauthClientSecret) to activate it",
                spec.name
            )));
        }
        let stored = self.store.upsert_project_integration(&integration).await?;
        self.by_project.invalidate(&project);
        Ok(ConfiguredIntegration {
            integration: stored,
            spec,
        })
    }

    /// The project's integrations, ordered by key.
    pub async fn list(&self, project: ProjectId) -> ServiceResult<Arc<Vec<ConfiguredIntegration>>> {
        // A synchronous cache: a hit is a hash lookup; concurrent misses may load twice,
        // which is harmless.
        if let Some(hit) = self.by_project.get(&project) {
            return Ok(hit);
        }
        let configured: Vec<ConfiguredIntegration> = self
            .store
            .list_project_integrations(project)
            .await?
            .into_iter()
            .filter_map(|integration| {
                let spec = self.catalog.get(integration.key.as_str())?.clone();
                Some(ConfiguredIntegration { integration, spec })
            })
            .collect();
        let configured = Arc::new(configured);
        self.by_project.insert(project, configured.clone());
        Ok(configured)
    }

    /// The user's credentials; no database call when the project has no integrations.
    pub async fn user_credentials(
        &self,
        project: ProjectId,
        user: &UserId,
        configured: &[ConfiguredIntegration],
    ) -> ServiceResult<Vec<CredentialWithConfigurations>> {
        if configured.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.list_credentials(project, user).await?)
    }
}

fn needs_oauth_app(spec: &ProviderSpec) -> bool {
    matches!(spec.auth, AuthSpec::Oauth2(_))
}

fn validate_settings(settings: &IntegrationSettings) -> ServiceResult<()> {
    let invalid = |why: &str| Err(ServiceError::InvalidInput(why.to_owned()));
    if settings
        .oauth_client_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > 512)
    {
        return invalid("oauthClientId must be 1 to 512 characters");
    }
    if settings
        .oauth_client_secret
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 4096)
    {
        return invalid("oauthClientSecret must be 1 to 4096 characters");
    }
    if let Some(scopes) = &settings.scopes {
        if scopes.len() > MAX_SCOPES {
            return invalid("at most 100 scopes");
        }
        if scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > 256 || s.chars().any(char::is_whitespace))
        {
            return invalid("scopes must be 1 to 256 characters without spaces");
        }
    }
    Ok(())
}
