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
    /// A custom integration's definition: the fields of a provider file, as JSON.
    pub definition: Option<serde_json::Value>,
}

pub struct IntegrationsService {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    vault: Arc<Vault>,
    /// Every SDK call lists the project's integrations; they change rarely.
    by_project: Cache<ProjectId, Arc<Vec<ConfiguredIntegration>>>,
    /// Whether custom integrations may point at `http://` loopback URLs (tests, the
    /// development sandbox).
    allow_loopback_providers: bool,
}

/// Binds a sealed client secret to its project and integration.
fn secret_context(project: ProjectId, key: &IntegrationKey) -> Vec<u8> {
    secret_context_for(project, key.as_str())
}

pub(crate) fn secret_context_for(project: ProjectId, key: &str) -> Vec<u8> {
    format!("project-integration/{project}/{key}").into_bytes()
}

impl IntegrationsService {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        vault: Arc<Vault>,
        cache_ttl: Duration,
        allow_loopback_providers: bool,
    ) -> Self {
        Self {
            store,
            catalog,
            vault,
            allow_loopback_providers,
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
        let existing = self.store.get_project_integration(project, &key).await?;
        let (spec, custom_spec) = self.spec_for(&key, &settings, existing.as_ref())?;
        validate_settings(&settings)?;
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
            custom_spec,
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
                let spec = self.stored_spec(&integration)?;
                Some(ConfiguredIntegration { integration, spec })
            })
            .collect();
        let configured = Arc::new(configured);
        self.by_project.insert(project, configured.clone());
        Ok(configured)
    }

    /// The provider definition for `key`: the catalog's, or a custom one given now or
    /// stored before. Returns it with the JSON to store for custom integrations.
    fn spec_for(
        &self,
        key: &IntegrationKey,
        settings: &IntegrationSettings,
        existing: Option<&ProjectIntegration>,
    ) -> ServiceResult<(ProviderSpec, Option<String>)> {
        if !key.is_custom() {
            if settings.definition.is_some() {
                return Err(ServiceError::InvalidInput(
                    "only custom integrations (`custom.<slug>`) take a definition".into(),
                ));
            }
            let spec = self
                .catalog
                .get(key.as_str())
                .cloned()
                .ok_or_else(|| ServiceError::UnknownIntegration(key.to_string()))?;
            return Ok((spec, None));
        }
        let Some(definition) = &settings.definition else {
            let stored = existing.and_then(|e| self.stored_spec(e)).ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "{key} is a new custom integration: give its `definition`"
                ))
            })?;
            return Ok((stored, existing.and_then(|e| e.custom_spec.clone())));
        };
        let mut definition = definition.clone();
        if let Some(object) = definition.as_object_mut() {
            object
                .entry("key")
                .or_insert_with(|| serde_json::Value::String(key.to_string()));
        }
        let spec = ProviderSpec::from_custom_json(definition)
            .map_err(|e| ServiceError::InvalidInput(format!("definition: {e}")))?;
        if spec.key != key.as_str() {
            return Err(ServiceError::InvalidInput(format!(
                "definition: key `{}` does not match the integration `{key}`",
                spec.key
            )));
        }
        if spec.uses_plain_http() && !self.allow_loopback_providers {
            return Err(ServiceError::InvalidInput(
                "definition: only https URLs are allowed (this server does not allow loopback providers)"
                    .into(),
            ));
        }
        let json =
            serde_json::to_string(&spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((spec, Some(json)))
    }

    /// The provider definition of a stored integration; `None` (the integration is left
    /// out) when the catalog no longer has it or a stored definition no longer parses.
    fn stored_spec(&self, integration: &ProjectIntegration) -> Option<ProviderSpec> {
        match &integration.custom_spec {
            Some(json) => {
                let value = serde_json::from_str(json).ok()?;
                let spec = ProviderSpec::from_custom_json(value);
                if let Err(e) = &spec {
                    tracing::warn!(integration = %integration.key, error = %e, "stored custom integration no longer valid");
                }
                spec.ok()
            }
            None => self.catalog.get(integration.key.as_str()).cloned(),
        }
    }

    /// The project's integration with this key.
    pub async fn find(
        &self,
        project: ProjectId,
        key: &str,
    ) -> ServiceResult<Option<ConfiguredIntegration>> {
        Ok(self
            .list(project)
            .await?
            .iter()
            .find(|c| c.integration.key.as_str() == key)
            .cloned())
    }

    /// The project's integration with this id.
    pub async fn find_by_id(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> ServiceResult<Option<ConfiguredIntegration>> {
        Ok(self
            .list(project)
            .await?
            .iter()
            .find(|c| c.integration.id == id)
            .cloned())
    }

    /// The integration's OAuth client secret, opened.
    pub fn client_secret(
        &self,
        configured: &ConfiguredIntegration,
    ) -> ServiceResult<Option<String>> {
        let Some(sealed) = &configured.integration.oauth_client_secret_sealed else {
            return Ok(None);
        };
        let context = secret_context(
            configured.integration.project_id,
            &configured.integration.key,
        );
        let opened = self
            .vault
            .open(sealed, &context)
            .and_then(|o| o.into_string())
            .map_err(|e| ServiceError::Internal(format!("client secret: {e}")))?;
        Ok(Some(opened))
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
    matches!(
        spec.auth,
        AuthSpec::Oauth2(_) | AuthSpec::Oauth2ClientCredentials(_)
    )
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
