//! What a connection's sealed secrets hold, and how they authenticate API requests.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::catalog::{AuthSpec, ProviderSpec, RenderError, TemplateValues};
use crate::oauth::TokenSet;

/// The secret part of a connection, stored as one JSON document sealed by the vault.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialSecrets {
    /// Tokens from an authorization code or client credentials grant.
    Tokens(TokenSet),
    /// The values the user typed in (API key, username and password…).
    Inputs { values: BTreeMap<String, String> },
}

impl fmt::Debug for CredentialSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokens(tokens) => f.debug_tuple("Tokens").field(tokens).finish(),
            Self::Inputs { values } => f
                .debug_struct("Inputs")
                .field("keys", &values.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("the stored secrets do not match the integration's kind of authentication")]
    WrongKind,
    #[error("`{0}` is required")]
    MissingInput(String),
    #[error("a value cannot be sent in an HTTP header")]
    BadHeaderValue,
    #[error("`{path}` is not a path under the integration's API")]
    BadPath { path: String },
    #[error(transparent)]
    Url(#[from] RenderError),
}

impl CredentialSecrets {
    pub fn tokens(&self) -> Option<&TokenSet> {
        match self {
            Self::Tokens(tokens) => Some(tokens),
            Self::Inputs { .. } => None,
        }
    }

    /// Every secret string this document holds, so they can be scrubbed from text that
    /// leaves the server.
    pub fn secret_strings(&self) -> Vec<&str> {
        match self {
            Self::Tokens(t) => [Some(t.access_token.as_str()), t.refresh_token.as_deref()]
                .into_iter()
                .flatten()
                .collect(),
            Self::Inputs { values } => values.values().map(String::as_str).collect(),
        }
    }
}

impl ProviderSpec {
    /// The header that authenticates an API request made with these secrets.
    pub fn auth_header(
        &self,
        secrets: &CredentialSecrets,
    ) -> Result<(HeaderName, HeaderValue), CredentialError> {
        let header = |name: HeaderName, value: String| {
            let mut value =
                HeaderValue::from_str(&value).map_err(|_| CredentialError::BadHeaderValue)?;
            value.set_sensitive(true);
            Ok((name, value))
        };
        match (&self.auth, secrets) {
            (
                AuthSpec::Oauth2(_) | AuthSpec::Oauth2ClientCredentials(_),
                CredentialSecrets::Tokens(t),
            ) => header(AUTHORIZATION, format!("Bearer {}", t.access_token)),
            (AuthSpec::ApiKey(spec), CredentialSecrets::Inputs { values }) => {
                let input = spec
                    .key_input()
                    .ok_or_else(|| CredentialError::MissingInput("key".into()))?;
                let key = values
                    .get(&input.key)
                    .ok_or_else(|| CredentialError::MissingInput(input.key.clone()))?;
                let name = HeaderName::from_bytes(spec.header.as_bytes())
                    .map_err(|_| CredentialError::BadHeaderValue)?;
                header(name, format!("{}{key}", spec.prefix))
            }
            (AuthSpec::Basic(spec), CredentialSecrets::Inputs { values }) => {
                let user = values
                    .get(&spec.username_input)
                    .ok_or_else(|| CredentialError::MissingInput(spec.username_input.clone()))?;
                let password = spec
                    .password_input
                    .as_ref()
                    .and_then(|key| values.get(key))
                    .map(String::as_str)
                    .unwrap_or_default();
                let encoded = STANDARD.encode(format!("{user}:{password}"));
                header(AUTHORIZATION, format!("Basic {encoded}"))
            }
            _ => Err(CredentialError::WrongKind),
        }
    }

    /// The inputs a user must type to connect an API-key or Basic integration.
    pub fn credential_input_keys(&self) -> Vec<&str> {
        match &self.auth {
            AuthSpec::ApiKey(spec) => spec.inputs.iter().map(|i| i.key.as_str()).collect(),
            AuthSpec::Basic(spec) => spec.inputs.iter().map(|i| i.key.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The full URL of an API request: `path` (with its query) under the rendered
    /// `api_base_url`. The result must stay on the base URL's origin and under its path,
    /// so a crafted path cannot send the user's credential elsewhere.
    pub fn api_url(
        &self,
        path_and_query: &str,
        inputs: &BTreeMap<String, String>,
        token_fields: Option<&Value>,
    ) -> Result<Url, CredentialError> {
        let base = self.render_url_with(
            &self.api_base_url,
            &TemplateValues {
                inputs: Some(inputs),
                token: token_fields,
                ..TemplateValues::default()
            },
        )?;
        let bad = || CredentialError::BadPath {
            path: path_and_query.chars().take(200).collect(),
        };
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return Err(bad());
        }
        let joined = format!("{}{path_and_query}", base.as_str().trim_end_matches('/'));
        let url = Url::parse(&joined).map_err(|_| bad())?;
        let base_path = base.path().trim_end_matches('/');
        let same_origin = url.origin() == base.origin();
        let under_base = url.path() == base_path
            || url.path().starts_with(&format!("{base_path}/"))
            || base_path.is_empty();
        if !same_origin || !under_base {
            return Err(bad());
        }
        Ok(url)
    }
}
