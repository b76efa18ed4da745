//! Connecting an account: the server-side record of one attempt (an OAuth round trip) and
//! the one-time links that start one for apps without the browser SDK.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{ProjectId, UnixMillis, UserId};

/// Where a connect attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectSessionStatus {
    /// Sent to the provider; no answer yet.
    Pending,
    /// The credential was stored (`credential_id`).
    Succeeded,
    /// It ended in an error (`error_code`, `error_message`).
    Failed,
}

impl ConnectSessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PENDING" => Some(Self::Pending),
            "SUCCEEDED" => Some(Self::Succeeded),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One attempt to connect an account through an OAuth redirect. The `state` sent to the
/// provider names it; it can be consumed once, before `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSession {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub integration_id: Uuid,
    /// The browser SDK's own id for the attempt, which it polls
    /// (`/sdk/actions/session-id/{sid}`).
    pub client_session_id: Option<String>,
    /// The PKCE verifier and the user's inputs, sealed by the vault.
    pub secrets_sealed: String,
    /// The page origin the result is posted to (`originForPostMessage`).
    pub origin: Option<String>,
    /// Install options from the SDK (`allowMultipleCredentials`, `externalId`…) and where
    /// to send the user afterwards.
    pub options: Map<String, Value>,
    pub status: ConnectSessionStatus,
    pub credential_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// Set when the provider's redirect came back with its state; a second use fails.
    pub consumed_at: Option<UnixMillis>,
    /// When the outcome was recorded.
    pub finished_at: Option<UnixMillis>,
    /// How the browser SDK learnt of the new credential, once it has: it must learn it
    /// one way only, or it reports the install twice.
    pub reported_by: Option<ConnectReport>,
}

/// The channel that told the browser SDK an OAuth round trip succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectReport {
    /// The callback page's message, confirmed by the SDK (`POST /sdk/credentials`).
    Message,
    /// The SDK's polling of its session id.
    Poll,
}

impl ConnectReport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Poll => "poll",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "message" => Some(Self::Message),
            "poll" => Some(Self::Poll),
            _ => None,
        }
    }
}

/// A one-time URL a SaaS app hands its user to connect one integration. Only a hash of
/// its token is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectLink {
    pub token_hash: String,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub integration_id: Uuid,
    /// Where the user lands after connecting, if the app asked for it.
    pub return_url: Option<String>,
    /// The provider's user inputs (`subdomain`…) the app gave when creating the link;
    /// the link's page asks for the others. Not secret: they end up in provider URLs.
    pub inputs: BTreeMap<String, String>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
}

/// A value sealed by the vault, as listed for re-encryption under a new master key.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedRow {
    /// The credential or project integration it belongs to.
    pub id: Uuid,
    pub project_id: ProjectId,
    /// The integration key, for project integrations' client secrets.
    pub key: Option<String>,
    pub sealed: String,
}

/// Which sealed column [`SealedRow`]s come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `credentials.secrets_sealed`.
    CredentialSecrets,
    /// `project_integrations.oauth_client_secret_sealed`.
    IntegrationClientSecret,
    /// `project_env.sealed`.
    ProjectEnv,
    /// `webhook_endpoints.secret_sealed` (rows are endpoints).
    WebhookSecret,
    /// `webhook_endpoints.previous_secret_sealed`, where a rotation left one.
    WebhookPreviousSecret,
    /// `users.secrets_sealed`. Users have no UUID: each row's id is its `seq` as a UUID
    /// ([`SealedRow::user_seq_id`]) and its `key` the user id.
    UserSecrets,
}

impl SealedRow {
    /// The id a user row is listed under: its `seq` in the low 64 bits, so ids order as
    /// `seq` does.
    pub fn user_seq_id(seq: i64) -> Uuid {
        Uuid::from_u64_pair(0, seq as u64)
    }

    /// The `seq` of [`SealedRow::user_seq_id`].
    pub fn user_seq(id: Uuid) -> i64 {
        id.as_u64_pair().1 as i64
    }
}
