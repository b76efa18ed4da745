use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use plugboard::config::{Config, LogFormat, Secret};
use plugboard::dev::{self, DevPaths};
use plugboard::{Server, open_store, service_settings};
use plugboard_core::ProjectId;
use plugboard_service::Services;
use tokio::net::TcpListener;

/// Plugboard: an embedded integration platform.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log as text or JSON lines (overrides the `log_format` setting).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run locally on SQLite under ./.plugboard with a ready demo project.
    Dev {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the dev database, keys and state live.
        #[arg(long, default_value = ".plugboard")]
        dir: PathBuf,
    },
    /// Run the server from a configuration file and PLUGBOARD_* variables.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// What this node does besides answering HTTP: `worker` runs workflow executions,
        /// `scheduler` runs schedule triggers, `api` neither, `all` both. Roles apart
        /// need PostgreSQL.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Manage workflows.
    Workflows {
        #[command(subcommand)]
        command: WorkflowsCommand,
    },
    /// Master key maintenance.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a user token signed with a project's private key.
    Token {
        /// The project id. Defaults to the dev project of `--dir`.
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// The private key (PEM). Defaults to the dev project's key in `--dir`.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The signing key id to put in the header (`kid`). Defaults to the dev
        /// project's when its key is used.
        #[arg(long)]
        kid: Option<String>,
        /// The folder `plugboard dev` keeps its state in.
        #[arg(long, default_value = ".plugboard")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Role {
    Api,
    Worker,
    Scheduler,
    All,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-encrypt every stored secret under the current `master_key`. Set the new key as
    /// `master_key` and the old one in `previous_master_keys` first; run again at will.
    Rotate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum WorkflowsCommand {
    /// Deploy every workflow file (`*.yaml`, `*.yml`, `*.json`) of a directory, each as a
    /// new version. All files are checked first: if one is invalid, none is deployed.
    Deploy {
        dir: PathBuf,
        #[arg(long)]
        project: String,
        /// Check the files without deploying them.
        #[arg(long)]
        check: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project; prints its id, a secret key and where the private key was written.
    Create {
        #[arg(long)]
        name: String,
        /// Register this RSA public key (PEM) instead of generating a key pair.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Where to write a generated private key (default: ./<projectId>-signing-key.pem).
        #[arg(long)]
        key_out: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn load_config(path: Option<&Path>) -> Config {
    Config::load(path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { listen, dir } => {
            let mut config = load_config(None);
            init_logging(cli.log_format.unwrap_or(config.log_format));
            run_dev(&mut config, listen, DevPaths::new(dir)).await
        }
        Command::Serve { config, role } => {
            let mut config = load_config(config.as_deref());
            let (worker, scheduler) = match role {
                Role::Api => (false, false),
                Role::Worker => (true, false),
                Role::Scheduler => (false, true),
                Role::All => (true, true),
            };
            config.workflows.worker &= worker;
            config.workflows.scheduler &= scheduler;
            init_logging(cli.log_format.unwrap_or(config.log_format));
            if let Err(e) = config.require_master_key() {
                eprintln!("{e}");
                std::process::exit(2);
            }
            let store = open_store(&config.database_url)
                .await
                .context("cannot open the database")?;
            serve_until_signal(&config, store).await
        }
        Command::Migrate { config } => {
            let config = load_config(config.as_deref());
            init_logging(cli.log_format.unwrap_or(config.log_format));
            open_store(&config.database_url)
                .await
                .context("migration failed")?;
            println!("database is up to date");
            Ok(())
        }
        Command::Project {
            command:
                ProjectCommand::Create {
                    name,
                    public_key,
                    key_out,
                    config,
                },
        } => {
            let config = load_config(config.as_deref());
            create_project(&config, &name, public_key.as_deref(), key_out).await
        }
        Command::Workflows {
            command:
                WorkflowsCommand::Deploy {
                    dir,
                    project,
                    check,
                    config,
                },
        } => {
            let config = load_config(config.as_deref());
            let project =
                ProjectId::parse(&project).context("--project must be a project id (UUID)")?;
            deploy_workflows(&config, project, &dir, check).await
        }
        Command::Keys {
            command: KeysCommand::Rotate { config },
        } => {
            let config = load_config(config.as_deref());
            if let Err(e) = config.require_master_key() {
                eprintln!("{e}");
                std::process::exit(2);
            }
            let store = open_store(&config.database_url)
                .await
                .context("cannot open the database")?;
            let services = Services::new(store.clone(), service_settings(&config));
            let report = plugboard_service::rotation::reseal_all(&*store, &services.vault).await?;
            let out = serde_json::json!({
                "currentKeyId": services.vault.current_key_id(),
                "credentials": report.credentials,
                "clientSecrets": report.client_secrets,
                "projectEnv": report.project_env,
                "userSecrets": report.user_secrets,
                "webhookSecrets": report.webhook_secrets,
                "previousWebhookSecrets": report.previous_webhook_secrets,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Token {
            project,
            user,
            ttl,
            key,
            kid,
            dir,
        } => print_token(project, &user, ttl, key, kid, &DevPaths::new(dir)),
    }
}

/// `plugboard token`: what is not given comes from the dev state in `paths`.
fn print_token(
    project: Option<String>,
    user: &str,
    ttl: i64,
    key: Option<PathBuf>,
    kid: Option<String>,
    paths: &DevPaths,
) -> anyhow::Result<()> {
    let demo = if project.is_none() || key.is_none() {
        dev::read_state(paths)?
    } else {
        None
    };
    let project = match (project, &demo) {
        (Some(raw), _) => {
            ProjectId::parse(&raw).context("--project must be a project id (UUID)")?
        }
        (None, Some(state)) => state.project_id,
        (None, None) => anyhow::bail!(
            "no --project, and no dev project in {} (run `plugboard dev` there first, or give \
             --project and --key)",
            paths.state().display()
        ),
    };
    let dev_key = key.is_none();
    let key = key.unwrap_or_else(|| paths.private_key());
    let kid = kid.or_else(|| {
        demo.as_ref()
            .filter(|state| dev_key && state.project_id == project)
            .map(|state| state.signing_key_id.to_string())
    });
    let pem =
        std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?;
    println!(
        "{}",
        dev::user_token(&pem, kid.as_deref(), project, user, ttl)?
    );
    Ok(())
}

async fn run_dev(config: &mut Config, listen: SocketAddr, paths: DevPaths) -> anyhow::Result<()> {
    let (admin_token, master_key) = dev::load_or_init_secrets(&paths)?;
    config.database_url = paths.database_url();
    config.listen = listen;
    config.public_url = format!("http://{listen}");
    config.admin_token = Some(Secret::new(admin_token.clone()));
    config.master_key = Some(Secret::new(master_key.clone()));
    config.sandbox = true;
    // Webhook receivers on this machine over plain http, as the sandbox provider is.
    config.webhooks.allow_loopback = true;
    let store = open_store(&config.database_url)
        .await
        .context("cannot open the dev database")?;
    let services = Services::new(store.clone(), service_settings(config));
    let state = dev::ensure_demo(
        &services,
        &paths,
        &config.public_url,
        &admin_token,
        &master_key,
    )
    .await?;
    let pem = std::fs::read_to_string(paths.private_key())?;
    let kid = state.signing_key_id.to_string();
    let token = dev::user_token(&pem, Some(&kid), state.project_id, dev::DEMO_USER, 3600)?;
    println!(
        "{}",
        dev::welcome(&config.public_url, &state, &token, &paths.private_key())
    );
    serve_until_signal(config, store).await
}

async fn serve_until_signal(
    config: &Config,
    store: std::sync::Arc<dyn plugboard_store::Store>,
) -> anyhow::Result<()> {
    check_master_keys(config, &store).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let server = Server::start(config, store, listener).await?;
    tracing::info!(address = %server.addr, "plugboard is listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await?;
    Ok(())
}

/// Refuses to serve when the configured master keys cannot open the stored secrets
/// (e.g. the old key alone after `keys rotate`): every credential use would fail.
async fn check_master_keys(
    config: &Config,
    store: &std::sync::Arc<dyn plugboard_store::Store>,
) -> anyhow::Result<()> {
    let services = Services::new(store.clone(), service_settings(config));
    plugboard_service::rotation::check_master_keys(&**store, &services.vault)
        .await
        .context("the master key does not match the stored secrets")
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("cannot listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The workflow files of `dir`, sorted by name.
fn workflow_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let workflow = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if workflow && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no *.yaml, *.yml or *.json file in {}",
        dir.display()
    );
    Ok(files)
}

async fn deploy_workflows(
    config: &Config,
    project: ProjectId,
    dir: &Path,
    check_only: bool,
) -> anyhow::Result<()> {
    let store = open_store(&config.database_url)
        .await
        .context("cannot open the database")?;
    let services = Services::new(store, service_settings(config));
    services.projects.get(project).await?;
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for file in workflow_files(dir)? {
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match services.workflows.validate(project, &source, None).await {
            Ok(definition) => sources.push((file, source, definition.id)),
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "nothing deployed; {} invalid file(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    let mut seen = std::collections::HashMap::new();
    for (file, _, id) in &sources {
        if let Some(first) = seen.insert(id.clone(), file.clone()) {
            anyhow::bail!(
                "nothing deployed; {} and {} both define workflow `{id}`",
                first.display(),
                file.display()
            );
        }
    }
    let mut deployed = Vec::new();
    for (file, source, id) in sources {
        let version = if check_only {
            None
        } else {
            Some(
                services
                    .workflows
                    .deploy(project, &source, None)
                    .await?
                    .version,
            )
        };
        deployed.push(serde_json::json!({
            "file": file.display().to_string(), "workflowId": id, "version": version,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&deployed)?);
    Ok(())
}

async fn create_project(
    config: &Config,
    name: &str,
    public_key: Option<&Path>,
    key_out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let public_pem = public_key
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let store = open_store(&config.database_url)
        .await
        .context("cannot open the database")?;
    let services = Services::new(store, service_settings(config));
    let created = services
        .projects
        .create(name, public_pem.as_deref())
        .await?;
    let key_path = match &created.signing_key.private_pem {
        Some(pem) => {
            let path = key_out.unwrap_or_else(|| {
                PathBuf::from(format!("{}-signing-key.pem", created.project.id))
            });
            dev::write_private(&path, pem)?;
            Some(path)
        }
        None => None,
    };
    let out = serde_json::json!({
        "projectId": created.project.id,
        "name": created.project.name,
        "secretKey": created.secret_key,
        "signingKeyId": created.signing_key.record.id,
        "privateKeyPath": key_path,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
