//! Credentials as users and apps manage them: storing a new connection, credentials typed
//! in (API keys, Basic), reading them, their settings, and disconnecting.

use std::collections::BTreeMap;

use plugboard_connect::catalog::{AccountIdSpec, AuthSpec, HttpMethod};
use plugboard_connect::credentials::CredentialSecrets;
use plugboard_connect::oauth::OAuthApp;
use plugboard_core::{
    Credential, CredentialConfiguration, CredentialStatus, CredentialWithConfigurations, Execution,
    OutboxEvent, ProjectId, UserId, now_millis,
};
use plugboard_store::{CredentialSecretsWrite, StoreError};
use reqwest::header::AUTHORIZATION;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::flow::{account_id_without_request, client_credentials_scopes, identity_values};
use super::{ConnectError, ConnectPlan, ConnectService, inputs_of, of_integration};
use crate::error::{ServiceError, ServiceResult};
use crate::integrations::ConfiguredIntegration;

/// Longest value accepted for one typed-in credential field.
const MAX_INPUT_CHARS: usize = 4096;

/// A connection about to be stored.
pub struct NewCredential {
    pub secrets: CredentialSecrets,
    /// Non-secret values the user supplied (a subdomain), kept in `providerData.inputs`.
    pub inputs: BTreeMap<String, String>,
    /// Query parameters of the provider's redirect (QuickBooks' `realmId`…).
    pub callback: BTreeMap<String, String>,
    /// The SDK's install options.
    pub options: Map<String, Value>,
}

/// A change to a credential's configuration; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub workflow_settings: Option<Map<String, Value>>,
    pub shared_settings: Option<Map<String, Value>>,
}

/// What the SDK's `POST /sdk/credentials` carries.
#[derive(Debug, Clone, Default)]
pub struct CredentialRequest {
    pub integration: String,
    pub payload: Map<String, Value>,
    pub code: Option<String>,
    pub redirect_url: Option<String>,
    pub options: Map<String, Value>,
}

/// Why an identity request did not give an account id.
enum IdentityFailure {
    /// The provider refused the credentials (401/403).
    Refused(u16),
    Other(String),
}

impl ConnectService {
    /// Stores a new connection for the user, or renews the user's existing one for this
    /// integration (the selected credential, the same provider account, or, unless
    /// several accounts are allowed, the one already there).
    pub(crate) async fn store_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        configured: &ConfiguredIntegration,
        new: NewCredential,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let account_id = match self.account_id(configured, &new).await {
            Ok(id) => id,
            Err(IdentityFailure::Refused(status)) => {
                return Err(ServiceError::CredentialRejected(format!(
                    "the provider answered {status} when asked who these credentials belong to"
                )));
            }
            Err(IdentityFailure::Other(why)) => {
                tracing::warn!(integration = %configured.integration.key, %why, "could not read the connected account's id");
                None
            }
        };
        let existing = of_integration(
            self.store.list_credentials(project, user).await?,
            configured.integration.id,
        );
        if let Some(old) = renewal_target(&existing, &new.options, account_id.as_deref()) {
            return self.renew(project, user, &old.credential, &new).await;
        }
        let now = now_millis();
        let id = Uuid::new_v4();
        let tokens = new.secrets.tokens();
        let credential = Credential {
            id,
            project_id: project,
            user_id: user.clone(),
            integration_id: configured.integration.id,
            status: CredentialStatus::Valid,
            provider_id: account_id,
            provider_data: provider_data(&new),
            secrets_sealed: self.seal_secrets(project, id, &new.secrets)?,
            expires_at: tokens.and_then(|t| t.expires_at),
            refresh_failure_count: 0,
            external_id: new
                .options
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            created_at: now,
            updated_at: now,
            refreshed_at: tokens.map(|_| now),
            version: 1,
        };
        let plan = match self.hooks() {
            Some(hooks) => {
                hooks
                    .plan_connection(&credential, configured.integration.key.as_str())
                    .await?
            }
            None => ConnectPlan::default(),
        };
        let configuration = CredentialConfiguration {
            id: Uuid::new_v4(),
            credential_id: id,
            is_default: true,
            workflow_settings: plan.workflow_settings,
            shared_settings: Map::new(),
            external_id: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_credential(&credential, &configuration, &plan.executions, &plan.events)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ServiceError::UserNotFound,
                StoreError::Conflict(_) => ServiceError::InvalidInput(
                    "a credential with this externalId already exists for the user".into(),
                ),
                other => other.into(),
            })?;
        if let (false, Some(hooks)) = (plan.executions.is_empty(), self.hooks()) {
            hooks.enqueued();
        }
        self.credential(project, user, id).await
    }

    async fn renew(
        &self,
        project: ProjectId,
        user: &UserId,
        old: &Credential,
        new: &NewCredential,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let sealed = self.seal_secrets(project, old.id, &new.secrets)?;
        let now = now_millis();
        let tokens = new.secrets.tokens();
        self.store
            .update_credential_secrets(CredentialSecretsWrite {
                project_id: project,
                credential_id: old.id,
                secrets_sealed: &sealed,
                expires_at: tokens.and_then(|t| t.expires_at),
                refreshed_at: Some(now),
                expected_version: old.version,
                now,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::ConcurrentUpdate,
                other => other.into(),
            })?;
        self.credential(project, user, old.id).await
    }

    /// The provider's id for the connected account.
    async fn account_id(
        &self,
        configured: &ConfiguredIntegration,
        new: &NewCredential,
    ) -> Result<Option<String>, IdentityFailure> {
        let spec = &configured.spec;
        if let Some(id) = account_id_without_request(spec, new.secrets.tokens(), &new.callback) {
            return Ok(Some(id));
        }
        let AccountIdSpec::Request(request) = &spec.account_id else {
            return Ok(None);
        };
        let template = spec
            .identity_url_template()
            .ok_or_else(|| IdentityFailure::Other("no identity URL".into()))?;
        let fields = new.secrets.tokens().map(|t| t.fields_value());
        let url = spec
            .render_url_with(
                &template,
                &identity_values(&new.inputs, fields.as_ref(), &new.callback),
            )
            .map_err(|e| IdentityFailure::Other(e.to_string()))?;
        let http = self.client.http();
        let mut call = match request.method {
            HttpMethod::Get => http.get(url),
            HttpMethod::Post => http.post(url),
        };
        call = match (&new.secrets, &request.auth_scheme) {
            (CredentialSecrets::Tokens(t), Some(scheme)) => {
                call.header(AUTHORIZATION, format!("{scheme} {}", t.access_token))
            }
            _ => {
                let (name, value) = spec
                    .auth_header(&new.secrets)
                    .map_err(|e| IdentityFailure::Other(e.to_string()))?;
                call.header(name, value)
            }
        };
        if let Some(body) = &request.body {
            call = call
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = call
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| IdentityFailure::Other(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(IdentityFailure::Refused(status));
        }
        if !response.status().is_success() {
            return Err(IdentityFailure::Other(format!("HTTP {status}")));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| IdentityFailure::Other(e.without_url().to_string()))?;
        Ok(request.field.lookup_scalar(&body))
    }

    /// `POST /sdk/credentials`: typed-in credentials, a code the app exchanged itself, a
    /// client-credentials connection, or the SDK confirming a finished OAuth round trip
    /// (`payload.connectCredentialId`, idempotent).
    pub async fn create_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        request: CredentialRequest,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let configured = self.find_integration(project, &request.integration).await?;
        if let Some(done) = request.payload.get("connectCredentialId") {
            let id = done
                .as_str()
                .and_then(|s| Uuid::try_parse(s).ok())
                .ok_or(ServiceError::CredentialNotFound)?;
            let found = self.credential(project, user, id).await?;
            if found.credential.integration_id != configured.integration.id {
                return Err(ServiceError::CredentialNotFound);
            }
            if let Some(session) = request
                .payload
                .get("connectSessionId")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::try_parse(s).ok())
            {
                self.report_by_message(session, id).await;
            }
            return Ok(found);
        }
        let new = match &configured.spec.auth {
            AuthSpec::Oauth2(_) => self.exchange_app_code(&configured, &request).await?,
            AuthSpec::Oauth2ClientCredentials(_) => {
                self.mint_client_credentials(&configured, &request).await?
            }
            AuthSpec::ApiKey(_) | AuthSpec::Basic(_) => typed_in(&configured, &request)?,
        };
        self.store_credential(project, user, &configured, new).await
    }

    async fn exchange_app_code(
        &self,
        configured: &ConfiguredIntegration,
        request: &CredentialRequest,
    ) -> ServiceResult<NewCredential> {
        let code = request.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
            ServiceError::InvalidInput(format!(
                "{} uses OAuth: connect it through installIntegration (build-oauth), or send the authorization `code` your app received",
                configured.spec.name
            ))
        })?;
        let callback = self.settings.callback_url();
        let redirect = request.redirect_url.as_deref().unwrap_or(&callback);
        let inputs = string_values(&request.payload, &configured.spec.user_inputs_keys());
        let secret = self.integrations.client_secret(configured)?;
        let tokens = self
            .client
            .exchange_code(
                &configured.spec,
                app_of(configured, secret.as_deref()),
                code,
                redirect,
                None,
                &inputs,
            )
            .await
            .map_err(ConnectError::ExchangeFailed)?;
        Ok(NewCredential {
            secrets: CredentialSecrets::Tokens(tokens),
            inputs,
            callback: BTreeMap::new(),
            options: request.options.clone(),
        })
    }

    async fn mint_client_credentials(
        &self,
        configured: &ConfiguredIntegration,
        request: &CredentialRequest,
    ) -> ServiceResult<NewCredential> {
        let inputs = string_values(&request.payload, &configured.spec.user_inputs_keys());
        let secret = self.integrations.client_secret(configured)?;
        let tokens = self
            .client
            .client_credentials(
                &configured.spec,
                app_of(configured, secret.as_deref()),
                &client_credentials_scopes(configured),
                &inputs,
            )
            .await
            .map_err(ConnectError::ExchangeFailed)?;
        Ok(NewCredential {
            secrets: CredentialSecrets::Tokens(tokens),
            inputs,
            callback: BTreeMap::new(),
            options: request.options.clone(),
        })
    }

    /// The integration named by id or key (active or not: reading and disconnecting
    /// work on inactive ones too).
    pub(crate) async fn find_integration(
        &self,
        project: ProjectId,
        integration: &str,
    ) -> ServiceResult<ConfiguredIntegration> {
        if let Ok(id) = Uuid::try_parse(integration)
            && let Some(found) = self.integrations.find_by_id(project, id).await?
        {
            return Ok(found);
        }
        self.integrations
            .find(project, integration)
            .await?
            .ok_or_else(|| ServiceError::IntegrationNotFound(integration.to_owned()))
    }

    /// One of the user's credentials.
    pub async fn credential(
        &self,
        project: ProjectId,
        user: &UserId,
        id: Uuid,
    ) -> ServiceResult<CredentialWithConfigurations> {
        self.store
            .get_credential(project, user, id)
            .await?
            .ok_or(ServiceError::CredentialNotFound)
    }

    /// All the user's credentials, oldest first.
    pub async fn credentials(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> ServiceResult<Vec<CredentialWithConfigurations>> {
        Ok(self.store.list_credentials(project, user).await?)
    }

    /// Replaces settings of one configuration (the default unless one is named).
    pub async fn update_settings(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
        configuration_id: Option<Uuid>,
        update: SettingsUpdate,
    ) -> ServiceResult<CredentialWithConfigurations> {
        self.update_settings_starting(
            project,
            user,
            credential_id,
            configuration_id,
            update,
            (&[], &[]),
        )
        .await
    }

    /// [`Self::update_settings`], enqueueing `executions` in the same transaction.
    pub(crate) async fn update_settings_starting(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
        configuration_id: Option<Uuid>,
        update: SettingsUpdate,
        (executions, events): (&[Execution], &[OutboxEvent]),
    ) -> ServiceResult<CredentialWithConfigurations> {
        let current = self.credential(project, user, credential_id).await?;
        let configuration = configuration_id
            .and_then(|id| current.configurations.iter().find(|c| c.id == id))
            .or_else(|| current.configurations.iter().find(|c| c.is_default))
            .ok_or(ServiceError::CredentialNotFound)?;
        self.store
            .update_configuration(
                project,
                credential_id,
                configuration.id,
                update.workflow_settings,
                update.shared_settings,
                now_millis(),
                executions,
                events,
            )
            .await?;
        self.credential(project, user, credential_id).await
    }

    /// Disconnects the user from an integration: the selected credential when it belongs
    /// to it, otherwise every credential of it. Each token is revoked at the provider
    /// first (best effort, outcome logged), then the credential and its settings are
    /// deleted. Returns how many credentials went.
    pub async fn disconnect(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
        selected: Option<Uuid>,
    ) -> ServiceResult<usize> {
        let configured = self.find_integration(project, integration).await?;
        let mut targets = of_integration(
            self.store.list_credentials(project, user).await?,
            configured.integration.id,
        );
        if let Some(selected) = selected
            && targets.iter().any(|c| c.credential.id == selected)
        {
            targets.retain(|c| c.credential.id == selected);
        }
        for target in &targets {
            self.revoke(&configured, &target.credential).await;
            let event = OutboxEvent::new(
                project,
                "integration.disabled",
                json!({
                    "userId": user.as_str(),
                    "integration": configured.integration.key.as_str(),
                    "credentialId": target.credential.id,
                }),
                now_millis(),
            );
            match self
                .store
                .delete_credential(project, user, target.credential.id, &[event])
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(credential = %target.credential.id, integration = %configured.integration.key, "credential disconnected");
        }
        Ok(targets.len())
    }

    /// Revokes a credential's token at the provider, if it has an RFC 7009 endpoint.
    async fn revoke(&self, configured: &ConfiguredIntegration, credential: &Credential) {
        let Ok(CredentialSecrets::Tokens(tokens)) = self.open_secrets(credential) else {
            return;
        };
        let secret = match self.integrations.client_secret(configured) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::warn!(error = %e, "cannot revoke: client secret unavailable");
                return;
            }
        };
        // Revoking the refresh token ends the whole grant at most providers.
        let (token, hint) = match &tokens.refresh_token {
            Some(refresh) => (refresh.as_str(), "refresh_token"),
            None => (tokens.access_token.as_str(), "access_token"),
        };
        let inputs = inputs_of(&credential.provider_data);
        let outcome = self
            .client
            .revoke(
                &configured.spec,
                app_of(configured, secret.as_deref()),
                token,
                hint,
                &tokens,
                &inputs,
            )
            .await;
        match outcome {
            Ok(true) => {
                tracing::info!(credential = %credential.id, "token revoked at the provider")
            }
            Ok(false) => {
                tracing::info!(credential = %credential.id, "provider has no revocation endpoint")
            }
            Err(e) => {
                tracing::warn!(credential = %credential.id, error = %e, "token revocation failed")
            }
        }
    }
}

pub(crate) fn app_of<'a>(
    configured: &'a ConfiguredIntegration,
    secret: Option<&'a str>,
) -> OAuthApp<'a> {
    OAuthApp {
        client_id: configured
            .integration
            .oauth_client_id
            .as_deref()
            .unwrap_or_default(),
        client_secret: secret,
    }
}

/// The credential a new connection renews, if any.
fn renewal_target<'a>(
    existing: &'a [CredentialWithConfigurations],
    options: &Map<String, Value>,
    account_id: Option<&str>,
) -> Option<&'a CredentialWithConfigurations> {
    let selected = options
        .get("selectedCredentialId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok());
    if let Some(selected) = selected
        && let Some(found) = existing.iter().find(|c| c.credential.id == selected)
    {
        return Some(found);
    }
    if let Some(account) = account_id
        && let Some(found) = existing
            .iter()
            .find(|c| c.credential.provider_id.as_deref() == Some(account))
    {
        return Some(found);
    }
    let multiple = options
        .get("allowMultipleCredentials")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if multiple { None } else { existing.first() }
}

fn provider_data(new: &NewCredential) -> Map<String, Value> {
    let to_object = |values: &BTreeMap<String, String>| {
        Value::Object(
            values
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let mut data = Map::new();
    if !new.inputs.is_empty() {
        data.insert("inputs".into(), to_object(&new.inputs));
    }
    if !new.callback.is_empty() {
        data.insert("callback".into(), to_object(&new.callback));
    }
    data
}

/// String values of `payload` under `keys`.
fn string_values(payload: &Map<String, Value>, keys: &[&str]) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|k| Some(((*k).to_owned(), payload.get(*k)?.as_str()?.to_owned())))
        .collect()
}

/// Credentials typed in by the user: every declared credential input is required.
fn typed_in(
    configured: &ConfiguredIntegration,
    request: &CredentialRequest,
) -> ServiceResult<NewCredential> {
    let spec = &configured.spec;
    let mut values = BTreeMap::new();
    for key in spec.credential_input_keys() {
        let value = request
            .payload
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ServiceError::InvalidInput(format!("payload.{key} is required (a string)"))
            })?;
        if value.chars().count() > MAX_INPUT_CHARS || value.chars().any(char::is_control) {
            return Err(ServiceError::InvalidInput(format!(
                "payload.{key} must be at most {MAX_INPUT_CHARS} characters, without control characters"
            )));
        }
        values.insert(key.to_owned(), value.to_owned());
    }
    let inputs = string_values(&request.payload, &spec.user_inputs_keys());
    for input in &spec.user_inputs {
        let value = inputs.get(&input.key).ok_or_else(|| {
            ServiceError::InvalidInput(format!("payload.{} is required", input.key))
        })?;
        if let Some(pattern) = &input.pattern
            && !pattern.is_match(value)
        {
            return Err(ServiceError::InvalidInput(format!(
                "payload.{} must match `{pattern}`",
                input.key
            )));
        }
    }
    Ok(NewCredential {
        secrets: CredentialSecrets::Inputs { values },
        inputs,
        callback: BTreeMap::new(),
        options: request.options.clone(),
    })
}
