//! The consent page: the form round trip, Deny, refusals, escaping, mounting under a prefix.

use axum::Router;
use plugboard_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::*;

fn with_consent() -> SandboxConfig {
    SandboxConfig {
        auto_approve: false,
        ..config()
    }
}

/// The hidden inputs of a page, unescaped, as a browser would post them.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + tag[start..].find('"')?;
        Some(unescape(&tag[start..end]))
    };
    html.split("<input type=\"hidden\"")
        .skip(1)
        .map(|tag| {
            (
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap(),
            )
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Loads the consent page at `url` and submits it with `decision`, as the form would.
async fn submit(h: &Harness, url: Url, decision: &str, account: &str) -> reqwest::Response {
    let page = h.get(url.clone()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"authorize\""));
    let mut form = hidden_fields(&html);
    form.push(("account_name".into(), account.into()));
    form.push(("decision".into(), decision.into()));
    let action = url.join("authorize").unwrap();
    h.http.post(action).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn consent_page_shows_the_request_and_says_development_only() {
    let h = start(with_consent()).await;
    let response = h.get(h.authorize_url("contacts.read", "s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("content-security-policy"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Sandbox provider — development only"));
    assert!(html.contains(CLIENT));
    assert!(html.contains("contacts.read"));
    assert!(html.contains("value=\"Sandbox User\""));
    assert!(html.contains(">Allow</button>") && html.contains(">Deny</button>"));
}

#[tokio::test]
async fn allow_through_the_form_then_exchange_with_basic_auth() {
    let h = start(with_consent()).await;
    let state = "a&b=c \"quoted\"";
    let response = submit(&h, h.authorize_url("read", state), "allow", "Ada").await;
    let back = location(&response);
    assert_eq!(query_param(&back, "state").as_deref(), Some(state));
    let code = query_param(&back, "code").unwrap();
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let response = h.token(Auth::Basic(CLIENT, SECRET), &pairs).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["account"]["name"], "Ada");
    let first_id = body["account"]["id"].clone();

    // The same name is the same account; another name, another one.
    let again = submit(&h, h.authorize_url("read", "s"), "allow", "Ada").await;
    assert!(query_param(&location(&again), "code").is_some());
    let other = submit(&h, h.authorize_url("read", "s"), "allow", "Bob").await;
    let code = query_param(&location(&other), "code").unwrap();
    let body: Value = h.exchange(&code, VERIFIER).await.json().await.unwrap();
    assert_eq!(first_id, "acct_1");
    assert_eq!(body["account"]["id"], "acct_2");
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let h = start(with_consent()).await;
    let response = submit(&h, h.authorize_url("read", "st-9"), "deny", "Ada").await;
    let location = location(&response);
    assert!(location.as_str().starts_with(REDIRECT));
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-9"));
    assert!(query_param(&location, "code").is_none());
}

#[tokio::test]
async fn unverified_redirect_uris_and_unknown_clients_get_a_page_not_a_redirect() {
    let h = start(config()).await;
    let mut url = h.authorize_url("read", "s");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for (name, value) in [
        ("redirect_uri", "https://evil.example/cb"),
        ("client_id", "nobody"),
    ] {
        url.query_pairs_mut().clear().extend_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), if k == name { value } else { v })),
        );
        let response = h.get(url.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(!response.headers().contains_key("location"));
        let html = response.text().await.unwrap();
        assert!(html.contains("development only"));
    }
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_are_redirected() {
    let h = start(config()).await;
    let mut url = h.authorize_url("read", "s");
    url.query_pairs_mut()
        .clear()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge(VERIFIER))
        .append_pair("code_challenge_method", "plain");
    let back = location(&h.get(url.clone()).await);
    let error = query_param(&back, "error");
    assert_eq!(error.as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&back, "state").as_deref(), Some("s"));

    let token_url = url
        .as_str()
        .replace("response_type=code", "response_type=token");
    let back = location(&h.get(token_url).await);
    let error = query_param(&back, "error");
    assert_eq!(error.as_deref(), Some("unsupported_response_type"));
}

#[tokio::test]
async fn scope_and_state_are_escaped_in_the_page() {
    let h = start(with_consent()).await;
    let url = h.authorize_url(
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
    );
    let html = h.get(url).await.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
}

#[tokio::test]
async fn works_when_nested_under_a_prefix() {
    let sandbox = Sandbox::new(with_consent());
    let app = Router::new().nest("/sandbox", sandbox.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sandbox", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = Harness {
        sandbox,
        base,
        http: client(),
    };

    let response = submit(&h, h.authorize_url("read", "s"), "allow", "Ada").await;
    let code = query_param(&location(&response), "code").unwrap();
    let body: Value = h.exchange(&code, VERIFIER).await.json().await.unwrap();
    let token = str_of(&body, "access_token");
    let echo = h.http.get(h.url("/api/echo/x")).bearer_auth(token);
    let echo: Value = echo.send().await.unwrap().json().await.unwrap();
    assert_eq!(echo["path"], "/sandbox/api/echo/x");
}
