//! Self-test of the OAuth interop harness (`tests/common/oidc.rs`) with no Plugboard
//! involved: a client written by hand against the real oidc-provider, so that a failure in
//! a Plugboard interop test can be told apart from a broken harness.

#[path = "common/oidc.rs"]
mod oidc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc::{ClientAuth, OidcOptions, OidcProvider, RefreshTokens};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// Nothing listens here: the harness stops at the redirect without requesting it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";

struct Authorization {
    url: String,
    state: String,
    verifier: String,
}

/// The authorize URL a client would build: code flow, S256 PKCE, a random state.
fn authorization(provider: &OidcProvider, scope: &str, extra: &[(&str, &str)]) -> Authorization {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", provider.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = Url::parse_with_params(&provider.authorization_endpoint, &params).unwrap();
    Authorization {
        url: url.into(),
        state,
        verifier,
    }
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `code` of an approved redirect, after checking it is ours and carries our state.
fn code_of(provider: &OidcProvider, redirect: &Url, authz: &Authorization) -> String {
    assert!(redirect.as_str().starts_with(REDIRECT_URI), "{redirect}");
    assert_eq!(query(redirect, "error"), None, "{redirect}");
    assert_eq!(
        query(redirect, "state").as_deref(),
        Some(authz.state.as_str())
    );
    // RFC 9207: the provider names itself in the redirect.
    assert_eq!(
        query(redirect, "iss").as_deref(),
        Some(provider.issuer.as_str())
    );
    query(redirect, "code").expect("a code in the redirect")
}

/// A token endpoint call with `client_secret_post`, as a plain form post.
async fn token_post(provider: &OidcProvider, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.push(("client_id", provider.client_id.as_str()));
    form.push(("client_secret", provider.client_secret.as_str()));
    let response = reqwest::Client::new()
        .post(&provider.token_endpoint)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("token endpoint {status}: {text:?}: {e}"));
    (status, body)
}

async fn exchange(provider: &OidcProvider, code: &str, verifier: &str) -> Value {
    let (status, body) = token_post(
        provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "code exchange: {body}");
    body
}

async fn refresh(provider: &OidcProvider, refresh_token: &str) -> (StatusCode, Value) {
    token_post(
        provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

fn assert_invalid_grant((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
}

fn str_field<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

async fn userinfo(provider: &OidcProvider, access_token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(&provider.userinfo_endpoint)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn code_flow_userinfo_refresh_and_revocation() {
    let provider = OidcProvider::start(&[REDIRECT_URI]).await;
    let authz = authorization(&provider, "openid offline_access", &[("prompt", "consent")]);
    let redirect = provider.approve(&authz.url, "alice").await;
    let code = code_of(&provider, &redirect, &authz);

    let tokens = exchange(&provider, &code, &authz.verifier).await;
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], "openid offline_access", "{tokens}");
    assert_eq!(tokens["expires_in"], 3600, "{tokens}");
    let access = str_field(&tokens, "access_token");
    let first_refresh = str_field(&tokens, "refresh_token");

    let (status, me) = userinfo(&provider, access).await;
    assert_eq!(
        (status, &me["sub"]),
        (StatusCode::OK, &Value::from("alice")),
        "{me}"
    );

    // A code is single-use: replaying it fails (and makes the provider revoke the grant,
    // so this comes last in the other tests).
    let (status, body) = token_post(
        &provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", authz.verifier.as_str()),
        ],
    )
    .await;
    assert_invalid_grant((status, body), "code replay");

    // The replay above revoked everything: start a second grant for the refresh checks.
    let authz = authorization(&provider, "openid offline_access", &[("prompt", "consent")]);
    let redirect = provider.approve(&authz.url, "alice").await;
    let tokens = exchange(
        &provider,
        &code_of(&provider, &redirect, &authz),
        &authz.verifier,
    )
    .await;
    let first_refresh_2 = str_field(&tokens, "refresh_token").to_owned();
    assert_ne!(first_refresh_2, first_refresh);

    let (status, refreshed) = refresh(&provider, &first_refresh_2).await;
    assert_eq!(status, StatusCode::OK, "refresh: {refreshed}");
    let rotated = str_field(&refreshed, "refresh_token");
    assert_ne!(rotated, first_refresh_2, "refresh tokens rotate on use");
    let (status, _) = userinfo(&provider, str_field(&refreshed, "access_token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(provider.introspect(rotated).await["active"], true);
    assert_eq!(
        provider.introspect(&first_refresh_2).await["active"],
        false,
        "rotated out"
    );

    // RFC 7009: 200 with an empty body; the token and the grant's access tokens are dead.
    let response = provider
        .client_post(
            &provider.revocation_endpoint,
            &[("token", rotated), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(provider.introspect(rotated).await["active"], false);
    let (status, _) = userinfo(&provider, str_field(&refreshed, "access_token")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoking the refresh token revokes the grant"
    );
    assert_invalid_grant(
        refresh(&provider, rotated).await,
        "refresh with a revoked token",
    );
    assert_invalid_grant(
        refresh(&provider, &first_refresh_2).await,
        "refresh with a rotated-out token",
    );
}

#[tokio::test]
async fn replaying_a_rotated_refresh_token_fails_and_revokes_the_grant() {
    let provider = OidcProvider::start(&[REDIRECT_URI]).await;
    let authz = authorization(&provider, "openid", &[]);
    let redirect = provider.approve(&authz.url, "bob").await;
    let tokens = exchange(
        &provider,
        &code_of(&provider, &redirect, &authz),
        &authz.verifier,
    )
    .await;
    // REFRESH_TOKENS=always: a refresh token without offline_access.
    let old = str_field(&tokens, "refresh_token");

    let (status, refreshed) = refresh(&provider, old).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new = str_field(&refreshed, "refresh_token");
    assert_invalid_grant(
        refresh(&provider, old).await,
        "replay of a rotated-out refresh token",
    );
    // Replay detection: the whole grant is gone, the new refresh token with it.
    assert_eq!(provider.introspect(new).await["active"], false);
    assert_invalid_grant(
        refresh(&provider, new).await,
        "refresh after a detected replay",
    );
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let provider = OidcProvider::start(&[REDIRECT_URI]).await;
    let authz = authorization(&provider, "openid", &[]);
    let redirect = provider.deny(&authz.url).await;
    assert!(redirect.as_str().starts_with(REDIRECT_URI), "{redirect}");
    assert_eq!(
        query(&redirect, "error").as_deref(),
        Some("access_denied"),
        "{redirect}"
    );
    assert_eq!(
        query(&redirect, "state").as_deref(),
        Some(authz.state.as_str())
    );
    assert_eq!(query(&redirect, "code"), None);
}

#[tokio::test]
async fn basic_auth_short_ttl_and_the_offline_access_rule() {
    let options = OidcOptions {
        client_auth: ClientAuth::Basic,
        access_token_ttl: 60,
        refresh_tokens: RefreshTokens::OfflineAccess,
        extra_scopes: vec!["files.read".into()],
        ..OidcOptions::default()
    };
    let provider = OidcProvider::start_with(&[REDIRECT_URI], options).await;

    // A pure OAuth 2.0 request (no openid), without offline_access: no refresh token.
    let authz = authorization(&provider, "files.read", &[]);
    let redirect = provider.approve(&authz.url, "carol").await;
    let code = code_of(&provider, &redirect, &authz);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", authz.verifier.as_str()),
    ];
    let response = provider.client_post(&provider.token_endpoint, &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 60, "{tokens}");
    assert_eq!(tokens["scope"], "files.read", "{tokens}");
    assert_eq!(tokens.get("refresh_token"), None, "{tokens}");
    assert_eq!(tokens.get("id_token"), None, "{tokens}");
    // userinfo wants the openid scope.
    let (status, body) = userinfo(&provider, str_field(&tokens, "access_token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The same client may also use client_secret_post: authentication passes, the grant
    // does not. A wrong secret is invalid_client.
    assert_invalid_grant(
        token_post(
            &provider,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await,
        "client_secret_post with an unknown refresh token",
    );
    let wrong = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", provider.client_id.as_str()),
        ("client_secret", "wrong"),
    ];
    let response = reqwest::Client::new()
        .post(&provider.token_endpoint)
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");

    // offline_access with prompt=consent: a refresh token.
    let authz = authorization(&provider, "openid offline_access", &[("prompt", "consent")]);
    let redirect = provider.approve(&authz.url, "carol").await;
    let code = code_of(&provider, &redirect, &authz);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", authz.verifier.as_str()),
    ];
    let tokens: Value = provider
        .client_post(&provider.token_endpoint, &form)
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
}
