//! Proxy overhead: `GET /sdk/proxy/{integration}/me` through Plugboard next to the same
//! call made straight to the (fake) provider, in the same run, at 1 and at N connections.
//!
//! cargo run --release -p plugboard-bench --bin proxy -- [--seconds 10] [--connections 16]

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use plugboard::config::{Config, Secret};
use plugboard::{Server, open_store};
use plugboard_bench::{LoadReport, run_load};
use plugboard_connect::credentials::CredentialSecrets;
use plugboard_core::UserId;
use plugboard_sandbox::{Sandbox, SandboxConfig};
use plugboard_service::connect::BeginConnect;
use plugboard_service::integrations::IntegrationSettings;
use plugboard_store::Store;
use tokio::net::TcpListener;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sandbox = Sandbox::new(SandboxConfig {
        auto_approve: true,
        ..SandboxConfig::default()
    });
    let provider = sandbox.serve_on_loopback().await?;

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = open_store(&url).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let config = Config {
        database_url: url,
        public_url: format!("http://{}", listener.local_addr()?),
        admin_token: Some(Secret::new("bench-admin-token-0123456789")),
        allow_loopback_providers: true,
        ..Config::default()
    };
    let server = Server::start(&config, store, listener).await?;
    let services = &server.services;
    let created = services.projects.create("bench", None).await?;
    let project = created.project.id;
    let user = UserId::parse("bench-user")?;
    services
        .users
        .put(project, &user, serde_json::json!({}))
        .await?;
    let base = format!("http://{provider}");
    let definition = serde_json::json!({
        "name": "Bench", "brand_color": "#000000", "category": "crm",
        "api_base_url": format!("{base}/api"),
        "auth": {
            "type": "oauth2",
            "authorization_url": format!("{base}/oauth/authorize"),
            "token_url": format!("{base}/oauth/token"),
            "token_endpoint_auth": "client_secret_post", "pkce": true, "refresh": true
        },
        "account_id": { "from_token": "account.id" }
    });
    services
        .integrations
        .configure(
            project,
            "custom.bench",
            IntegrationSettings {
                oauth_client_id: Some(plugboard_sandbox::DEFAULT_CLIENT_ID.into()),
                oauth_client_secret: Some(plugboard_sandbox::DEFAULT_CLIENT_SECRET.into()),
                definition: Some(definition),
                ..IntegrationSettings::default()
            },
        )
        .await?;
    let authorize = services
        .connect
        .begin_connect(
            project,
            &user,
            BeginConnect {
                integration: "custom.bench".into(),
                ..BeginConnect::default()
            },
        )
        .await?;
    // The provider approves at once and redirects to Plugboard's callback.
    reqwest::get(authorize.as_str()).await?.error_for_status()?;
    let usable = services
        .connect
        .usable(project, &user, "custom.bench", None)
        .await?;
    let CredentialSecrets::Tokens(tokens) = &usable.secrets else {
        anyhow::bail!("an OAuth connection holds tokens");
    };

    let pem = created.signing_key.private_pem.expect("generated");
    let kid = created.signing_key.record.id.to_string();
    let user_token = plugboard::dev::user_token(&pem, Some(&kid), project, "bench-user", 3600)?;
    let direct_auth = [("authorization", format!("Bearer {}", tokens.access_token))];
    let proxy_auth = [("authorization", format!("Bearer {user_token}"))];
    let proxy_path = format!("/projects/{project}/sdk/proxy/custom.bench/me");
    let warmup = Duration::from_secs(2);
    let duration = Duration::from_secs(args.seconds);

    println!(
        "GET /api/me on the fake provider, {} s per run",
        args.seconds
    );
    for connections in [1, args.connections] {
        let direct = run_load(
            provider,
            "/api/me",
            &direct_auth,
            connections,
            warmup,
            duration,
        )
        .await?;
        let proxied = run_load(
            server.addr,
            &proxy_path,
            &proxy_auth,
            connections,
            warmup,
            duration,
        )
        .await?;
        report(connections, &direct, &proxied);
        anyhow::ensure!(direct.errors == 0 && proxied.errors == 0, "requests failed");
    }
    server.stop().await?;
    Ok(())
}

fn report(connections: usize, direct: &LoadReport, proxied: &LoadReport) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{connections} connection(s):");
    println!("  direct to provider: {direct}");
    println!("  through the proxy:  {proxied}");
    println!(
        "  added latency: p50 {:+.3} ms, p99 {:+.3} ms; throughput ratio {:.2}",
        ms(proxied.p50) - ms(direct.p50),
        ms(proxied.p99) - ms(direct.p99),
        proxied.per_second() / direct.per_second()
    );
}
