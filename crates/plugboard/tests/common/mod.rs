//! Shared set-up for the end-to-end tests: a real server on a loopback port over a fresh
//! database (SQLite file or PostgreSQL schema), an HTTP client, one helper per endpoint
//! family, and user tokens minted with every header and claim under the test's control.
#![allow(dead_code)]

pub mod browser;
pub mod oidc;
pub mod provider;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plugboard::Server;
use plugboard::config::{Config, Secret};
use plugboard_service::keys::{GeneratedKeyPair, generate_signing_key};
use plugboard_store::Store;
use plugboard_store_postgres::PostgresStore;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Writes each test once and runs it on both backends: `<module>::sqlite::<name>` and
/// `<module>::postgres::<name>`. The body receives the [`Backend`] under the given name.
macro_rules! backend_tests {
    ($($(#[$attr:meta])* async fn $name:ident($backend:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[tokio::test] async fn $name() {
                let $backend = $crate::common::Backend::Sqlite;
                $body
            } )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[tokio::test] async fn $name() {
                let $backend = $crate::common::Backend::Postgres;
                $body
            } )*
        }
    };
}

// ---------------------------------------------------------------------------------------
// Backends

const PG_URL_VAR: &str = "PLUGBOARD_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL test server. Panics when unset: these tests never pass by skipping.
pub fn postgres_url() -> String {
    std::env::var(PG_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{PG_URL_VAR} must name a PostgreSQL database for the postgres:: tests, \
             e.g. postgres://postgres@127.0.0.1:5432/test"
        )
    })
}

impl Backend {
    /// A fresh, migrated database: a new SQLite file in `dir`, or a new PostgreSQL
    /// schema. Returns it with a URL that opens it (for PostgreSQL, with `search_path`
    /// set to the schema), which the `plugboard` binary can use too.
    pub async fn fresh_store(self, dir: &Path) -> (String, Arc<dyn Store>) {
        match self {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.join("pb.db").display());
                let store = plugboard::open_store(&url)
                    .await
                    .expect("opening a fresh SQLite database");
                (url, store)
            }
            Backend::Postgres => {
                let (schema, store) = Self::fresh_schema().await;
                let url = postgres_url();
                let sep = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{sep}options%5Bsearch_path%5D={schema}");
                (url, Arc::new(store))
            }
        }
    }

    async fn fresh_schema() -> (String, PostgresStore) {
        let schema = format!("pbt_{}", uuid::Uuid::new_v4().simple());
        let store = PostgresStore::connect_in_schema(&postgres_url(), &schema)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database ({PG_URL_VAR}): {e}"));
        (schema, store)
    }
}

// ---------------------------------------------------------------------------------------
// Keys and tokens

/// RSA key pairs generated once per test binary (each costs ~100 ms).
pub fn key_pair(index: usize) -> &'static GeneratedKeyPair {
    const COUNT: usize = 6;
    static KEYS: OnceLock<Vec<GeneratedKeyPair>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..COUNT)
                .map(|_| scope.spawn(|| generate_signing_key().expect("RSA key generation")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    });
    &keys[index % COUNT]
}

/// Key pairs 0–3 go to projects; these two are never registered unless a test does so.
pub fn second_key() -> &'static GeneratedKeyPair {
    key_pair(4)
}

pub fn foreign_key() -> &'static GeneratedKeyPair {
    key_pair(5)
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims a SaaS backend would put in a user token for `project`.
pub fn claims(project_id: &str, sub: &str) -> Value {
    let now = now_secs();
    json!({"sub": sub, "iat": now, "exp": now + 3600, "aud": format!("plugboard:{project_id}")})
}

/// Signs `claims` with `alg`; `kid` goes into the header when given.
pub fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signing a test token")
}

/// An RS256 token signed with `private_pem`.
pub fn rs256(private_pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("an RSA private key");
    sign(Algorithm::RS256, &key, kid, claims)
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned(claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "JWT"})),
        part(claims)
    )
}

/// An ES256 key (P-256, PKCS#8 DER), made once.
pub fn es256_key() -> EncodingKey {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    let der = DER.get_or_init(|| {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        pair.to_pkcs8v1().unwrap().as_ref().to_vec()
    });
    EncodingKey::from_ec_der(der)
}

// ---------------------------------------------------------------------------------------
// Projects

/// A project created through the API, with the private half of its signing key.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub secret_key: String,
    pub signing_key_id: String,
    pub public_pem: String,
    pub private_pem: String,
}

impl Project {
    /// A valid token for `sub`, as the SaaS backend would mint it (kid and aud set).
    pub fn token(&self, sub: &str) -> String {
        rs256(
            &self.private_pem,
            Some(&self.signing_key_id),
            &claims(&self.id, sub),
        )
    }

    /// A token with these claims, signed with this project's key, with its kid.
    pub fn token_with(&self, claims: &Value) -> String {
        rs256(&self.private_pem, Some(&self.signing_key_id), claims)
    }

    /// The same project, called with another secret key.
    pub fn with_secret(&self, secret_key: &str) -> Project {
        Project {
            secret_key: secret_key.to_owned(),
            ..self.clone()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Answers

/// An HTTP answer, its body parsed as JSON when it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error answer: its status and its `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected error; body: {}",
            self.text
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

// ---------------------------------------------------------------------------------------
// The application under test

pub struct TestApp {
    pub server: Server,
    pub store: Arc<dyn Store>,
    pub admin_token: String,
    pub client: reqwest::Client,
    projects_created: AtomicUsize,
    pub database_url: String,
    _dir: TempDir,
}

/// Percent-encodes one path segment.
pub fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn random_admin_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn test_config() -> Config {
    Config {
        admin_token: Some(Secret::new(random_admin_token())),
        last_seen_flush_secs: 1,
        // The fake providers of the tests run on loopback over http.
        allow_loopback_providers: true,
        // Helpers poll once, right after the callback: no wait for the page's message
        // (tests of that wait set their own).
        connect: plugboard::config::ConnectConfig {
            message_grace_ms: 0,
            ..Default::default()
        },
        // Tests run workflow executions themselves (`drain`), and call stubs on loopback.
        workflows: plugboard::config::WorkflowsConfig {
            worker: false,
            scheduler: false,
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Config::default()
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl TestApp {
    /// Starts a server on a random loopback port over a fresh database.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, test_config()).await
    }

    /// Like [`spawn`](Self::spawn) with this configuration (it must set an admin token).
    /// `config.database_url` is set to the fresh database's, so backend-dependent
    /// defaults (such as the user cache) are those of that backend.
    pub async fn spawn_with(backend: Backend, mut config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, store) = backend.fresh_store(dir.path()).await;
        config.database_url = url;
        Self::start(config, store, dir).await
    }

    /// A second node: another server over this one's database, with its own caches.
    pub async fn sibling(&self, mut config: Config) -> TestApp {
        config.database_url = self.database_url.clone();
        config.admin_token = Some(Secret::new(self.admin_token.clone()));
        Self::start(config, self.store.clone(), tempfile::tempdir().unwrap()).await
    }

    /// Stops this server (its worker and webhook dispatcher with it, nothing kept in
    /// memory) and starts a new one with `config` over the same database, as after a
    /// restart. Sealed values survive only if `config` names the same master key.
    pub async fn restart(self, mut config: Config) -> TestApp {
        let TestApp {
            server,
            store,
            admin_token,
            database_url,
            _dir,
            ..
        } = self;
        server.stop().await.expect("stopping the server");
        config.database_url = database_url;
        config.admin_token = Some(Secret::new(admin_token));
        Self::start(config, store, _dir).await
    }

    async fn start(mut config: Config, store: Arc<dyn Store>, dir: TempDir) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // OAuth callbacks and links must name this very server.
        config.public_url = format!("http://{}", listener.local_addr().unwrap());
        let server = Server::start(&config, store.clone(), listener)
            .await
            .expect("starting the server");
        Self {
            server,
            store,
            admin_token: config
                .admin_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default(),
            client: http_client(),
            projects_created: AtomicUsize::new(0),
            database_url: config.database_url.clone(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request).await
    }

    /// Sends raw bytes as an `application/json` body.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, None).await
    }

    // --- projects (admin token) ---

    /// `POST /api/v1/projects` with any bearer and body.
    pub async fn post_project(&self, bearer: Option<&str>, body: &Value) -> Answer {
        self.send(Method::POST, "/api/v1/projects", bearer, Some(body))
            .await
    }

    /// Creates a project registering one of the cached key pairs (each project of this
    /// app gets a different one).
    pub async fn create_project(&self) -> Project {
        let n = self.projects_created.fetch_add(1, Ordering::Relaxed);
        let pair = key_pair(n % 4);
        let created = self
            .post_project(
                Some(&self.admin_token),
                &json!({"name": format!("project {n}"), "publicKeyPem": pair.public_pem}),
            )
            .await;
        created.assert_status(201);
        project_from(&created.body, &pair.private_pem)
    }

    /// Creates a project whose key pair the server generates.
    pub async fn create_project_with_generated_key(&self) -> Project {
        let created = self
            .post_project(Some(&self.admin_token), &json!({"name": "generated"}))
            .await;
        created.assert_status(201);
        let private = created.body["signingKey"]["privateKeyPem"]
            .as_str()
            .expect("a generated key's private half is returned")
            .to_owned();
        project_from(&created.body, &private)
    }

    pub async fn get_project(&self, p: &Project) -> Answer {
        self.send(
            Method::GET,
            &format!("/api/v1/projects/{}", p.id),
            Some(&p.secret_key),
            None,
        )
        .await
    }

    // --- SDK (user token) ---

    pub async fn get_me(&self, p: &Project, token: &str) -> Answer {
        self.send(Method::GET, &sdk_path(p, "me"), Some(token), None)
            .await
    }

    /// `PATCH /sdk/me` with `{"meta": meta}`.
    pub async fn patch_me(&self, p: &Project, token: &str, meta: Value) -> Answer {
        self.send(
            Method::PATCH,
            &sdk_path(p, "me"),
            Some(token),
            Some(&json!({ "meta": meta })),
        )
        .await
    }

    pub async fn get_integrations(&self, p: &Project, token: &str) -> Answer {
        self.send(Method::GET, &sdk_path(p, "integrations"), Some(token), None)
            .await
    }

    // --- users (secret key) ---

    pub async fn list_users(&self, p: &Project, query: &[(&str, &str)]) -> Answer {
        let request = self
            .client
            .get(self.url(&format!("/api/v1/projects/{}/users", p.id)))
            .bearer_auth(&p.secret_key)
            .query(query);
        answer(request).await
    }

    /// The user ids one list call returns, in order (asserts 200).
    pub async fn list_user_ids(&self, p: &Project, query: &[(&str, &str)]) -> Vec<String> {
        let page = self.list_users(p, query).await;
        page.assert_status(200);
        user_ids(&page.body)
    }

    pub async fn get_user(&self, p: &Project, user: &str) -> Answer {
        self.users_call(Method::GET, p, user, "", None).await
    }

    /// `PUT /users/{uid}` with `{"meta": meta}`.
    pub async fn put_user(&self, p: &Project, user: &str, meta: Value) -> Answer {
        self.users_call(Method::PUT, p, user, "", Some(&json!({ "meta": meta })))
            .await
    }

    /// `PATCH /users/{uid}` with `{"meta": patch}`.
    pub async fn patch_user(&self, p: &Project, user: &str, patch: Value) -> Answer {
        self.users_call(Method::PATCH, p, user, "", Some(&json!({ "meta": patch })))
            .await
    }

    /// `PUT /users/{uid}/meta`: the body is the new metadata.
    pub async fn put_meta(&self, p: &Project, user: &str, meta: Value) -> Answer {
        self.users_call(Method::PUT, p, user, "/meta", Some(&meta))
            .await
    }

    pub async fn suspend_user(&self, p: &Project, user: &str) -> Answer {
        self.users_call(Method::POST, p, user, "/suspend", None)
            .await
    }

    pub async fn resume_user(&self, p: &Project, user: &str) -> Answer {
        self.users_call(Method::POST, p, user, "/resume", None)
            .await
    }

    pub async fn delete_user(&self, p: &Project, user: &str) -> Answer {
        self.users_call(Method::DELETE, p, user, "", None).await
    }

    /// The user's stored metadata (asserts the user exists).
    pub async fn meta_of(&self, p: &Project, user: &str) -> Value {
        let got = self.get_user(p, user).await;
        got.assert_status(200);
        got.body["meta"].clone()
    }

    async fn users_call(
        &self,
        method: Method,
        p: &Project,
        user: &str,
        suffix: &str,
        body: Option<&Value>,
    ) -> Answer {
        let path = format!("/api/v1/projects/{}/users/{}{suffix}", p.id, segment(user));
        self.send(method, &path, Some(&p.secret_key), body).await
    }

    // --- keys (secret key) ---

    pub async fn list_signing_keys(&self, p: &Project) -> Answer {
        self.keys_call(Method::GET, p, "signing-keys", None).await
    }

    /// Registers `public_pem`, or has a pair generated when `None`.
    pub async fn add_signing_key(&self, p: &Project, public_pem: Option<&str>) -> Answer {
        let body = match public_pem {
            Some(pem) => json!({ "publicKeyPem": pem }),
            None => json!({}),
        };
        self.keys_call(Method::POST, p, "signing-keys", Some(&body))
            .await
    }

    pub async fn revoke_signing_key(&self, p: &Project, id: &str) -> Answer {
        self.keys_call(Method::DELETE, p, &format!("signing-keys/{id}"), None)
            .await
    }

    pub async fn list_secret_keys(&self, p: &Project) -> Answer {
        self.keys_call(Method::GET, p, "secret-keys", None).await
    }

    pub async fn create_secret_key(&self, p: &Project, name: &str) -> Answer {
        self.keys_call(
            Method::POST,
            p,
            "secret-keys",
            Some(&json!({ "name": name })),
        )
        .await
    }

    pub async fn revoke_secret_key(&self, p: &Project, id: &str) -> Answer {
        self.keys_call(Method::DELETE, p, &format!("secret-keys/{id}"), None)
            .await
    }

    async fn keys_call(
        &self,
        method: Method,
        p: &Project,
        rest: &str,
        body: Option<&Value>,
    ) -> Answer {
        let path = format!("/api/v1/projects/{}/{rest}", p.id);
        self.send(method, &path, Some(&p.secret_key), body).await
    }
}

fn sdk_path(p: &Project, rest: &str) -> String {
    format!("/projects/{}/sdk/{rest}", p.id)
}

fn project_from(created: &Value, private_pem: &str) -> Project {
    let text = |v: &Value| v.as_str().expect("a string field").to_owned();
    Project {
        id: text(&created["projectId"]),
        secret_key: text(&created["secretKey"]),
        signing_key_id: text(&created["signingKey"]["id"]),
        public_pem: text(&created["signingKey"]["publicKeyPem"]),
        private_pem: private_pem.to_owned(),
    }
}

/// The `userId`s of a list answer's `data`, in order.
pub fn user_ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("a list answer has `data`")
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request
        .send()
        .await
        .expect("the request reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("reading the answer");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        body,
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of the `plugboard` binary under test.
pub fn plugboard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugboard"))
}

/// Every byte the database holds for the project, as text (SQLite file or PostgreSQL
/// tables), to look for secrets in clear.
pub async fn raw_database_text(app: &TestApp) -> String {
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        // Make sure the WAL is in the main file too: read both.
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let schema = app
        .database_url
        .split("search_path%5D=")
        .nth(1)
        .unwrap()
        .to_owned();
    let output = std::process::Command::new("pg_dump")
        .args(["--data-only", "--schema", &schema, &postgres_url()])
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
