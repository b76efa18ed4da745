//! Integrations a project turns on, and the credentials connected users hold for them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{ProjectId, UnixMillis, UserId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "integration keys are 1 to 64 characters of a-z, 0-9, `_`, `-` and `.` (custom ones start with `custom.`)"
)]
pub struct InvalidIntegrationKey;

/// The name an integration is known by: a catalog provider key (`salesforce`) or a
/// project's custom integration (`custom.<slug>`). The SDK calls it the integration type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IntegrationKey(String);

impl IntegrationKey {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidIntegrationKey> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
        if raw.is_empty() || raw.len() > Self::MAX_CHARS || !raw.chars().all(valid_char) {
            return Err(InvalidIntegrationKey);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_custom(&self) -> bool {
        self.0.starts_with("custom.")
    }
}

impl TryFrom<String> for IntegrationKey {
    type Error = InvalidIntegrationKey;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<IntegrationKey> for String {
    fn from(key: IntegrationKey) -> Self {
        key.0
    }
}

impl fmt::Display for IntegrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An integration turned on for a project, with the project's own OAuth app.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectIntegration {
    /// The id the SDK uses (`integrationId`).
    pub id: Uuid,
    pub project_id: ProjectId,
    pub key: IntegrationKey,
    pub oauth_client_id: Option<String>,
    /// The OAuth client secret, sealed by the vault; never stored in clear.
    pub oauth_client_secret_sealed: Option<String>,
    /// Replaces the provider's default scopes when set.
    pub scopes: Option<Vec<String>>,
    pub active: bool,
    /// A custom integration's provider definition (JSON, the fields of a provider file);
    /// `None` for catalog providers.
    pub custom_spec: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// The health of a credential, in the SDK's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CredentialStatus {
    Valid,
    /// The provider refused it for good (e.g. `invalid_grant`); the user must reconnect.
    Invalid,
    /// Connected but not finished (post-connect options still to fill in).
    Pending,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::Invalid => "INVALID",
            Self::Pending => "PENDING",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "VALID" => Some(Self::Valid),
            "INVALID" => Some(Self::Invalid),
            "PENDING" => Some(Self::Pending),
            _ => None,
        }
    }
}

/// One connected account of a user for one integration. A user may hold several for the
/// same integration (multi-account).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub integration_id: Uuid,
    pub status: CredentialStatus,
    /// The account's id at the provider (Slack team id, Salesforce org id…).
    pub provider_id: Option<String>,
    /// Non-secret facts about the account (instance URL, subdomain…).
    pub provider_data: Map<String, Value>,
    /// Tokens and keys as one JSON document sealed by the vault.
    pub secrets_sealed: String,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<UnixMillis>,
    pub refresh_failure_count: i32,
    pub external_id: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub refreshed_at: Option<UnixMillis>,
    /// Bumped by every write; secret updates are conditional on it.
    pub version: i64,
}

/// Per-credential settings: which workflows are on and the user's settings for them.
/// Every credential has exactly one default configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialConfiguration {
    pub id: Uuid,
    pub credential_id: Uuid,
    pub is_default: bool,
    pub workflow_settings: Map<String, Value>,
    pub shared_settings: Map<String, Value>,
    pub external_id: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A credential with its configurations, as most readers want it.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialWithConfigurations {
    pub credential: Credential,
    pub configurations: Vec<CredentialConfiguration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_keys() {
        assert!(IntegrationKey::parse("salesforce").is_ok());
        assert!(
            IntegrationKey::parse("custom.my-app_2")
                .unwrap()
                .is_custom()
        );
        for bad in ["", "Salesforce", "sales force", "a/b", &"a".repeat(65)] {
            assert_eq!(
                IntegrationKey::parse(bad),
                Err(InvalidIntegrationKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_spelling() {
        for s in [
            CredentialStatus::Valid,
            CredentialStatus::Invalid,
            CredentialStatus::Pending,
        ] {
            assert_eq!(CredentialStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
        }
        assert_eq!(CredentialStatus::parse("valid"), None);
    }
}
