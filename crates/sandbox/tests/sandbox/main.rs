//! The sandbox over real HTTP on 127.0.0.1, driven with reqwest.

mod faults;
mod flows;
mod pages;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_sandbox::{Sandbox, SandboxClient, SandboxConfig};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

pub const CLIENT: &str = "app";
pub const SECRET: &str = "app-secret";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

/// A running sandbox, its base URL and an HTTP client that does not follow redirects.
pub struct Harness {
    pub sandbox: Sandbox,
    pub base: String,
    pub http: reqwest::Client,
}

pub fn config() -> SandboxConfig {
    SandboxConfig {
        clients: vec![SandboxClient::new(CLIENT, SECRET, vec![REDIRECT.into()])],
        auto_approve: true,
        ..SandboxConfig::default()
    }
}

pub async fn start(config: SandboxConfig) -> Harness {
    let sandbox = Sandbox::new(config);
    let addr = sandbox.serve_on_loopback().await.unwrap();
    Harness {
        sandbox,
        base: format!("http://{addr}"),
        http: client(),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// How a test authenticates its client at the token endpoint.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Post(&'a str, &'a str),
    Basic(&'a str, &'a str),
}

pub const APP: Auth = Auth::Post(CLIENT, SECRET);

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The authorization URL for [`CLIENT`] with PKCE on [`VERIFIER`].
    pub fn authorize_url(&self, scope: &str, state: &str) -> Url {
        let mut url = Url::parse(&self.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", &challenge(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// A code through `auto_approve`, checking the state comes back.
    pub async fn code(&self) -> String {
        let response = self.get(self.authorize_url("read write", "st-1")).await;
        let location = location(&response);
        assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
        query_param(&location, "code").expect("a code")
    }

    pub async fn get(&self, url: impl reqwest::IntoUrl) -> Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn token(&self, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = pairs.to_vec();
        let request = self.http.post(self.url("/oauth/token"));
        let request = match auth {
            Auth::Post(id, secret) => {
                form.extend([("client_id", id), ("client_secret", secret)]);
                request
            }
            Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        };
        request.form(&form).send().await.unwrap()
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> Response {
        let pairs = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        self.token(APP, &pairs).await
    }

    /// Tokens from a full code flow.
    pub async fn tokens(&self) -> Value {
        let code = self.code().await;
        let response = self.exchange(&code, VERIFIER).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token(APP, &pairs).await
    }

    pub async fn client_credentials(&self) -> Response {
        self.token(APP, &[("grant_type", "client_credentials")])
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        let request = self.http.get(self.url("/api/me")).bearer_auth(access_token);
        request.send().await.unwrap()
    }
}

pub fn location(response: &Response) -> Url {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    Url::parse(location).unwrap()
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `error` of an OAuth error response, checking its status.
pub async fn oauth_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

pub fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` in {body}"))
}
