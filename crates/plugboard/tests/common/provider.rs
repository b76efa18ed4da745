//! A fake OAuth provider for the connect tests: the sandbox provider on its own loopback
//! port, with failure injection and counters, and helpers that drive a connection
//! through Plugboard as the browser SDK would (minus the browser).

use std::time::Duration;

use plugboard_sandbox::{Sandbox, SandboxClient, SandboxConfig};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Project, TestApp, answer};

pub const CLIENT_ID: &str = "plugboard-test-client";
pub const CLIENT_SECRET: &str = "fake-provider-client-secret-93c1";

pub struct FakeProvider {
    pub sandbox: Sandbox,
    pub base: String,
}

impl FakeProvider {
    /// A provider that approves every authorization request at once.
    pub async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    pub async fn start_with(config: SandboxConfig) -> Self {
        Self::serve(SandboxConfig {
            auto_approve: true,
            ..config
        })
        .await
    }

    /// A provider that shows its consent page, for a browser to click through.
    pub async fn with_consent_page() -> Self {
        Self::serve(SandboxConfig::default()).await
    }

    async fn serve(config: SandboxConfig) -> Self {
        let config = SandboxConfig {
            clients: vec![SandboxClient::new(CLIENT_ID, CLIENT_SECRET, Vec::new())],
            ..config
        };
        let sandbox = Sandbox::new(config);
        let addr = sandbox
            .serve_on_loopback()
            .await
            .expect("fake provider starts");
        Self {
            sandbox,
            base: format!("http://{addr}"),
        }
    }

    /// A custom integration definition (OAuth, PKCE, refresh, RFC 7009 revocation)
    /// pointing at this provider.
    pub fn oauth_definition(&self) -> Value {
        json!({
            "name": "Fake CRM",
            "brand_color": "#336699",
            "category": "crm",
            "api_base_url": format!("{}/api", self.base),
            "auth": {
                "type": "oauth2",
                "authorization_url": format!("{}/oauth/authorize", self.base),
                "token_url": format!("{}/oauth/token", self.base),
                "revocation_url": format!("{}/oauth/revoke", self.base),
                "default_scopes": ["contacts.read", "contacts.write"],
                "token_endpoint_auth": "client_secret_post",
                "pkce": true,
                "refresh": true
            },
            "account_id": { "from_token": "account.id" }
        })
    }

    /// Turns the custom integration `custom.<slug>` on for `p`, pointing here.
    pub async fn configure(
        &self,
        app: &TestApp,
        p: &Project,
        slug: &str,
        definition: Value,
    ) -> String {
        let answer = app
            .send(
                Method::PUT,
                &format!("/api/v1/projects/{}/integrations/custom.{slug}", p.id),
                Some(&p.secret_key),
                Some(&json!({
                    "oauthClientId": CLIENT_ID,
                    "oauthClientSecret": CLIENT_SECRET,
                    "definition": definition,
                })),
            )
            .await;
        answer.assert_status(200);
        answer.body["id"].as_str().unwrap().to_owned()
    }
}

/// A client that does not follow redirects, to look at each hop.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What a connect attempt went through.
pub struct Connected {
    /// The callback page Plugboard served.
    pub callback: Answer,
    /// The credential id, when it worked.
    pub credential_id: Option<String>,
}

impl TestApp {
    /// `GET /v2/…/build-oauth` as `installIntegration` sends it.
    pub async fn build_oauth(&self, p: &Project, token: &str, query: &[(&str, &str)]) -> Answer {
        let url = format!("/v2/projects/{}/sdk/actions/build-oauth", p.id);
        let request = self
            .client
            .get(self.url(&url))
            .bearer_auth(token)
            .query(query);
        answer(request).await
    }

    /// Runs the round trip: build-oauth, the provider's authorize endpoint (auto-approved,
    /// `login_hint` names the account), Plugboard's callback, then the SDK's poll.
    pub async fn connect_oauth(
        &self,
        p: &Project,
        user: &str,
        integration: &str,
        sid: &str,
        install_options: Value,
        account: &str,
    ) -> Connected {
        let token = p.token(user);
        let options = install_options.to_string();
        let built = self
            .build_oauth(
                p,
                &token,
                &[
                    ("action", integration),
                    ("oauthMetaKeyId", sid),
                    ("originForPostMessage", "http://app.example"),
                    ("installOptions", &options),
                    ("endUserSuppliedValues", "{}"),
                    ("isPreviewMode", "false"),
                ],
            )
            .await;
        built.assert_status(200);
        let mut authorize = url::Url::parse(built.body["redirectUrl"].as_str().unwrap()).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("login_hint", account);
        let client = no_redirects();
        let hop = client.get(authorize).send().await.unwrap();
        assert_eq!(hop.status(), 302, "the fake provider redirects back");
        let callback_url = hop.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            callback_url.starts_with(&self.url("/oauth/callback")),
            "{callback_url}"
        );
        let callback = answer(client.get(&callback_url)).await;
        let polled = self.poll_session(p, &token, sid).await;
        Connected {
            callback,
            credential_id: polled["connectCredentialId"].as_str().map(str::to_owned),
        }
    }

    pub async fn poll_session(&self, p: &Project, token: &str, sid: &str) -> Value {
        let path = format!("/projects/{}/sdk/actions/session-id/{sid}", p.id);
        let polled = self.send(Method::GET, &path, Some(token), None).await;
        polled.assert_status(200);
        polled.body
    }

    /// A proxy call through the SDK route.
    pub async fn proxy(
        &self,
        p: &Project,
        token: &str,
        method: Method,
        integration_and_path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let url = self.url(&format!(
            "/projects/{}/sdk/proxy/{integration_and_path}",
            p.id
        ));
        let mut request = self.client.request(method, url).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "auto")
                .body(body.to_string());
        }
        answer(request).await
    }
}
