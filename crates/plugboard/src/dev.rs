//! `plugboard dev`: a ready-to-use local setup under `./.plugboard/`, created on first start
//! and reused afterwards.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use plugboard_core::ProjectId;
use plugboard_service::Services;
use plugboard_service::integrations::IntegrationSettings;
use plugboard_service::keys::mint_user_token;
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const DEMO_PROJECT: &str = "demo";
pub const DEMO_USER: &str = "demo-user";

/// What `plugboard dev` keeps between runs (in `.plugboard/demo.json`, mode 0600).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoState {
    pub project_id: ProjectId,
    pub secret_key: String,
    pub signing_key_id: uuid::Uuid,
    pub admin_token: String,
    pub master_key: String,
}

pub struct DevPaths {
    pub dir: PathBuf,
}

impl DevPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("demo.json")
    }
    pub fn private_key(&self) -> PathBuf {
        self.dir.join("demo-signing-key.pem")
    }
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("plugboard.db").display())
    }
}

fn random_base64(bytes: usize, url_safe: bool) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    if url_safe {
        URL_SAFE_NO_PAD.encode(buf)
    } else {
        STANDARD.encode(buf)
    }
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Secrets the server needs before it starts (admin token, master key): read from the
/// state file, or made up on first run.
pub fn load_or_init_secrets(paths: &DevPaths) -> anyhow::Result<(String, String)> {
    fs::create_dir_all(&paths.dir)
        .with_context(|| format!("cannot create {}", paths.dir.display()))?;
    fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o700))?;
    if let Some(state) = read_state(paths)? {
        return Ok((state.admin_token, state.master_key));
    }
    Ok((random_base64(24, true), random_base64(32, false)))
}

/// The dev state in `paths`, if `plugboard dev` ran there.
pub fn read_state(paths: &DevPaths) -> anyhow::Result<Option<DemoState>> {
    match fs::read_to_string(paths.state()) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; delete the .plugboard folder to start afresh",
                paths.state().display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Returns the demo project, creating it (and its keys) on first run.
pub async fn ensure_demo(
    services: &Services,
    paths: &DevPaths,
    public_url: &str,
    admin_token: &str,
    master_key: &str,
) -> anyhow::Result<DemoState> {
    if let Some(state) = read_state(paths)?
        && services.projects.get(state.project_id).await.is_ok()
        && paths.private_key().exists()
    {
        configure_sandbox(services, state.project_id, public_url).await?;
        return Ok(state);
    }
    let created = services.projects.create(DEMO_PROJECT, None).await?;
    let private_pem = created
        .signing_key
        .private_pem
        .context("a generated signing key has a private half")?;
    write_private(&paths.private_key(), &private_pem)?;
    let state = DemoState {
        project_id: created.project.id,
        secret_key: created.secret_key,
        signing_key_id: created.signing_key.record.id,
        admin_token: admin_token.to_owned(),
        master_key: master_key.to_owned(),
    };
    write_private(&paths.state(), &serde_json::to_string_pretty(&state)?)?;
    configure_sandbox(services, state.project_id, public_url).await?;
    Ok(state)
}

/// The demo project's `custom.sandbox` integration, pointing at the development-only
/// provider this server serves under `/sandbox` (set again at every start, as the
/// address may change).
async fn configure_sandbox(
    services: &Services,
    project: ProjectId,
    public_url: &str,
) -> anyhow::Result<()> {
    let base = format!("{}/sandbox", public_url.trim_end_matches('/'));
    let definition = serde_json::json!({
        "name": "Sandbox (development only)",
        "brand_color": "#6E56CF",
        "category": "crm",
        "api_base_url": format!("{base}/api"),
        "notes": "Served by `plugboard dev` itself; not for production.",
        "auth": {
            "type": "oauth2",
            "authorization_url": format!("{base}/oauth/authorize"),
            "token_url": format!("{base}/oauth/token"),
            "revocation_url": format!("{base}/oauth/revoke"),
            "default_scopes": ["contacts"],
            "token_endpoint_auth": "client_secret_post",
            "pkce": true,
            "refresh": true
        },
        "account_id": { "from_token": "account.id" }
    });
    let settings = IntegrationSettings {
        oauth_client_id: Some(plugboard_sandbox::DEFAULT_CLIENT_ID.into()),
        oauth_client_secret: Some(plugboard_sandbox::DEFAULT_CLIENT_SECRET.into()),
        active: Some(true),
        definition: Some(definition),
        ..IntegrationSettings::default()
    };
    services
        .integrations
        .configure(project, SANDBOX_INTEGRATION, settings)
        .await?;
    Ok(())
}

/// A user token for `user`, valid `ttl_secs`, signed with the key in `private_pem`.
pub fn user_token(
    private_pem: &str,
    kid: Option<&str>,
    project: ProjectId,
    user: &str,
    ttl_secs: i64,
) -> anyhow::Result<String> {
    let now = chrono_now();
    let claims = serde_json::json!({
        "sub": user,
        "iat": now,
        "exp": now + ttl_secs,
        "aud": format!("plugboard:{project}"),
    });
    Ok(mint_user_token(private_pem, kid, &claims)?)
}

fn chrono_now() -> i64 {
    plugboard_core::now_millis().div_euclid(1000)
}

/// The welcome text: ids, keys, a token, and three requests to try.
/// The demo project's integration with the development sandbox provider.
pub const SANDBOX_INTEGRATION: &str = "custom.sandbox";

pub fn welcome(base: &str, state: &DemoState, token: &str, key_path: &Path) -> String {
    let pid = state.project_id;
    let sk = &state.secret_key;
    format!(
        r#"
Plugboard dev server — {base}
  project id   {pid}
  secret key   {sk}
  admin token  {admin}
  signing key  {key} (kid {kid})
  user token   for `{DEMO_USER}`, valid 1 hour (new one: plugboard token --dir {dir} --user {DEMO_USER})

Try it (paste the first two lines into your shell):
  PB_TOKEN={token}
  PB_SECRET={sk}

  # 1. The connected user, as the Paragon SDK sees it
  curl -s {base}/projects/{pid}/sdk/me -H "Authorization: Bearer $PB_TOKEN"

  # 2. Attach metadata to the user (JSON Merge Patch)
  curl -s -X PATCH {base}/projects/{pid}/sdk/me -H "Authorization: Bearer $PB_TOKEN" \
       -H "Content-Type: application/json" -d '{{"meta": {{"email": "john@bookface.com", "plan": "pro"}}}}'

  # 3. Find the user by metadata from your backend
  curl -s "{base}/api/v1/projects/{pid}/users?meta.Email=john@bookface.com" -H "Authorization: Bearer $PB_SECRET"

Connect an account (the `{SANDBOX_INTEGRATION}` integration talks to a development-only OAuth
provider this server runs under {base}/sandbox):
  # 4. A one-time connect link for {DEMO_USER}; open the "url" it returns in a browser
  curl -s -X POST {base}/api/v1/projects/{pid}/users/{DEMO_USER}/connect-links -H "Authorization: Bearer $PB_SECRET" \
       -H "Content-Type: application/json" -d '{{"integration": "{SANDBOX_INTEGRATION}"}}'

  # 5. Then call the provider's API as the user, through the proxy
  curl -s {base}/projects/{pid}/sdk/proxy/{SANDBOX_INTEGRATION}/me -H "Authorization: Bearer $PB_TOKEN"

The dashboard: {base}/dashboard (log in with the secret key above)
"#,
        admin = state.admin_token,
        key = key_path.display(),
        kid = state.signing_key_id,
        dir = key_path.parent().unwrap_or(Path::new(".")).display(),
    )
}
