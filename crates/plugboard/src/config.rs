//! Server configuration: compiled-in defaults, then an optional TOML file (`--config`),
//! then `PLUGBOARD_*` environment variables (nested keys with `__`, e.g.
//! `PLUGBOARD_METADATA__MAX_BYTES`). Validated once at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use plugboard_core::MetadataLimits;
use serde::{Deserialize, Serialize};

/// A secret setting: never printed by `Debug`.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every server setting, with its default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (embedded, one node) or `postgres://…` (one or many nodes).
    pub database_url: String,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The URL users and providers reach this server at (used in links and OAuth callbacks).
    pub public_url: String,
    /// 32 bytes, base64: the key credentials are encrypted under. Required by `serve`.
    pub master_key: Option<Secret>,
    /// Bearer token that may create projects (`POST /api/v1/projects`); unset disables it.
    pub admin_token: Option<Secret>,
    pub log_format: LogFormat,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408, in seconds.
    pub request_timeout_secs: u64,
    /// Bounds on each user's metadata.
    pub metadata: MetadataLimits,
    /// How often in-memory `lastSeen` times are written to the database, in seconds.
    pub last_seen_flush_secs: u64,
    /// How many verified user tokens are cached.
    pub token_cache_capacity: u64,
    /// How long a project's signing keys are cached, in seconds (bounds how long a key
    /// revoked on another node keeps verifying).
    pub signing_key_cache_ttl_secs: u64,
    /// How long SDK calls may use a user cached in memory, in milliseconds; 0 disables
    /// the cache. Unset: 60 000 on SQLite (one node, every write goes through it), off on
    /// PostgreSQL (other nodes' writes would show only after this long).
    pub user_cache_ttl_ms: Option<u64>,
    /// Master keys used before the current one (base64, like `master_key`): values sealed
    /// under them still open, and `plugboard keys rotate` re-seals them to the current key.
    pub previous_master_keys: Vec<Secret>,
    /// Connecting accounts and calling providers.
    pub connect: ConnectConfig,
    /// Lets custom integrations use `http://` URLs on loopback. For tests and local
    /// development only: it would let a project aim the proxy at this machine.
    pub allow_loopback_providers: bool,
    /// Serves the development-only OAuth provider under `/sandbox` (`plugboard dev` turns
    /// it on).
    pub sandbox: bool,
    /// Running workflows.
    pub workflows: WorkflowsConfig,
    /// The dashboard at `/dashboard`.
    pub dashboard: DashboardConfig,
    /// Lifecycle webhooks to the SaaS app.
    pub webhooks: WebhooksConfig,
}

/// Settings of lifecycle webhooks. They are sent by the nodes that run workflows
/// (`workflows.worker`); events are purged by the scheduler role.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Lets endpoints be `http://` URLs on loopback. For tests and local development only.
    pub allow_loopback: bool,
    /// Time allowed for one delivery attempt, response included, in seconds.
    pub timeout_secs: u64,
    /// Attempts per delivery, the first one included.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, in milliseconds; it doubles after each
    /// further one (with jitter, at most an hour), or follows a longer `Retry-After`.
    pub retry_base_ms: u64,
    /// An endpoint is disabled after this many failed attempts in a row; 0 never.
    pub disable_after_failures: u32,
    /// Events and their delivery logs are deleted this many days after they happened.
    pub retention_days: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            timeout_secs: 10,
            max_attempts: 8,
            retry_base_ms: 5_000,
            disable_after_failures: 20,
            retention_days: 14,
        }
    }
}

/// Settings of the dashboard.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// How long a dashboard login lasts, in seconds (at least 60).
    pub session_ttl_secs: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// Settings of the workflow worker.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    /// Whether this node runs workflow executions (a worker). Turn off on API-only nodes.
    pub worker: bool,
    /// Whether this node runs schedule triggers. Several schedulers may run: each tick
    /// still runs once.
    pub scheduler: bool,
    /// Executions of one user running at once, across all workers.
    pub per_user_concurrency: u32,
    /// How long a worker's claim lasts without a heartbeat, in seconds; a crashed
    /// worker's executions are resumed after this.
    pub lease_secs: u64,
    /// Lets `http` steps call private, loopback and link-local addresses.
    pub allow_private_addresses: bool,
    /// Finished executions are deleted this many days after they ended.
    pub retention_days: u64,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        Self {
            worker: true,
            scheduler: true,
            per_user_concurrency: 4,
            lease_secs: 30,
            allow_private_addresses: false,
            retention_days: 30,
        }
    }
}

/// Settings of connecting accounts and of calls to providers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectConfig {
    /// Tokens expiring within this many seconds are refreshed before use.
    pub refresh_margin_secs: u64,
    /// Time allowed for each request to a provider, in seconds.
    pub provider_timeout_secs: u64,
    /// Largest provider answer the proxy relays, in bytes.
    pub proxy_max_response_bytes: usize,
    /// How long a user has to finish an OAuth round trip, in seconds.
    pub session_ttl_secs: u64,
    /// How long a connect link stays usable, in seconds.
    pub link_ttl_secs: u64,
    /// How long the SDK's polling leaves the OAuth callback page's message to report a
    /// new connection first, in milliseconds (each is reported one way only).
    pub message_grace_ms: u64,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            refresh_margin_secs: 300,
            provider_timeout_secs: 30,
            proxy_max_response_bytes: 10 * 1024 * 1024,
            session_ttl_secs: 600,
            link_ttl_secs: 7 * 24 * 3600,
            message_grace_ms: 3000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://.plugboard/plugboard.db".into(),
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_url: "http://127.0.0.1:8080".into(),
            master_key: None,
            admin_token: None,
            log_format: LogFormat::Text,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            metadata: MetadataLimits::default(),
            last_seen_flush_secs: 5,
            token_cache_capacity: 100_000,
            signing_key_cache_ttl_secs: 5,
            user_cache_ttl_ms: None,
            previous_master_keys: Vec::new(),
            connect: ConnectConfig::default(),
            allow_loopback_providers: false,
            sandbox: false,
            workflows: WorkflowsConfig::default(),
            dashboard: DashboardConfig::default(),
            webhooks: WebhooksConfig::default(),
        }
    }
}

/// A configuration problem, naming the setting and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

/// Top-level keys read from the environment; other `PLUGBOARD_*` variables (such as the
/// test suite's) are not settings.
const ENV_KEYS: &[&str] = &[
    "database_url",
    "listen",
    "public_url",
    "master_key",
    "admin_token",
    "log_format",
    "body_limit_bytes",
    "request_timeout_secs",
    "metadata",
    "last_seen_flush_secs",
    "token_cache_capacity",
    "signing_key_cache_ttl_secs",
    "user_cache_ttl_ms",
    "previous_master_keys",
    "connect",
    "allow_loopback_providers",
    "sandbox",
    "workflows",
    "webhooks",
];

impl Config {
    /// Loads defaults ← `file` ← environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("{} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("PLUGBOARD_")
            .filter(|key| {
                let top = key.as_str().split("__").next().unwrap_or_default();
                ENV_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
            })
            .split("__");
        let config: Config = figment.merge(env).extract().map_err(|e| {
            let setting = e.path.join(".");
            invalid(
                if setting.is_empty() {
                    "config"
                } else {
                    &setting
                },
                e.kind.to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(invalid("public_url", "must be an http:// or https:// URL"));
        }
        if let Some(key) = &self.master_key {
            decode_master_key(key)?;
        }
        for key in &self.previous_master_keys {
            decode_master_key(key).map_err(|e| invalid("previous_master_keys", e.reason))?;
        }
        if url::Url::parse(&self.public_url).is_err() {
            return Err(invalid("public_url", "is not a valid URL"));
        }
        let c = &self.connect;
        if c.provider_timeout_secs == 0 || c.session_ttl_secs == 0 || c.link_ttl_secs == 0 {
            return Err(invalid(
                "connect",
                "timeouts and lifetimes must be at least 1 second",
            ));
        }
        if self.dashboard.session_ttl_secs < 60 {
            return Err(invalid("dashboard.session_ttl_secs", "must be at least 60"));
        }
        let w = &self.webhooks;
        if w.retention_days == 0 {
            return Err(invalid("webhooks.retention_days", "must be at least 1"));
        }
        if !(1..=300).contains(&w.timeout_secs) {
            return Err(invalid("webhooks.timeout_secs", "must be 1 to 300"));
        }
        if !(1..=50).contains(&w.max_attempts) {
            return Err(invalid("webhooks.max_attempts", "must be 1 to 50"));
        }
        if w.retry_base_ms == 0 {
            return Err(invalid("webhooks.retry_base_ms", "must be at least 1"));
        }
        if self.workflows.retention_days == 0 {
            return Err(invalid("workflows.retention_days", "must be at least 1"));
        }
        if self.workflows.per_user_concurrency == 0 || self.workflows.lease_secs < 3 {
            return Err(invalid(
                "workflows",
                "per_user_concurrency must be at least 1 and lease_secs at least 3",
            ));
        }
        if c.proxy_max_response_bytes < 1024 {
            return Err(invalid(
                "connect.proxy_max_response_bytes",
                "must be at least 1024",
            ));
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err(invalid("admin_token", "must be at least 16 characters"));
        }
        if self.body_limit_bytes < 1024 {
            return Err(invalid("body_limit_bytes", "must be at least 1024"));
        }
        if self.metadata.max_bytes > self.body_limit_bytes {
            return Err(invalid(
                "metadata.max_bytes",
                "must not exceed body_limit_bytes",
            ));
        }
        if self.metadata.max_depth == 0
            || self.metadata.max_key_chars == 0
            || self.metadata.max_top_level_keys == 0
        {
            return Err(invalid("metadata", "every limit must be at least 1"));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1"));
        }
        if self.last_seen_flush_secs == 0 {
            return Err(invalid("last_seen_flush_secs", "must be at least 1"));
        }
        Ok(())
    }

    /// The master key's bytes, when set (validated by [`Config::validate`]).
    pub fn master_key_bytes(&self) -> Option<[u8; 32]> {
        self.master_key
            .as_ref()
            .and_then(|key| decode_master_key(key).ok())
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The previous master keys' bytes (validated by [`Config::validate`]).
    pub fn previous_master_key_bytes(&self) -> Vec<[u8; 32]> {
        self.previous_master_keys
            .iter()
            .filter_map(|key| decode_master_key(key).ok())
            .collect()
    }

    /// The user cache's lifetime, resolving the backend-dependent default.
    pub fn user_cache_ttl(&self) -> Option<std::time::Duration> {
        let default = if self.is_sqlite() { 60_000 } else { 0 };
        match self.user_cache_ttl_ms.unwrap_or(default) {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }

    /// `serve` refuses to start without a master key, so credentials are never stored
    /// unencrypted.
    pub fn require_master_key(&self) -> Result<[u8; 32], ConfigError> {
        let key = self.master_key.as_ref().ok_or_else(|| {
            invalid(
                "master_key",
                "required: set PLUGBOARD_MASTER_KEY to 32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
            )
        })?;
        decode_master_key(key)
    }
}

fn decode_master_key(key: &Secret) -> Result<[u8; 32], ConfigError> {
    let bytes = STANDARD
        .decode(key.expose().trim())
        .map_err(|_| invalid("master_key", "must be base64"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        invalid(
            "master_key",
            format!("must be 32 bytes once decoded, not {}", b.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("database_url")
        );
        let c = Config {
            master_key: Some(Secret::new("c2hvcnQ=")),
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("master_key") && e.contains("32 bytes"), "{e}");
        assert!(Config::default().require_master_key().is_err());
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }

    #[test]
    fn toml_file_is_read_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugboard.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\n[metadata]\nmax_depth = 4\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.metadata.max_depth, 4);
        assert_eq!(c.metadata.max_bytes, 64 * 1024);
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
    }
}
