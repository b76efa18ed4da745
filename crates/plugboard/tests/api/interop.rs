//! Interop with an independent OAuth 2.0 authorization server: `oidc-provider` from npm,
//! started on loopback. Authorization code with PKCE, refresh with rotation, and RFC 7009
//! revocation on disconnect, each checked on the server's side too.

use reqwest::Method;
use serde_json::json;

use crate::common::oidc::{OidcOptions, OidcProvider};
use crate::common::*;

#[tokio::test]
async fn plugboard_connects_through_oidc_provider() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.create_project().await;
    let callback = app.url("/oauth/callback");
    // Access tokens live 60 s, inside Plugboard's 300 s margin: each use refreshes first.
    let provider = OidcProvider::start_with(
        &[&callback],
        OidcOptions {
            access_token_ttl: 60,
            ..OidcOptions::default()
        },
    )
    .await;
    let definition = json!({
        "name": "OIDC interop",
        "brand_color": "#222222",
        "category": "crm",
        "api_base_url": provider.issuer,
        "auth": {
            "type": "oauth2",
            "authorization_url": provider.authorization_endpoint,
            "token_url": provider.token_endpoint,
            "revocation_url": provider.revocation_endpoint,
            "default_scopes": ["openid"],
            "token_endpoint_auth": "client_secret_post",
            "pkce": true,
            "refresh": true
        },
        "account_id": { "request": { "path": "/me", "field": "sub" } }
    });
    app.send(
        Method::PUT,
        &format!("/api/v1/projects/{}/integrations/custom.oidc", p.id),
        Some(&p.secret_key),
        Some(&json!({
            "oauthClientId": provider.client_id,
            "oauthClientSecret": provider.client_secret,
            "definition": definition,
        })),
    )
    .await
    .assert_status(200);

    let token = p.token("u1");
    let built = app
        .build_oauth(
            &p,
            &token,
            &[("action", "custom.oidc"), ("oauthMetaKeyId", "interop1")],
        )
        .await;
    built.assert_status(200);
    let redirect = provider
        .approve(built.body["redirectUrl"].as_str().unwrap(), "alice")
        .await;
    assert!(redirect.as_str().starts_with(&callback), "{redirect}");
    let page = answer(app.client.get(redirect.as_str())).await;
    page.assert_status(200);
    let polled = app.poll_session(&p, &token, "interop1").await;
    let credential = polled["connectCredentialId"].as_str().unwrap().to_owned();

    let me = app.get_me(&p, &token).await;
    let entry = &me.body["integrations"]["custom.oidc"];
    assert_eq!(entry["enabled"], true);
    assert_eq!(
        entry["providerId"], "alice",
        "the account id came from userinfo"
    );
    assert_eq!(entry["credentialId"], credential.as_str());

    // Two proxy calls, each after a refresh; oidc-provider rotates refresh tokens and
    // revokes the grant if an old one is replayed, so both working proves the rotated
    // token was stored and used.
    for _ in 0..2 {
        let userinfo = app
            .proxy(&p, &token, Method::GET, "custom.oidc/me", &[], None)
            .await;
        userinfo.assert_status(200);
        assert_eq!(userinfo.body["output"]["sub"], "alice");
    }
    let account = answer(
        app.client
            .get(app.url(&format!(
                "/projects/{}/sdk/credentials?integration=custom.oidc&includeAccountAuth=true",
                p.id
            )))
            .bearer_auth(&token),
    )
    .await;
    let access = account.body["accountAuth"]["OAUTH_ACCESS_TOKEN"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(provider.introspect(&access).await["active"], true);

    // Disconnect revokes the grant at the provider.
    let integration_id = app.get_integrations(&p, &token).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Method::DELETE,
        &format!("/projects/{}/sdk/integrations/{integration_id}", p.id),
        Some(&token),
        None,
    )
    .await
    .assert_status(200);
    assert_eq!(
        provider.introspect(&access).await["active"],
        false,
        "the grant was revoked at the provider"
    );
}

#[tokio::test]
async fn a_denied_consent_at_oidc_provider_is_reported() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.create_project().await;
    let callback = app.url("/oauth/callback");
    let provider = OidcProvider::start(&[&callback]).await;
    let definition = json!({
        "name": "OIDC interop", "brand_color": "#222222", "category": "crm",
        "api_base_url": provider.issuer,
        "auth": {
            "type": "oauth2",
            "authorization_url": provider.authorization_endpoint,
            "token_url": provider.token_endpoint,
            "default_scopes": ["openid"],
            "token_endpoint_auth": "client_secret_post", "pkce": true, "refresh": true
        },
        "account_id": { "request": { "path": "/me", "field": "sub" } }
    });
    app.send(
        Method::PUT,
        &format!("/api/v1/projects/{}/integrations/custom.oidc", p.id),
        Some(&p.secret_key),
        Some(&json!({"oauthClientId": provider.client_id, "oauthClientSecret": provider.client_secret, "definition": definition})),
    )
    .await
    .assert_status(200);
    let token = p.token("u1");
    let built = app
        .build_oauth(
            &p,
            &token,
            &[("action", "custom.oidc"), ("oauthMetaKeyId", "no")],
        )
        .await;
    let redirect = provider
        .deny(built.body["redirectUrl"].as_str().unwrap())
        .await;
    let page = answer(app.client.get(redirect.as_str())).await;
    assert_eq!(page.status.as_u16(), 400);
    let polled = app.poll_session(&p, &token, "no").await;
    assert_eq!(polled["error"]["code"], "access_denied");
}
