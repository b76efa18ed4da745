//! Grants, client authentication, revocation, expiry and the API.

use std::time::Duration;

use plugboard_sandbox::{SandboxClient, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::*;

#[tokio::test]
async fn code_flow_with_pkce_and_auto_approve() {
    let h = start(config()).await;
    let code = h.code().await;
    assert!(code.starts_with("sbx_code_"));
    let response = h.exchange(&code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(str_of(&body, "access_token").starts_with("sbx_at_"));
    assert!(str_of(&body, "refresh_token").starts_with("sbx_rt_"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    let account = json!({"id": "acct_1", "name": "Sandbox User"});
    assert_eq!(body["account"], account);

    let me = h.me(str_of(&body, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap(), account);
    assert_eq!(h.sandbox.stats().authorization_code_grants, 1);
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let h = start(config()).await;
    let code = h.code().await;
    let wrong = "another-verifier-of-at-least-forty-three-characters-xyz";
    let response = h.exchange(&code, wrong).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    let code = h.code().await;
    let missing = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
    ];
    let response = h.token(APP, &missing).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    assert_eq!(h.sandbox.stats().authorization_code_grants, 0);
}

#[tokio::test]
async fn reused_code_and_other_redirect_uri_are_invalid_grant() {
    let h = start(config()).await;
    let code = h.code().await;
    assert_eq!(h.exchange(&code, VERIFIER).await.status(), StatusCode::OK);
    let again = h.exchange(&code, VERIFIER).await;
    assert_eq!(
        oauth_error(again, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );

    let code = h.code().await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:9/other"),
        ("code_verifier", VERIFIER),
    ];
    let response = h.token(APP, &pairs).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    let h = start(config()).await;
    let first = h.tokens().await;
    let old = str_of(&first, "refresh_token");
    let response = h.refresh(old).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    let new = str_of(&second, "refresh_token");
    assert_ne!(new, old);
    assert_eq!(second["account"]["id"], "acct_1");
    assert_eq!(second["scope"], "read write");

    let reused = h.refresh(old).await;
    assert_eq!(
        oauth_error(reused, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    assert_eq!(h.refresh(new).await.status(), StatusCode::OK);
    assert_eq!(h.sandbox.stats().refresh_grants, 2);
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_token() {
    let h = start(SandboxConfig {
        rotate_refresh_tokens: false,
        ..config()
    })
    .await;
    let tokens = h.tokens().await;
    let refresh_token = str_of(&tokens, "refresh_token");
    for _ in 0..2 {
        let body: Value = h.refresh(refresh_token).await.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(str_of(&body, "access_token").starts_with("sbx_at_"));
    }
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_not_widen_it() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", str_of(&tokens, "refresh_token")),
        ("scope", "read admin"),
    ];
    let response = h.token(APP, &pairs).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_scope"
    );
    let pairs = [pairs[0], pairs[1], ("scope", "read")];
    let body: Value = h.token(APP, &pairs).await.json().await.unwrap();
    assert_eq!(body["scope"], "read");
}

#[tokio::test]
async fn revoked_refresh_tokens_give_invalid_grant() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    h.sandbox.faults().revoke_all_refresh_tokens();
    let response = h.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn client_credentials_gives_a_token_for_the_client() {
    let h = start(config()).await;
    let response = h
        .token(
            APP,
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "read");
    let me: Value = h
        .me(str_of(&body, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({"id": "client_app", "name": "app"}));
    assert_eq!(h.sandbox.stats().client_credentials_grants, 1);
}

#[tokio::test]
async fn client_authentication_by_basic_or_post() {
    let h = start(config()).await;
    let grant = [("grant_type", "client_credentials")];
    let basic = h.token(Auth::Basic(CLIENT, SECRET), &grant).await;
    assert_eq!(basic.status(), StatusCode::OK);
    assert_eq!(h.token(APP, &grant).await.status(), StatusCode::OK);

    for auth in [Auth::Basic(CLIENT, "wrong"), Auth::Post(CLIENT, "wrong")] {
        let response = h.token(auth, &grant).await;
        assert!(response.headers().contains_key("www-authenticate"));
        let error = oauth_error(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(error, "invalid_client");
    }
    let unknown = h.token(Auth::Post("nobody", SECRET), &grant).await;
    let error = oauth_error(unknown, StatusCode::UNAUTHORIZED).await;
    assert_eq!(error, "invalid_client");

    let both = [grant[0], ("client_secret", SECRET)];
    let response = h.token(Auth::Basic(CLIENT, SECRET), &both).await;
    let error = oauth_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn basic_credentials_are_form_decoded_and_public_clients_need_no_secret() {
    let h = start(config()).await;
    h.sandbox
        .add_client(SandboxClient::new("a b", "p&ss:w", Vec::new()));
    h.sandbox
        .add_client(SandboxClient::new("spa", "", Vec::new()));
    let grant = [("grant_type", "client_credentials")];
    let encoded = Auth::Basic("a+b", "p%26ss%3Aw");
    assert_eq!(h.token(encoded, &grant).await.status(), StatusCode::OK);
    let public = [grant[0], ("client_id", "spa")];
    let response = h.http.post(h.url("/oauth/token")).form(&public);
    assert_eq!(response.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn unsupported_grant_type_and_non_form_bodies() {
    let h = start(config()).await;
    let response = h.token(APP, &[("grant_type", "password")]).await;
    let error = oauth_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "unsupported_grant_type");

    let json_body = json!({"grant_type": "client_credentials", "client_id": CLIENT});
    let response = h.http.post(h.url("/oauth/token")).json(&json_body);
    let response = response.send().await.unwrap();
    let error = oauth_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_request");
    assert_eq!(h.sandbox.stats().token_requests_total, 2);
}

async fn revoke(h: &Harness, token: &str) -> StatusCode {
    let form = [
        ("token", token),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ];
    let request = h.http.post(h.url("/oauth/revoke")).form(&form);
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn revoked_access_token_is_refused_and_recorded() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    let access = str_of(&tokens, "access_token");
    assert_eq!(h.me(access).await.status(), StatusCode::OK);
    assert_eq!(revoke(&h, access).await, StatusCode::OK);
    let me = h.me(access).await;
    assert!(
        me.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        oauth_error(me, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );

    assert_eq!(revoke(&h, "sbx_at_unknown").await, StatusCode::OK);
    let stats = h.sandbox.stats();
    assert_eq!(stats.revocations, 2);
    assert_eq!(stats.revoked_tokens, [access, "sbx_at_unknown"]);
    // The refresh token survives an access token's revocation.
    assert_eq!(
        h.refresh(str_of(&tokens, "refresh_token")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    let refresh_token = str_of(&tokens, "refresh_token");
    assert_eq!(revoke(&h, refresh_token).await, StatusCode::OK);
    let me = h.me(str_of(&tokens, "access_token")).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let response = h.refresh(refresh_token).await;
    let error = oauth_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn expired_access_tokens_are_refused_until_refreshed() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    h.sandbox.expire_access_tokens();
    let me = h.me(str_of(&tokens, "access_token")).await;
    assert_eq!(
        oauth_error(me, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
    let refreshed: Value = h
        .refresh(str_of(&tokens, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let me = h.me(str_of(&refreshed, "access_token")).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn short_ttl_expires_by_itself() {
    let h = start(SandboxConfig {
        access_token_ttl: Duration::from_millis(200),
        ..config()
    })
    .await;
    let tokens: Value = h.client_credentials().await.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let me = h.me(str_of(&tokens, "access_token")).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_token_is_refused() {
    let h = start(config()).await;
    let response = h.get(h.url("/api/me")).await;
    assert_eq!(
        oauth_error(response, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
    assert_eq!(h.sandbox.stats().api_requests, 1);
}

#[tokio::test]
async fn echo_describes_the_request() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    let request = h
        .http
        .put(h.url("/api/echo/a/b?x=1&y=two"))
        .bearer_auth(str_of(&tokens, "access_token"))
        .header("X-Custom", "yes")
        .json(&json!({"k": [1, 2]}));
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/api/echo/a/b");
    assert_eq!(body["query"], "x=1&y=two");
    assert_eq!(body["headers"]["x-custom"], "yes");
    assert!(body["headers"].get("authorization").is_none());
    assert_eq!(body["body"], json!({"k": [1, 2]}));
    assert_eq!(body["account"], "acct_1");

    let request = h
        .http
        .post(h.url("/api/echo"))
        .bearer_auth(str_of(&tokens, "access_token"))
        .body("plain words");
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["path"], "/api/echo");
    assert_eq!(body["body"], "plain words");
}

#[tokio::test]
async fn contacts_are_kept_per_account() {
    let h = start(config()).await;
    let user = h.tokens().await;
    let user = str_of(&user, "access_token");
    let robot: Value = h.client_credentials().await.json().await.unwrap();
    let robot = str_of(&robot, "access_token");

    let new = json!({"name": "Ada", "email": "ada@example.com"});
    let request = h.http.post(h.url("/api/contacts")).bearer_auth(user);
    let response = request.json(&new).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert!(str_of(&created, "id").starts_with("ct_"));
    assert_eq!(created["name"], "Ada");

    let list = |token: &str| {
        h.http
            .get(h.url("/api/contacts"))
            .bearer_auth(token.to_owned())
    };
    let mine: Value = list(user).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine, json!({"contacts": [created]}));
    let theirs: Value = list(robot).send().await.unwrap().json().await.unwrap();
    assert_eq!(theirs, json!({"contacts": []}));

    let bad = h.http.post(h.url("/api/contacts")).bearer_auth(user);
    let response = bad.json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn text_is_plain() {
    let h = start(config()).await;
    let tokens: Value = h.client_credentials().await.json().await.unwrap();
    let request = h.http.get(h.url("/api/text"));
    let response = request
        .bearer_auth(str_of(&tokens, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "hello from the sandbox");
}
