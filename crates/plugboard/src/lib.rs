//! The Plugboard server as a library: open the store named by the configuration, wire the
//! services and the HTTP API, and serve on an already-bound listener. The binary and the
//! test suite both start the server through [`Server::start`].

pub mod config;
pub mod dev;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use plugboard_api::{ApiSettings, AppState};
use plugboard_service::connect::ConnectSettings;
use plugboard_service::webhooks::WebhookSettings;
use plugboard_service::workflows::worker::WorkerSettings;
use plugboard_service::{ServiceSettings, Services};
use plugboard_store::{Store, StoreError};
use plugboard_store_postgres::PostgresStore;
use plugboard_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`) and applies
/// migrations.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path.split('?').next().unwrap_or(path));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        return Ok(Arc::new(SqliteStore::open_url(url).await?));
    }
    Ok(Arc::new(PostgresStore::connect(url).await?))
}

pub fn service_settings(config: &Config) -> ServiceSettings {
    ServiceSettings {
        metadata_limits: config.metadata,
        token_cache_capacity: config.token_cache_capacity,
        signing_key_cache_ttl: Duration::from_secs(config.signing_key_cache_ttl_secs),
        user_cache_ttl: config.user_cache_ttl(),
        master_key: config.master_key_bytes(),
        previous_master_keys: config.previous_master_key_bytes(),
        allow_loopback_providers: config.allow_loopback_providers || config.sandbox,
        connect: connect_settings(config),
        worker: WorkerSettings {
            lease: Duration::from_secs(config.workflows.lease_secs),
            per_user_limit: config.workflows.per_user_concurrency,
            allow_private_addresses: config.workflows.allow_private_addresses,
            ..WorkerSettings::default()
        },
        webhooks: webhook_settings(config),
        ..ServiceSettings::default()
    }
}

fn webhook_settings(config: &Config) -> WebhookSettings {
    let w = &config.webhooks;
    let defaults = WebhookSettings::default();
    let timeout = Duration::from_secs(w.timeout_secs);
    WebhookSettings {
        allow_loopback: w.allow_loopback,
        timeout,
        retry: plugboard_webhooks::RetryPolicy {
            max_attempts: w.max_attempts,
            base: Duration::from_millis(w.retry_base_ms),
            ..defaults.retry
        },
        disable_after_failures: w.disable_after_failures,
        // Longer than any attempt, so no two nodes send the same delivery at once.
        lease: defaults.lease.max(timeout * 2 + Duration::from_secs(10)),
        retention: Duration::from_secs(w.retention_days * 24 * 3600),
        ..defaults
    }
}

fn connect_settings(config: &Config) -> ConnectSettings {
    let c = &config.connect;
    let public_url = url::Url::parse(&config.public_url).expect("validated by Config::validate");
    ConnectSettings {
        refresh_margin: Duration::from_secs(c.refresh_margin_secs),
        provider_timeout: Duration::from_secs(c.provider_timeout_secs),
        proxy_max_response_bytes: c.proxy_max_response_bytes,
        session_ttl: Duration::from_secs(c.session_ttl_secs),
        link_ttl: Duration::from_secs(c.link_ttl_secs),
        message_grace: Duration::from_millis(c.message_grace_ms),
        ..ConnectSettings::new(public_url)
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub services: Services,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    flusher: JoinHandle<()>,
    worker: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves the API on `listener` over `store` until [`Server::stop`].
    pub async fn start(
        config: &Config,
        store: Arc<dyn Store>,
        listener: TcpListener,
    ) -> std::io::Result<Self> {
        let services = Services::new(store.clone(), service_settings(config));
        let api_settings = ApiSettings {
            body_limit_bytes: config.body_limit_bytes,
            admin_token: config.admin_token.as_ref().map(|t| t.expose().to_owned()),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            dashboard: plugboard_dashboard::DashboardSettings {
                session_ttl: Duration::from_secs(config.dashboard.session_ttl_secs),
                secure_cookies: config.public_url.starts_with("https://"),
                admin_token: None,
            },
        };
        let mut router = plugboard_api::router(AppState::new(services.clone(), api_settings));
        if config.sandbox {
            let sandbox =
                plugboard_sandbox::Sandbox::new(plugboard_sandbox::SandboxConfig::default());
            router = router.nest("/sandbox", sandbox.router());
        }
        let addr = listener.local_addr()?;
        let (shutdown, mut stopped) = watch::channel(false);
        let flusher = services.last_seen.clone().spawn_flusher(
            store,
            Duration::from_secs(config.last_seen_flush_secs),
            shutdown.subscribe(),
        );
        let worker = config
            .workflows
            .worker
            .then(|| services.worker.clone().spawn(shutdown.subscribe()));
        // Webhooks go out from the worker nodes.
        let dispatcher = config
            .workflows
            .worker
            .then(|| services.dispatcher.clone().spawn(shutdown.subscribe()));
        let scheduler = config.workflows.scheduler.then(|| {
            services.workflows.clone().spawn_scheduler(
                Duration::from_secs(1),
                Duration::from_secs(config.workflows.retention_days * 24 * 3600),
                Duration::from_secs(config.webhooks.retention_days * 24 * 3600),
                shutdown.subscribe(),
            )
        });
        let http = tokio::spawn(plugboard_api::serve(listener, router, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Ok(Self {
            addr,
            services,
            shutdown,
            http,
            flusher,
            worker,
            dispatcher,
            scheduler,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets in-flight requests finish, flushes `lastSeen`.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.http.await.map_err(std::io::Error::other)?;
        let _ = self.flusher.await;
        for task in [self.worker, self.dispatcher, self.scheduler]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        served
    }
}
