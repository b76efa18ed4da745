//! A real, independent OAuth 2.0 / OpenID Connect authorization server for interop tests:
//! panva's `oidc-provider` (npm), run by `interop/oidc-provider/server.mjs` on a loopback
//! port, with one confidential client, PKCE S256 required, rotating refresh tokens, RFC 7009
//! revocation and introspection. [`OidcProvider::approve`] and [`OidcProvider::deny`] play
//! the user in a browser, through the provider's development login and consent pages.
//!
//! Needs Node.js (>= 18) and npm on `PATH`; a test that starts a provider without them
//! panics saying so. Depends only on reqwest, url, tokio, serde_json and rand, so that a
//! test file can include it on its own with `#[path = "common/oidc.rs"] mod oidc;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// How long the provider may take to print its endpoints.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects and form posts one approval may take; a normal one takes five.
const MAX_STEPS: usize = 20;

/// When the provider issues a refresh token with a code exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshTokens {
    /// With every code exchange, as many OAuth-only providers do.
    Always,
    /// oidc-provider's own OpenID Connect rule: only when the scope `offline_access` was
    /// granted, which it only grants to requests that also carry `prompt=consent`.
    OfflineAccess,
}

/// How [`OidcProvider::client_post`] authenticates the client. The provider accepts both
/// methods from this client (it is registered as `client_secret_post`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// HTTP Basic with the form-urlencoded id and secret.
    Basic,
}

/// Settings of [`OidcProvider::start_with`]; [`Default`] is what [`OidcProvider::start`] uses.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    pub client_id: String,
    /// Random per provider by default.
    pub client_secret: String,
    pub client_auth: ClientAuth,
    /// Access token lifetime (`expires_in`), in seconds.
    pub access_token_ttl: u64,
    pub refresh_tokens: RefreshTokens,
    /// Scopes granted besides `openid` and `offline_access`. oidc-provider silently drops
    /// scopes it does not know, and denies a request left with none (`access_denied`).
    pub extra_scopes: Vec<String>,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            client_id: "plugboard-interop".into(),
            client_secret: random_token(),
            client_auth: ClientAuth::Post,
            access_token_ttl: 3600,
            refresh_tokens: RefreshTokens::Always,
            extra_scopes: Vec::new(),
        }
    }
}

/// A running oidc-provider; the process is killed when this is dropped (and exits by itself
/// when its stdin closes, so a test binary that dies leaves nothing behind).
pub struct OidcProvider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub userinfo_endpoint: String,
    pub introspection_endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: ClientAuth,
    redirect_uris: Vec<Url>,
    http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    /// Held open: the provider exits when it closes.
    _stdin: ChildStdin,
    child: Child,
}

impl OidcProvider {
    /// Starts a provider whose one client may use `redirect_uris`, with the default
    /// [`OidcOptions`]. Installs the Node dependencies first when they are missing.
    pub async fn start(redirect_uris: &[&str]) -> OidcProvider {
        Self::start_with(redirect_uris, OidcOptions::default()).await
    }

    pub async fn start_with(redirect_uris: &[&str], options: OidcOptions) -> OidcProvider {
        assert!(
            !redirect_uris.is_empty(),
            "the client needs at least one redirect URI"
        );
        let parsed: Vec<Url> = redirect_uris
            .iter()
            .map(|uri| Url::parse(uri).unwrap_or_else(|e| panic!("redirect URI {uri:?}: {e}")))
            .collect();
        let dir = project_dir();
        ensure_installed(&dir).await;

        let refresh = match options.refresh_tokens {
            RefreshTokens::Always => "always",
            RefreshTokens::OfflineAccess => "offline_access",
        };
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("CLIENT_ID", &options.client_id)
            .env("CLIENT_SECRET", &options.client_secret)
            .env("REDIRECT_URIS", redirect_uris.join(","))
            .env("ACCESS_TOKEN_TTL", options.access_token_ttl.to_string())
            .env("REFRESH_TOKENS", refresh)
            .env("EXTRA_SCOPES", options.extra_scopes.join(" "))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}", missing_tool("node", &e)));

        let stdin = child.stdin.take().expect("piped stdin");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(STARTUP_TIMEOUT, stdout.read_line(&mut line)).await;
        let endpoints = match read {
            Err(_) => Err(format!("printed no endpoints within {STARTUP_TIMEOUT:?}")),
            Ok(Err(e)) => Err(format!("stdout could not be read: {e}")),
            Ok(Ok(0)) => Err("exited before printing its endpoints".into()),
            Ok(Ok(_)) => parse_endpoints(&line),
        };
        let endpoints = match endpoints {
            Ok(endpoints) => endpoints,
            Err(what) => {
                // Quote all the provider said: let it exit and its stderr drain first.
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), stderr_reader).await;
                panic!(
                    "oidc-provider (node server.mjs in {}) {what}; its stderr:\n{}",
                    dir.display(),
                    stderr.lock().unwrap()
                )
            }
        };
        // Nothing else is printed on stdout, but keep the pipe drained all the same.
        tokio::spawn(
            async move { while let Ok(1..) = stdout.read_line(&mut String::new()).await {} },
        );

        let field = |name: &str| endpoints[name].as_str().unwrap().to_owned();
        OidcProvider {
            issuer: field("issuer"),
            authorization_endpoint: field("authorization_endpoint"),
            token_endpoint: field("token_endpoint"),
            revocation_endpoint: field("revocation_endpoint"),
            userinfo_endpoint: field("userinfo_endpoint"),
            introspection_endpoint: endpoints["introspection_endpoint"]
                .as_str()
                .map(String::from),
            client_id: options.client_id,
            client_secret: options.client_secret,
            client_auth: options.client_auth,
            redirect_uris: parsed,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            stderr,
            _stdin: stdin,
            child,
        }
    }

    /// Plays a user who opens `authorize_url` (built by the client under test, with its
    /// state and PKCE challenge) in a fresh browser, signs in as `login` and grants consent.
    /// Returns the URL the provider finally redirects to, on one of the redirect URIs (with
    /// `code`, `state` and `iss`), without requesting it.
    pub async fn approve(&self, authorize_url: &str, login: &str) -> Url {
        self.drive(authorize_url, Some(login)).await
    }

    /// Like [`approve`](Self::approve), but the user cancels on the first page (the
    /// provider's "Cancel" link). Returns the redirect carrying `error=access_denied`.
    pub async fn deny(&self, authorize_url: &str) -> Url {
        self.drive(authorize_url, None).await
    }

    /// RFC 7662 introspection of `token`, authenticated as the client: `{"active": false}`
    /// for an unknown, expired or revoked token.
    pub async fn introspect(&self, token: &str) -> Value {
        let endpoint = self
            .introspection_endpoint
            .as_deref()
            .expect("introspection is enabled");
        let response = self.client_post(endpoint, &[("token", token)]).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "introspection answered {status}: {body}"
        );
        serde_json::from_str(&body).unwrap()
    }

    /// A form POST authenticated as the client, the way [`ClientAuth`] says.
    pub async fn client_post(&self, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(endpoint);
        match self.client_auth {
            ClientAuth::Post => {
                fields.push(("client_id", self.client_id.as_str()));
                fields.push(("client_secret", self.client_secret.as_str()));
            }
            // RFC 6749 section 2.3.1: both halves form-urlencoded before Basic encoding.
            ClientAuth::Basic => {
                request = request.basic_auth(
                    form_encode(&self.client_id),
                    Some(form_encode(&self.client_secret)),
                );
            }
        }
        request
            .form(&fields)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {endpoint}: {e}"))
    }

    /// What the provider has written to stderr so far (warnings, errors), for diagnostics.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Follows the provider's redirects with a cookie jar, answering the login and consent
    /// pages (`login` is `Some`) or cancelling on the first page (`None`), until it
    /// redirects to one of the client's redirect URIs.
    async fn drive(&self, authorize_url: &str, login: Option<&str>) -> Url {
        let mut url = Url::parse(authorize_url)
            .unwrap_or_else(|e| panic!("authorize URL {authorize_url:?}: {e}"));
        let mut jar = CookieJar::default();
        let mut trail = Vec::new();
        for _ in 0..MAX_STEPS {
            trail.push(url.to_string());
            let (status, location, body) =
                self.send(&mut jar, reqwest::Method::GET, &url, None).await;
            let next = if let Some(location) = location {
                url.join(&location).unwrap()
            } else if status == StatusCode::OK {
                let page = Page(&body);
                match (page.prompt(), login) {
                    (Some(prompt), Some(login)) => {
                        let action = page
                            .form_action()
                            .map_or(url.clone(), |a| url.join(&a).unwrap());
                        let form: Vec<(&str, &str)> = match prompt.as_str() {
                            // The dev login page accepts any login and password.
                            "login" => {
                                vec![("prompt", "login"), ("login", login), ("password", "x")]
                            }
                            "consent" => vec![("prompt", "consent")],
                            other => self.fail(&trail, &format!("unknown prompt {other:?}"), &body),
                        };
                        let (status, location, body) = self
                            .send(
                                &mut jar,
                                reqwest::Method::POST,
                                &action,
                                Some(form.as_slice()),
                            )
                            .await;
                        match location {
                            Some(location) => action.join(&location).unwrap(),
                            None => self.fail(
                                &trail,
                                &format!("{prompt} form answered {status}"),
                                &body,
                            ),
                        }
                    }
                    (Some(_), None) => match page.abort_link() {
                        Some(href) => url.join(&href).unwrap(),
                        None => self.fail(&trail, "no Cancel link on the interaction page", &body),
                    },
                    (None, _) => {
                        self.fail(&trail, "a page that is neither login nor consent", &body)
                    }
                }
            } else {
                self.fail(&trail, &format!("answered {status}"), &body)
            };
            if self.is_redirect_uri(&next) {
                return next;
            }
            if next.origin() != url.origin() {
                self.fail(
                    &trail,
                    &format!("redirected off the provider to {next}"),
                    "",
                );
            }
            url = next;
        }
        self.fail(
            &trail,
            &format!("no redirect to the client after {MAX_STEPS} steps"),
            "",
        )
    }

    async fn send(
        &self,
        jar: &mut CookieJar,
        method: reqwest::Method,
        url: &Url,
        form: Option<&[(&str, &str)]>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(cookies) = jar.header_for(url) {
            request = request.header(COOKIE, cookies);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        for value in response.headers().get_all(SET_COOKIE) {
            jar.store(value.to_str().unwrap_or_default());
        }
        let status = response.status();
        let location = status
            .is_redirection()
            .then(|| {
                response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(String::from)
            })
            .flatten();
        (status, location, response.text().await.unwrap_or_default())
    }

    fn is_redirect_uri(&self, url: &Url) -> bool {
        self.redirect_uris
            .iter()
            .any(|uri| uri.origin() == url.origin() && uri.path() == url.path())
    }

    fn fail(&self, trail: &[String], what: &str, body: &str) -> ! {
        let body: String = body.chars().take(2000).collect();
        panic!(
            "oidc-provider interaction: {what}\nrequests: {trail:#?}\nbody: {body}\nprovider stderr:\n{}",
            self.stderr()
        )
    }
}

/// The one JSON line `server.mjs` prints, with every endpoint the harness needs present.
fn parse_endpoints(line: &str) -> Result<Value, String> {
    let endpoints: Value =
        serde_json::from_str(line).map_err(|e| format!("printed {line:?}, not JSON: {e}"))?;
    for name in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    ] {
        if !endpoints[name].is_string() {
            return Err(format!("printed no {name}: {line}"));
        }
    }
    Ok(endpoints)
}

/// `interop/oidc-provider` at the workspace root.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/oidc-provider")
}

/// Runs `npm ci` when `node_modules` is missing or older than `package-lock.json`: once per
/// process, and under a file lock so that concurrent test binaries do not install over each
/// other.
async fn ensure_installed(dir: &Path) {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let dir = dir.to_path_buf();
            let install = tokio::task::spawn_blocking(move || install_blocking(&dir));
            if let Err(e) = install.await {
                // Fail with the install's own message rather than a JoinError.
                std::panic::resume_unwind(e.into_panic());
            }
        })
        .await;
}

fn install_blocking(dir: &Path) {
    let lock_path = dir.join(".npm-ci.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    // npm writes this hidden lockfile last, so a cut-short install does not count.
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (
        modified(&installed),
        modified(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(wanted)) => installed >= wanted,
        _ => false,
    };
    if fresh {
        return;
    }
    let output = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}", missing_tool("npm", &e)));
    assert!(
        output.status.success(),
        "npm ci in {} failed ({}):\n{}{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn missing_tool(tool: &str, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "`{tool}` is not on PATH: the OAuth interop tests run a real authorization server \
             (interop/oidc-provider) and need Node.js >= 18 with npm installed"
        )
    } else {
        format!("could not run `{tool}`: {error}")
    }
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Cookies by name and path, enough for oidc-provider's session and interaction cookies
/// (all on one host, scoped by path, deleted by being set empty and expired).
#[derive(Default)]
struct CookieJar(Vec<(String, String, String)>);

impl CookieJar {
    fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.trim().split_once('=')) else {
            return;
        };
        let mut path = "/".to_owned();
        let mut expired = value.is_empty();
        for attribute in parts {
            let (key, val) = attribute
                .trim()
                .split_once('=')
                .unwrap_or((attribute.trim(), ""));
            match key.to_ascii_lowercase().as_str() {
                "path" => path = val.to_owned(),
                "max-age" => expired |= val.parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => expired |= val.contains("1970"),
                _ => {}
            }
        }
        self.0.retain(|(n, p, _)| !(n == name && *p == path));
        if !expired {
            self.0.push((name.to_owned(), path, value.to_owned()));
        }
    }

    fn header_for(&self, url: &Url) -> Option<String> {
        let request_path = url.path();
        let matching: Vec<String> = self
            .0
            .iter()
            .filter(|(_, path, _)| {
                request_path == path
                    || (request_path.starts_with(path.as_str())
                        && (path.ends_with('/') || request_path[path.len()..].starts_with('/')))
            })
            .map(|(name, _, value)| format!("{name}={value}"))
            .collect();
        (!matching.is_empty()).then(|| matching.join("; "))
    }
}

/// Just enough reading of oidc-provider's development interaction pages.
struct Page<'a>(&'a str);

impl Page<'_> {
    /// The hidden `prompt` field of the page's form: `login` or `consent`.
    fn prompt(&self) -> Option<String> {
        self.attribute_after(r#"name="prompt" value=""#)
    }

    fn form_action(&self) -> Option<String> {
        let form = &self.0[self.0.find("<form")?..];
        Page(form).attribute_after(r#"action=""#)
    }

    /// The "[ Cancel ]" link, to the interaction's `/abort` route.
    fn abort_link(&self) -> Option<String> {
        let end = self.0.find(r#"/abort""#)? + "/abort".len();
        let start = self.0[..end].rfind(r#"href=""#)? + r#"href=""#.len();
        Some(unescape(&self.0[start..end]))
    }

    fn attribute_after(&self, marker: &str) -> Option<String> {
        let start = self.0.find(marker)? + marker.len();
        let len = self.0[start..].find('"')?;
        Some(unescape(&self.0[start..start + len]))
    }
}

fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
