//! The OAuth round trip: start (authorization URL + session), the provider's redirect
//! back (code exchange, credential stored), and the SDK's polling of the outcome. Also
//! one-time connect links, which start the same round trip for apps without the SDK.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_connect::ProviderSpec;
use plugboard_connect::catalog::{AccountIdSpec, AuthSpec, TemplateValues, UserInput};
use plugboard_connect::credentials::CredentialSecrets;
use plugboard_connect::oauth::{AuthorizationRequest, OAuthApp, Pkce, TokenSet};
use plugboard_core::{
    ConnectLink, ConnectReport, ConnectSession, ConnectSessionStatus, CredentialWithConfigurations,
    ProjectId, UnixMillis, UserId, now_millis,
};
use plugboard_store::ConnectOutcome;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use super::manage::NewCredential;
use super::{ConnectError, ConnectService, internal};
use crate::error::{ServiceError, ServiceResult};
use crate::integrations::ConfiguredIntegration;

/// Longest SDK session id accepted (the SDK sends up to 13 base-36 characters).
const MAX_CLIENT_SESSION_ID: usize = 64;

/// Longest value of one provider user input (a subdomain, a shop name) on a connect link.
pub const MAX_INPUT_CHARS: usize = 255;

/// A request to start connecting an account.
#[derive(Debug, Clone, Default)]
pub struct BeginConnect {
    /// The integration's key (`salesforce`, `custom.x`) or its id.
    pub integration: String,
    /// The SDK's id for the attempt (`oauthMetaKeyId`), for polling.
    pub client_session_id: Option<String>,
    /// The origin of the page that opened the popup, to post the outcome to.
    pub origin: Option<String>,
    /// Values the user typed before connecting (`endUserSuppliedValues`).
    pub inputs: BTreeMap<String, String>,
    /// The SDK's install options (`allowMultipleCredentials`, `externalId`…).
    pub options: Map<String, Value>,
}

/// What the SDK learns when it polls an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    /// Unknown, or not finished yet.
    Pending,
    Connected {
        credential_id: Uuid,
    },
    /// Connected, and the SDK already learnt it from the callback page's message.
    AlreadyReported,
    Failed {
        code: String,
        message: String,
    },
}

/// The end of a provider redirect: the attempt it belonged to (when the state was
/// genuine) and how it went.
#[derive(Debug)]
pub struct CallbackOutcome {
    pub session: Option<ConnectSession>,
    pub result: ServiceResult<CredentialWithConfigurations>,
}

/// What the session keeps sealed until the provider answers.
#[derive(Serialize, Deserialize)]
struct SessionSecrets {
    #[serde(default)]
    verifier: Option<String>,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

fn session_context(session: Uuid) -> Vec<u8> {
    format!("connect-session/{session}").into_bytes()
}

impl ConnectService {
    /// Starts an OAuth round trip; returns the provider URL to send the user to.
    pub async fn begin_connect(
        &self,
        project: ProjectId,
        user: &UserId,
        request: BeginConnect,
    ) -> ServiceResult<Url> {
        let configured = self.resolve(project, &request.integration).await?;
        self.check_entitlement(project, user, &request.integration)
            .await?;
        if request
            .client_session_id
            .as_ref()
            .is_some_and(|sid| sid.is_empty() || sid.len() > MAX_CLIENT_SESSION_ID)
        {
            return Err(ServiceError::InvalidInput(format!(
                "oauthMetaKeyId must be 1 to {MAX_CLIENT_SESSION_ID} characters"
            )));
        }
        let (session, verifier) = self.new_session(project, user, &configured, &request)?;
        self.store.insert_connect_session(&session).await?;
        let client_id = configured
            .integration
            .oauth_client_id
            .as_deref()
            .unwrap_or_default();
        let scopes = scopes_of(&configured);
        let state = self.state_key.sign(session.id);
        let challenge = verifier.as_ref().map(|v| Pkce::challenge_for(v));
        let url = configured
            .spec
            .authorization_url(
                OAuthApp {
                    client_id,
                    client_secret: None,
                },
                AuthorizationRequest {
                    redirect_uri: &self.settings.callback_url(),
                    state: &state,
                    scopes: &scopes,
                    pkce_challenge: challenge.as_deref(),
                    inputs: &request.inputs,
                },
            )
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        Ok(url)
    }

    /// The integration named by key or id; it must be active and use OAuth redirects.
    async fn resolve(
        &self,
        project: ProjectId,
        integration: &str,
    ) -> ServiceResult<ConfiguredIntegration> {
        let by_id = match Uuid::try_parse(integration) {
            Ok(id) => self.integrations.find_by_id(project, id).await?,
            Err(_) => None,
        };
        let configured = match by_id {
            Some(found) => found,
            None => self.active_integration(project, integration).await?,
        };
        if !configured.integration.active {
            return Err(ServiceError::IntegrationInactive(
                configured.integration.key.to_string(),
            ));
        }
        if !matches!(configured.spec.auth, AuthSpec::Oauth2(_)) {
            return Err(ServiceError::WrongAuthKind(format!(
                "{} is connected with {} credentials, not an OAuth redirect: send them to POST /sdk/credentials",
                configured.spec.name,
                configured.spec.auth.type_name()
            )));
        }
        Ok(configured)
    }

    fn new_session(
        &self,
        project: ProjectId,
        user: &UserId,
        configured: &ConfiguredIntegration,
        request: &BeginConnect,
    ) -> ServiceResult<(ConnectSession, Option<String>)> {
        let uses_pkce = matches!(&configured.spec.auth, AuthSpec::Oauth2(o) if o.pkce);
        let verifier = uses_pkce.then(|| Pkce::generate().verifier);
        let id = Uuid::new_v4();
        let secrets = SessionSecrets {
            verifier: verifier.clone(),
            inputs: request.inputs.clone(),
        };
        let sealed = self
            .vault
            .seal(
                &serde_json::to_vec(&secrets).map_err(internal)?,
                &session_context(id),
            )
            .map_err(internal)?;
        let now = now_millis();
        let session = ConnectSession {
            id,
            project_id: project,
            user_id: user.clone(),
            integration_id: configured.integration.id,
            client_session_id: request.client_session_id.clone(),
            secrets_sealed: sealed,
            origin: request.origin.clone(),
            options: request.options.clone(),
            status: ConnectSessionStatus::Pending,
            credential_id: None,
            error_code: None,
            error_message: None,
            created_at: now,
            expires_at: now + self.settings.session_ttl.as_millis() as UnixMillis,
            consumed_at: None,
            finished_at: None,
            reported_by: None,
        };
        Ok((session, verifier))
    }

    /// Handles the provider's redirect back to `/oauth/callback`.
    pub async fn handle_callback(&self, params: &BTreeMap<String, String>) -> CallbackOutcome {
        let Some(session_id) = params.get("state").and_then(|s| self.state_key.verify(s)) else {
            return CallbackOutcome {
                session: None,
                result: Err(ConnectError::InvalidState.into()),
            };
        };
        let session = match self
            .store
            .consume_connect_session(session_id, now_millis())
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => {
                return CallbackOutcome {
                    session: None,
                    result: Err(ConnectError::InvalidState.into()),
                };
            }
            Err(e) => {
                return CallbackOutcome {
                    session: None,
                    result: Err(e.into()),
                };
            }
        };
        let result = self.finish_round_trip(&session, params).await;
        let outcome = match &result {
            Ok(credential) => ConnectOutcome::Succeeded {
                credential_id: credential.credential.id,
            },
            Err(e) => ConnectOutcome::Failed {
                code: match e {
                    ServiceError::Connect(c) => c.code(),
                    _ => "connect_failed",
                }
                .to_owned(),
                message: e.to_string(),
            },
        };
        if let Err(e) = self
            .store
            .finish_connect_session(session.id, &outcome, now_millis())
            .await
        {
            tracing::error!(session = %session.id, error = %e, "could not record the connect outcome");
        }
        match &result {
            Ok(c) => {
                tracing::info!(session = %session.id, credential = %c.credential.id, "account connected")
            }
            Err(e) => tracing::info!(session = %session.id, error = %e, "connect failed"),
        }
        CallbackOutcome {
            session: Some(session),
            result,
        }
    }

    async fn finish_round_trip(
        &self,
        session: &ConnectSession,
        params: &BTreeMap<String, String>,
    ) -> ServiceResult<CredentialWithConfigurations> {
        if let Some(error) = params.get("error") {
            let description = params
                .get("error_description")
                .map(|d| d.chars().take(300).collect::<String>())
                .unwrap_or_else(|| error.clone());
            return Err(ConnectError::Denied(description).into());
        }
        let code = params
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ConnectError::Denied("the provider sent no code".into()))?;
        let configured = self
            .integrations
            .find_by_id(session.project_id, session.integration_id)
            .await?
            .ok_or_else(|| ServiceError::IntegrationNotFound(session.integration_id.to_string()))?;
        let opened = self
            .vault
            .open(&session.secrets_sealed, &session_context(session.id))
            .map_err(internal)?;
        let secrets: SessionSecrets =
            serde_json::from_slice(opened.as_bytes()).map_err(internal)?;
        let client_secret = self.integrations.client_secret(&configured)?;
        let app = OAuthApp {
            client_id: configured
                .integration
                .oauth_client_id
                .as_deref()
                .unwrap_or_default(),
            client_secret: client_secret.as_deref(),
        };
        let tokens = self
            .client
            .exchange_code(
                &configured.spec,
                app,
                code,
                &self.settings.callback_url(),
                secrets.verifier.as_deref(),
                &secrets.inputs,
            )
            .await
            .map_err(ConnectError::ExchangeFailed)?;
        let callback: BTreeMap<String, String> = params
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "code" | "state" | "scope"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let new = NewCredential {
            secrets: CredentialSecrets::Tokens(tokens),
            inputs: secrets.inputs,
            callback,
            options: session.options.clone(),
        };
        self.store_credential(session.project_id, &session.user_id, &configured, new)
            .await
    }

    /// The outcome of the user's attempt with this SDK session id, as the SDK's polling
    /// learns it. A success is reported by one channel only (the SDK 2.4.0 fires
    /// `onIntegrationInstall` for each): when the callback page posted its message, the
    /// poll waits up to `message_grace` for the SDK to confirm it, and after a
    /// confirmation answers [`SessionState::AlreadyReported`].
    pub async fn session_state(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> ServiceResult<SessionState> {
        let found = self
            .store
            .find_connect_session(project, user, client_session_id)
            .await?;
        let Some(session) = found else {
            return Ok(SessionState::Pending);
        };
        match (session.status, session.credential_id) {
            (ConnectSessionStatus::Succeeded, Some(credential_id)) => {
                self.report_by_poll(&session, credential_id).await
            }
            (ConnectSessionStatus::Failed, _) => Ok(SessionState::Failed {
                code: session.error_code.unwrap_or_default(),
                message: session.error_message.unwrap_or_default(),
            }),
            _ => Ok(SessionState::Pending),
        }
    }

    async fn report_by_poll(
        &self,
        session: &ConnectSession,
        credential_id: Uuid,
    ) -> ServiceResult<SessionState> {
        let message_may_come = session.origin.is_some()
            && session.reported_by.is_none()
            && now_millis()
                < session.finished_at.unwrap_or_default()
                    + self.settings.message_grace.as_millis() as UnixMillis;
        if message_may_come {
            return Ok(SessionState::Pending);
        }
        let holds = self
            .store
            .claim_connect_report(session.id, credential_id, ConnectReport::Poll)
            .await?;
        Ok(match holds {
            Some(ConnectReport::Message) => SessionState::AlreadyReported,
            _ => SessionState::Connected { credential_id },
        })
    }

    /// The SDK confirmed the callback page's message for attempt `session`: polling
    /// will not report it again.
    pub(crate) async fn report_by_message(&self, session: Uuid, credential: Uuid) {
        if let Err(e) = self
            .store
            .claim_connect_report(session, credential, ConnectReport::Message)
            .await
        {
            tracing::warn!(%session, error = %e, "could not record how the connect outcome was reported");
        }
    }

    /// Forgets the user's attempts with this SDK session id.
    pub async fn forget_session(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> ServiceResult<()> {
        self.store
            .delete_connect_sessions(project, user, client_session_id)
            .await?;
        Ok(())
    }

    /// Creates a one-time link that connects `integration` for `user`, with the
    /// provider's user inputs the app already knows (each checked now; the link's page
    /// asks for the others). Returns the URL and when it expires.
    pub async fn create_link(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
        return_url: Option<Url>,
        inputs: BTreeMap<String, String>,
    ) -> ServiceResult<(String, UnixMillis)> {
        let configured = self.resolve(project, integration).await?;
        self.check_entitlement(project, user, integration).await?;
        if let Some(url) = &return_url
            && !matches!(url.scheme(), "https" | "http")
        {
            return Err(ServiceError::InvalidInput(
                "returnUrl must be an http(s) URL".into(),
            ));
        }
        check_inputs(&configured.spec, &inputs, false)?;
        let mut token = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut token);
        let token = URL_SAFE_NO_PAD.encode(token);
        let now = now_millis();
        let link = ConnectLink {
            token_hash: link_hash(&token),
            project_id: project,
            user_id: user.clone(),
            integration_id: configured.integration.id,
            return_url: return_url.map(String::from),
            inputs,
            created_at: now,
            expires_at: now + self.settings.link_ttl.as_millis() as UnixMillis,
            used_at: None,
        };
        self.store
            .insert_connect_link(&link)
            .await
            .map_err(|e| match e {
                plugboard_store::StoreError::NotFound => ServiceError::UserNotFound,
                other => other.into(),
            })?;
        let base = self.settings.public_url.as_str().trim_end_matches('/');
        Ok((format!("{base}/connect/{token}"), link.expires_at))
    }

    /// What a connect link's page shows. Looking spends nothing: link scanners in mail
    /// and chat clients open links before the user does.
    pub async fn link_page(&self, token: &str) -> ServiceResult<LinkPage> {
        let (link, configured) = self.live_link(token).await?;
        let missing_inputs = configured
            .spec
            .user_inputs
            .iter()
            .filter(|input| !link.inputs.contains_key(&input.key))
            .cloned()
            .collect();
        Ok(LinkPage {
            integration_name: configured.spec.name.clone(),
            brand_color: configured.spec.brand_color.clone(),
            missing_inputs,
            form_token: self.state_key.link_form_token(&link.token_hash),
        })
    }

    /// Uses a connect link, on the user's confirmation from its page (`form_token`
    /// proves the request came from that page; `typed` holds the inputs it asked for):
    /// starts the OAuth round trip the link stands for and returns the provider URL. A
    /// link works once; a refused confirmation (bad input, plan) leaves it usable.
    pub async fn open_link(
        &self,
        token: &str,
        form_token: &str,
        typed: &BTreeMap<String, String>,
    ) -> ServiceResult<Url> {
        let (link, configured) = self.live_link(token).await?;
        if !self
            .state_key
            .verify_link_form_token(&link.token_hash, form_token)
        {
            return Err(ConnectError::LinkFormMismatch.into());
        }
        let mut inputs = link.inputs.clone();
        for input in &configured.spec.user_inputs {
            if let Some(value) = typed.get(&input.key)
                && !inputs.contains_key(&input.key)
            {
                inputs.insert(input.key.clone(), value.trim().to_owned());
            }
        }
        check_inputs(&configured.spec, &inputs, true)?;
        // By key: entitlement rules name integrations by key, not by id.
        let integration = configured.integration.key.to_string();
        self.check_entitlement(link.project_id, &link.user_id, &integration)
            .await?;
        let link = self
            .store
            .consume_connect_link(&link.token_hash, now_millis())
            .await?
            .ok_or(ConnectError::InvalidLink)?;
        let mut options = Map::new();
        if let Some(url) = &link.return_url {
            options.insert("returnUrl".into(), Value::String(url.clone()));
        }
        let request = BeginConnect {
            integration,
            inputs,
            options,
            ..BeginConnect::default()
        };
        self.begin_connect(link.project_id, &link.user_id, request)
            .await
    }

    /// An unused, unexpired link and its (active, OAuth) integration.
    async fn live_link(&self, token: &str) -> ServiceResult<(ConnectLink, ConfiguredIntegration)> {
        let link = self
            .store
            .find_connect_link(&link_hash(token), now_millis())
            .await?
            .ok_or(ConnectError::InvalidLink)?;
        let configured = self
            .resolve(link.project_id, &link.integration_id.to_string())
            .await?;
        Ok((link, configured))
    }
}

/// What a connect link's page shows before the user confirms.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub integration_name: String,
    pub brand_color: String,
    /// The provider's inputs not given when the link was created: the page asks for them.
    pub missing_inputs: Vec<UserInput>,
    /// Goes in the page's form; the confirmation must bring it back.
    pub form_token: String,
}

/// Checks user inputs against the provider's declarations: each must be declared, not
/// empty, at most [`MAX_INPUT_CHARS`] characters and match its pattern; with
/// `complete`, every declared input must be there. Errors name the field.
fn check_inputs(
    spec: &ProviderSpec,
    inputs: &BTreeMap<String, String>,
    complete: bool,
) -> ServiceResult<()> {
    let invalid = |message: String| Err(ServiceError::InvalidInput(message));
    for (key, value) in inputs {
        let Some(declared) = spec.user_input(key) else {
            let known = spec.user_inputs_keys();
            return invalid(if known.is_empty() {
                format!("inputs.{key}: {} takes no inputs", spec.name)
            } else {
                format!(
                    "inputs.{key}: {} has no such input (it takes: {})",
                    spec.name,
                    known.join(", ")
                )
            });
        };
        if value.is_empty() {
            return invalid(format!(
                "inputs.{key} ({}) must not be empty",
                declared.label
            ));
        }
        if value.chars().count() > MAX_INPUT_CHARS {
            return invalid(format!(
                "inputs.{key} ({}) is longer than {MAX_INPUT_CHARS} characters",
                declared.label
            ));
        }
        if let Some(pattern) = &declared.pattern
            && !pattern.is_match(value)
        {
            return invalid(format!(
                "inputs.{key} ({}) must match {pattern}",
                declared.label
            ));
        }
    }
    if complete
        && let Some(missing) = spec
            .user_inputs
            .iter()
            .find(|input| !inputs.contains_key(&input.key))
    {
        return invalid(format!(
            "inputs.{} ({}) is required",
            missing.key, missing.label
        ));
    }
    Ok(())
}

fn link_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The scopes to ask for: the project's override, else the provider's defaults.
fn scopes_of(configured: &ConfiguredIntegration) -> Vec<String> {
    if let Some(scopes) = &configured.integration.scopes {
        return scopes.clone();
    }
    match &configured.spec.auth {
        AuthSpec::Oauth2(o) => o.default_scopes.clone(),
        AuthSpec::Oauth2ClientCredentials(o) => o.default_scopes.clone(),
        _ => Vec::new(),
    }
}

pub(crate) fn client_credentials_scopes(configured: &ConfiguredIntegration) -> Vec<String> {
    scopes_of(configured)
}

/// The account id the provider gives for a new connection, when it is in the token
/// response or the redirect (identity requests are made by the caller).
pub(crate) fn account_id_without_request(
    spec: &ProviderSpec,
    tokens: Option<&TokenSet>,
    callback: &BTreeMap<String, String>,
) -> Option<String> {
    match &spec.account_id {
        AccountIdSpec::FromToken(path) => {
            tokens.and_then(|t| path.lookup_scalar(&t.fields_value()))
        }
        AccountIdSpec::FromCallback(param) => callback.get(param).cloned(),
        AccountIdSpec::Request(_) => None,
    }
}

/// The values an identity request's URL may use.
pub(crate) fn identity_values<'a>(
    inputs: &'a BTreeMap<String, String>,
    token_fields: Option<&'a Value>,
    callback: &'a BTreeMap<String, String>,
) -> TemplateValues<'a> {
    TemplateValues {
        inputs: Some(inputs),
        token: token_fields,
        callback: Some(callback),
        identity: None,
    }
}
