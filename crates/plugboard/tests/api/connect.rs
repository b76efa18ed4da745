//! Connecting accounts against a fake OAuth provider over real HTTP: the round trip with
//! PKCE, credentials at rest, refresh (proactive, on a 401, rotated, refused, transient),
//! revocation on disconnect, several accounts, and the proxy.

use plugboard_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::provider::{self, FakeProvider, no_redirects};
use crate::common::*;

const SID: &str = "k3v9q0w1";

async fn connected_app(backend: Backend) -> (TestApp, Project, FakeProvider, String) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    let done = app
        .connect_oauth(&p, "u1", "custom.crm", SID, json!({}), "Ada")
        .await;
    done.callback.assert_status(200);
    // The callback page tells the SDK's window, at the origin the SDK gave, and closes.
    assert!(done.callback.text.contains("oauth_success_callback"));
    assert!(done.callback.text.contains("\"http://app.example\""));
    assert!(done.callback.text.contains("window.close"));
    let credential = done
        .credential_id
        .expect("the poll names the new credential");
    (app, p, provider, credential)
}

async fn create_link(app: &TestApp, p: &Project, body: Value) -> String {
    let created = app
        .send(
            Method::POST,
            &format!("/api/v1/projects/{}/users/u1/connect-links", p.id),
            Some(&p.secret_key),
            Some(&body),
        )
        .await;
    created.assert_status(201);
    created.body["url"].as_str().unwrap().to_owned()
}

/// The form token a connect link's page carries.
fn hidden_form_token(html: &str) -> String {
    let marker = "name=\"formToken\" value=\"";
    let start = html.find(marker).expect("the page has a form token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Presses Connect on a link's page, as the browser sends it (same origin); returns
/// where it redirects: the provider's authorization URL.
async fn confirm_link(
    app: &TestApp,
    link: &str,
    form_token: &str,
    inputs: &[(&str, &str)],
) -> String {
    let mut form = vec![("formToken", form_token)];
    form.extend_from_slice(inputs);
    let origin = app.url("").trim_end_matches('/').to_owned();
    let confirmed = answer(
        no_redirects()
            .post(link)
            .header("origin", origin)
            .header("sec-fetch-site", "same-origin")
            .form(&form),
    )
    .await;
    assert_eq!(confirmed.status.as_u16(), 303, "{}", confirmed.text);
    confirmed.header("location").unwrap().to_owned()
}

/// The auto-approving provider's consent, then Plugboard's callback: where it lands.
async fn finish_at_provider(authorize: &str) -> String {
    let client = no_redirects();
    let back = client.get(authorize).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = client.get(&callback).send().await.unwrap();
    match done.headers().get("location") {
        Some(landed) => landed.to_str().unwrap().to_owned(),
        None => {
            assert_eq!(done.status(), 200);
            callback
        }
    }
}

/// The message the OAuth callback page posts to its opener.
fn posted_message(html: &str) -> Value {
    let start = html.find("postMessage(").expect("the page posts a message") + "postMessage(".len();
    let end = html[start..]
        .find(",\"http://app.example\")")
        .expect("to the SDK's origin");
    serde_json::from_str(&html[start..start + end]).unwrap()
}

/// A provider whose every URL depends on a user input, as Zendesk's `{subdomain}`.
fn desk_definition(provider: &FakeProvider) -> Value {
    let mut definition = provider.oauth_definition();
    definition["name"] = json!("Fake Desk");
    definition["user_inputs"] = json!([{
        "key": "subdomain", "label": "Desk subdomain", "pattern": "[a-z0-9][a-z0-9-]*",
        "help": "The part before .desk.example in your address."
    }]);
    definition["auth"]["authorization_url"] = json!(format!(
        "{}/oauth/authorize?tenant={{subdomain}}",
        provider.base
    ));
    definition
}

backend_tests! {
    async fn oauth_round_trip_stores_an_encrypted_credential(backend) {
        let (app, p, provider, credential) = connected_app(backend).await;
        let token = p.token("u1");

        let stats = provider.sandbox.stats();
        assert_eq!(stats.authorization_code_grants, 1, "the code was exchanged once, with PKCE");

        let got = app
            .send(Method::GET, &format!("/projects/{}/sdk/credentials/{credential}", p.id), Some(&token), None)
            .await;
        got.assert_status(200);
        assert_eq!(got.body["status"], "VALID");
        assert!(got.body["providerId"].as_str().unwrap().starts_with("acct_"));
        assert_eq!(got.body["configurations"][0]["isDefault"], true);

        let me = app.get_me(&p, &token).await;
        let entry = &me.body["integrations"]["custom.crm"];
        assert_eq!(entry["enabled"], true);
        assert_eq!(entry["credentialId"], credential.as_str());

        // The access and refresh tokens are nowhere in the database in clear.
        let raw = raw_database_text(&app).await;
        assert!(raw.contains(&credential), "the dump holds the credential row");
        assert!(!raw.contains("sbx_at_"), "an access token is stored in clear");
        assert!(!raw.contains("sbx_rt_"), "a refresh token is stored in clear");
        assert!(!raw.contains(provider::CLIENT_SECRET), "the client secret is stored in clear");

        // The SDK's postMessage path confirms the same credential, idempotently.
        let integration_id = got.body["integrationId"].as_str().unwrap();
        for _ in 0..2 {
            let confirmed = app
                .send(
                    Method::POST,
                    &format!("/projects/{}/sdk/credentials", p.id),
                    Some(&token),
                    Some(&json!({"integrationId": integration_id, "config": {}, "payload": {"connectCredentialId": credential}, "installOptions": {}})),
                )
                .await;
            confirmed.assert_status(200);
            assert_eq!(confirmed.body["id"], credential.as_str());
        }
        let listed = app
            .send(Method::GET, &format!("/projects/{}/sdk/credentials", p.id), Some(&token), None)
            .await;
        assert_eq!(listed.body.as_array().unwrap().len(), 1);

        // Polling is over: the SDK forgets the session.
        let forgot = app
            .send(Method::DELETE, &format!("/projects/{}/sdk/actions/session-id/{SID}", p.id), Some(&token), None)
            .await;
        forgot.assert_status(200);
        assert_eq!(app.poll_session(&p, &token, SID).await, json!({}));
    }

    async fn a_state_works_once_and_forged_ones_not_at_all(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        let token = p.token("u1");
        let built = app.build_oauth(&p, &token, &[("action", "custom.crm"), ("oauthMetaKeyId", "s1")]).await;
        built.assert_status(200);
        let authorize = url::Url::parse(built.body["redirectUrl"].as_str().unwrap()).unwrap();
        let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["client_id"], provider::CLIENT_ID);
        assert_eq!(query["redirect_uri"], app.url("/oauth/callback"));
        assert_eq!(query["scope"], "contacts.read contacts.write");

        let hop = no_redirects().get(authorize.as_str()).send().await.unwrap();
        let callback = hop.headers()["location"].to_str().unwrap().to_owned();
        answer(app.client.get(&callback)).await.assert_status(200);
        // A replay of the same redirect is refused, and stores nothing.
        let replay = answer(app.client.get(&callback)).await;
        assert_eq!(replay.status.as_u16(), 400);
        assert!(replay.text.contains("unknown, already used or expired"), "{}", replay.text);

        let state = query["state"].clone();
        let forged = format!("{}x", state);
        let bad = answer(app.client.get(app.url(&format!("/oauth/callback?code=c&state={forged}")))).await;
        assert_eq!(bad.status.as_u16(), 400);
        let missing = answer(app.client.get(app.url("/oauth/callback?code=c"))).await;
        assert_eq!(missing.status.as_u16(), 400);
        assert_eq!(provider.sandbox.stats().authorization_code_grants, 1);
    }

    async fn denied_consent_is_reported_to_the_page_and_the_poll(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        let token = p.token("u1");
        let built = app
            .build_oauth(&p, &token, &[("action", "custom.crm"), ("oauthMetaKeyId", "deny1"), ("originForPostMessage", "http://app.example")])
            .await;
        let authorize = url::Url::parse(built.body["redirectUrl"].as_str().unwrap()).unwrap();
        let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        // What a provider sends when the user clicks "Deny".
        let url = app.url(&format!("/oauth/callback?error=access_denied&error_description=User+said+no&state={state}"));
        let page = answer(app.client.get(url)).await;
        assert_eq!(page.status.as_u16(), 400);
        assert!(page.text.contains("oauth_error_callback"), "{}", page.text);
        assert!(page.text.contains("User said no"));
        assert!(page.text.contains("\"http://app.example\""), "posted to the SDK's origin only");
        let polled = app.poll_session(&p, &token, "deny1").await;
        assert_eq!(polled["status"], "FAILED");
        assert_eq!(polled["error"]["code"], "access_denied");
        assert!(polled.get("connectCredentialId").is_none());
        assert_eq!(app.get_me(&p, &token).await.body["integrations"]["custom.crm"]["enabled"], false);
    }

    async fn proxy_wraps_relays_and_refreshes_on_401(backend) {
        let (app, p, provider, credential) = connected_app(backend).await;
        let token = p.token("u1");
        let echoed = app
            .proxy(&p, &token, Method::POST, "custom.crm/echo/items?limit=2", &[("x-custom", "kept"), ("x-paragon-credential", &credential)], Some(&json!({"name": "A"})))
            .await;
        echoed.assert_status(200);
        let output = &echoed.body["output"];
        assert_eq!(output["method"], "POST");
        assert!(output["path"].as_str().unwrap().ends_with("/api/echo/items"));
        assert_eq!(output["query"], "limit=2");
        assert_eq!(output["body"], json!({"name": "A"}));
        assert_eq!(output["headers"]["x-custom"], "kept");
        assert_eq!(output["headers"]["content-type"], "application/json");
        assert!(output["headers"].get("x-paragon-credential").is_none());

        // Raw answers on request; text passes through as text.
        let raw = app.proxy(&p, &token, Method::GET, "custom.crm/text", &[("x-paragon-use-raw-response", "1")], None).await;
        raw.assert_status(200);
        assert_eq!(raw.text, "hello from the sandbox");
        let wrapped = app.proxy(&p, &token, Method::GET, "custom.crm/text", &[], None).await;
        assert_eq!(wrapped.body, json!({"output": "hello from the sandbox"}));

        // The provider refuses the token once: one refresh, one retry, success.
        provider.sandbox.faults().api_unauthorized(1);
        let retried = app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await;
        retried.assert_status(200);
        assert_eq!(provider.sandbox.stats().refresh_grants, 1);

        // 429 passes through with Retry-After.
        provider.sandbox.faults().api_rate_limited(7, 1);
        let limited = app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await;
        assert_eq!(limited.status.as_u16(), 429);
        assert_eq!(limited.header("retry-after"), Some("7"));

        // A path that climbs out of the API base is refused before any call.
        let escape = app.proxy(&p, &token, Method::GET, "custom.crm/..%2F..%2Foauth%2Ftoken", &[], None).await;
        escape.assert_error(400, "invalid_proxy_path");
    }

    async fn expired_tokens_refresh_before_use_and_rotation_is_kept(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        // Tokens live 60 s, inside the 300 s margin: every use refreshes first.
        let provider = FakeProvider::start_with(SandboxConfig {
            access_token_ttl: std::time::Duration::from_secs(60),
            ..SandboxConfig::default()
        })
        .await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.connect_oauth(&p, "u1", "custom.crm", SID, json!({}), "Ada").await;
        let token = p.token("u1");
        for round in 1..=3u64 {
            app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_status(200);
            // Each refresh used the newest (rotated) refresh token: an old one would fail.
            assert_eq!(provider.sandbox.stats().refresh_grants, round);
        }
        let me = app.get_me(&p, &token).await;
        assert_eq!(me.body["integrations"]["custom.crm"]["allCredentials"][0]["refreshFailureCount"], 0);
    }

    async fn transient_refresh_failures_are_retried(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start_with(SandboxConfig {
            access_token_ttl: std::time::Duration::from_secs(60),
            ..SandboxConfig::default()
        })
        .await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.connect_oauth(&p, "u1", "custom.crm", SID, json!({}), "Ada").await;
        let token = p.token("u1");
        provider.sandbox.faults().fail_token_with_status(500, 1);
        provider.sandbox.faults().token_rate_limited(1, 1);
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_status(200);
        assert_eq!(provider.sandbox.stats().refresh_grants, 1);

        // Failing every try: 502 now, the credential stays VALID for later.
        provider.sandbox.faults().fail_token_with_status(503, 3);
        let failed = app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await;
        failed.assert_error(502, "upstream_unavailable");
        let me = app.get_me(&p, &token).await;
        let entry = &me.body["integrations"]["custom.crm"];
        assert_eq!(entry["credentialStatus"], "VALID");
        assert_eq!(entry["allCredentials"][0]["refreshFailureCount"], 1);
    }

    async fn invalid_grant_marks_the_credential_invalid(backend) {
        let (app, p, provider, _) = connected_app(backend).await;
        let token = p.token("u1");
        provider.sandbox.faults().revoke_all_refresh_tokens();
        provider.sandbox.expire_access_tokens();
        let refused = app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await;
        refused.assert_error(409, "credential_invalid");
        let entry = &app.get_me(&p, &token).await.body["integrations"]["custom.crm"];
        assert_eq!(entry["enabled"], false);
        assert_eq!(entry["credentialStatus"], "INVALID");
        // No further calls reach the provider until the user reconnects.
        let before = provider.sandbox.stats().token_requests_total;
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_error(409, "credential_invalid");
        assert_eq!(provider.sandbox.stats().token_requests_total, before);
        // Reconnecting renews the same credential.
        let again = app.connect_oauth(&p, "u1", "custom.crm", "again", json!({}), "Ada").await;
        let me = app.get_me(&p, &token).await;
        assert_eq!(me.body["integrations"]["custom.crm"]["credentialId"], again.credential_id.unwrap().as_str());
        assert_eq!(me.body["integrations"]["custom.crm"]["enabled"], true);
    }

    async fn disconnect_revokes_at_the_provider_and_forgets(backend) {
        let (app, p, provider, credential) = connected_app(backend).await;
        let token = p.token("u1");
        let integration_id = app.get_integrations(&p, &token).await.body[0]["id"].as_str().unwrap().to_owned();
        let gone = app
            .send(Method::DELETE, &format!("/projects/{}/sdk/integrations/{integration_id}", p.id), Some(&token), None)
            .await;
        gone.assert_status(200);
        assert_eq!(gone.body["disconnected"], 1);
        let stats = provider.sandbox.stats();
        assert_eq!(stats.revocations, 1);
        assert!(stats.revoked_tokens[0].starts_with("sbx_rt_"), "the refresh token is revoked");
        let entry = &app.get_me(&p, &token).await.body["integrations"]["custom.crm"];
        assert_eq!(entry["enabled"], false);
        app.send(Method::GET, &format!("/projects/{}/sdk/credentials/{credential}", p.id), Some(&token), None)
            .await
            .assert_error(404, "credential_not_found");
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_error(404, "not_connected");
    }

    async fn several_accounts_are_selected_by_header(backend) {
        let (app, p, _provider, first) = connected_app(backend).await;
        let token = p.token("u1");
        let second = app
            .connect_oauth(&p, "u1", "custom.crm", "two", json!({"allowMultipleCredentials": true}), "Grace")
            .await
            .credential_id
            .unwrap();
        assert_ne!(first, second);
        let me = app.get_me(&p, &token).await;
        let entry = &me.body["integrations"]["custom.crm"];
        assert_eq!(entry["allCredentials"].as_array().unwrap().len(), 2);
        assert_eq!(entry["credentialId"], first.as_str(), "the oldest is the default");

        let account_of = |answer: &Answer| answer.body["output"]["account"].as_str().unwrap().to_owned();
        let by_default = app.proxy(&p, &token, Method::GET, "custom.crm/echo", &[], None).await;
        let selected = app.proxy(&p, &token, Method::GET, "custom.crm/echo", &[("x-paragon-credential", &second)], None).await;
        assert_ne!(account_of(&by_default), account_of(&selected));
        // A header naming no credential of this integration is ignored (§E11).
        let stray = uuid::Uuid::new_v4().to_string();
        let ignored = app.proxy(&p, &token, Method::GET, "custom.crm/echo", &[("x-paragon-credential", &stray)], None).await;
        assert_eq!(account_of(&ignored), account_of(&by_default));

        // getIntegrationAccount: one object, the selected account, tokens only on request.
        let account = app
            .client
            .get(app.url(&format!("/projects/{}/sdk/credentials?integration=custom.crm&includeAccountAuth=undefined", p.id)))
            .bearer_auth(&token)
            .header("x-paragon-credential", &second);
        let account = answer(account).await;
        account.assert_status(200);
        assert_eq!(account.body["credentialId"], second.as_str());
        assert!(account.body.get("accountAuth").is_none());
        let with_auth = answer(
            app.client
                .get(app.url(&format!("/projects/{}/sdk/credentials?integration=custom.crm&includeAccountAuth=true", p.id)))
                .bearer_auth(&token),
        )
        .await;
        assert!(with_auth.body["accountAuth"]["OAUTH_ACCESS_TOKEN"].as_str().unwrap().starts_with("sbx_at_"));

        // Disconnecting one account leaves the other.
        let integration_id = app.get_integrations(&p, &token).await.body[0]["id"].as_str().unwrap().to_owned();
        let one = app
            .client
            .delete(app.url(&format!("/projects/{}/sdk/integrations/{integration_id}", p.id)))
            .bearer_auth(&token)
            .header("x-paragon-credential", &second);
        assert_eq!(answer(one).await.body["disconnected"], 1);
        let me = app.get_me(&p, &token).await;
        assert_eq!(me.body["integrations"]["custom.crm"]["allCredentials"].as_array().unwrap().len(), 1);
    }

    async fn credentials_belong_to_their_user_and_project(backend) {
        let (app, p, _provider, credential) = connected_app(backend).await;
        let other = p.token("u2");
        let path = format!("/projects/{}/sdk/credentials/{credential}", p.id);
        app.send(Method::GET, &path, Some(&other), None).await.assert_error(404, "credential_not_found");
        app.send(Method::PATCH, &path, Some(&other), Some(&json!({"config": {"sharedSettings": {"a": 1}}})))
            .await
            .assert_error(404, "credential_not_found");
        app.proxy(&p, &other, Method::GET, "custom.crm/me", &[], None).await.assert_error(404, "not_connected");
        let q = app.create_project().await;
        let foreign = app.send(Method::GET, &format!("/projects/{}/sdk/credentials/{credential}", q.id), Some(&q.token("u1")), None).await;
        foreign.assert_error(404, "credential_not_found");

        // The owner may change the settings; the answer is the credential.
        let mine = app
            .send(Method::PATCH, &path, Some(&p.token("u1")), Some(&json!({"config": {"sharedSettings": {"channel": "C1"}, "workflowSettings": {"wf-1": {"enabled": true}}}})))
            .await;
        mine.assert_status(200);
        assert_eq!(mine.body["configurations"][0]["sharedSettings"], json!({"channel": "C1"}));
        assert_eq!(app.get_me(&p, &p.token("u1")).await.body["integrations"]["custom.crm"]["workflowSettings"]["wf-1"]["enabled"], true);
    }

    async fn management_api_lists_disconnects_and_proxies(backend) {
        let (app, p, provider, credential) = connected_app(backend).await;
        let base = format!("/api/v1/projects/{}/users/u1", p.id);
        let listed = app.send(Method::GET, &format!("{base}/credentials"), Some(&p.secret_key), None).await;
        listed.assert_status(200);
        assert_eq!(listed.body["data"][0]["id"], credential.as_str());
        assert_eq!(listed.body["data"][0]["integration"], "custom.crm");
        assert!(!listed.text.contains("sbx_"), "no token in the management view");

        let proxied = app
            .send(Method::POST, &format!("{base}/proxy/custom.crm/contacts"), Some(&p.secret_key), Some(&json!({"name": "Bo", "email": "bo@example.com"})))
            .await;
        proxied.assert_status(201);
        assert_eq!(proxied.body["output"]["name"], "Bo");
        // The user token cannot call the management twin.
        app.send(Method::GET, &format!("{base}/proxy/custom.crm/me"), Some(&p.token("u1")), None)
            .await
            .assert_status(401);

        let gone = app.send(Method::DELETE, &format!("{base}/integrations/custom.crm"), Some(&p.secret_key), None).await;
        gone.assert_status(200);
        assert_eq!(gone.body["disconnected"], 1);
        assert_eq!(provider.sandbox.stats().revocations, 1);
        let listed = app.send(Method::GET, &format!("{base}/credentials"), Some(&p.secret_key), None).await;
        assert_eq!(listed.body["data"], json!([]));
        app.send(Method::GET, &format!("/api/v1/projects/{}/users/nobody/credentials", p.id), Some(&p.secret_key), None)
            .await
            .assert_error(404, "user_not_found");
    }

    async fn a_connection_is_reported_to_the_sdk_one_way_only(backend) {
        // SDK 2.4.0 fires onIntegrationInstall for the callback page's message and again
        // for its polling; the polls wait for the message (a long wait here).
        let mut config = test_config();
        config.connect.message_grace_ms = 600_000;
        let app = TestApp::spawn_with(backend, config).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        let done = app.connect_oauth(&p, "u1", "custom.crm", SID, json!({}), "Ada").await;
        done.callback.assert_status(200);
        assert_eq!(done.credential_id, None, "the poll leaves the report to the page's message");
        let message = posted_message(&done.callback.text);
        let credential = message["credential"]["payload"]["connectCredentialId"].as_str().unwrap().to_owned();
        // The SDK confirms the message with its payload, as is.
        let token = p.token("u1");
        let confirmed = app
            .send(
                Method::POST,
                &format!("/projects/{}/sdk/credentials", p.id),
                Some(&token),
                Some(&json!({"integrationId": message["credential"]["integrationId"], "config": {},
                             "payload": message["credential"]["payload"], "installOptions": {}})),
            )
            .await;
        confirmed.assert_status(200);
        assert_eq!(confirmed.body["id"], credential.as_str());
        // Polling now ends without naming the credential (the SDK would report it again):
        // the id it gets is in no state, and fetching it answers 204.
        let receipt = app.poll_session(&p, &token, SID).await;
        assert_eq!(receipt["connectCredentialId"], "00000000-0000-0000-0000-000000000000");
        let fetched = app
            .send(Method::GET, &format!("/projects/{}/sdk/credentials/00000000-0000-0000-0000-000000000000", p.id), Some(&token), None)
            .await;
        fetched.assert_status(204);
        // Confirming again changes nothing.
        app.send(
            Method::POST,
            &format!("/projects/{}/sdk/credentials", p.id),
            Some(&token),
            Some(&json!({"integrationId": message["credential"]["integrationId"], "payload": message["credential"]["payload"]})),
        )
        .await
        .assert_status(200);
        assert_eq!(app.poll_session(&p, &token, SID).await, receipt);

        // Without a page to post (no origin given), polling reports at once.
        let built = app
            .build_oauth(&p, &token, &[("action", "custom.crm"), ("oauthMetaKeyId", "no-page")])
            .await;
        built.assert_status(200);
        let landed = finish_at_provider(built.body["redirectUrl"].as_str().unwrap()).await;
        assert!(landed.contains("/oauth/callback"), "{landed}");
        let polled = app.poll_session(&p, &token, "no-page").await;
        assert!(Uuid::try_parse(polled["connectCredentialId"].as_str().unwrap()).is_ok_and(|id| !id.is_nil()), "{polled}");
    }

    async fn connect_links_are_spent_only_by_the_users_confirmation(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.put_user(&p, "u1", json!({"Email": "u1@example.com"})).await.assert_status(201);
        let link = create_link(&app, &p, json!({"integration": "custom.crm", "returnUrl": "https://app.example/done"})).await;
        assert!(link.starts_with(&app.url("/connect/")));
        let client = no_redirects();
        // A link scanner (or the user) opening the link twice spends nothing.
        let mut form_token = String::new();
        for _ in 0..2 {
            let page = answer(client.get(&link)).await;
            assert_eq!(page.status.as_u16(), 200, "{}", page.text);
            assert!(page.header("location").is_none());
            assert!(page.text.contains("Connect Fake CRM"), "{}", page.text);
            assert!(page.text.contains("<button type=\"submit\">Connect</button>"));
            assert!(!page.text.contains("<script"), "the page needs no script");
            form_token = hidden_form_token(&page.text);
        }
        // A confirmation without the page's token, or posted from another site, is
        // refused and spends nothing.
        let forged = answer(client.post(&link).form(&[("formToken", "forged")])).await;
        assert_eq!(forged.status.as_u16(), 403, "{}", forged.text);
        let cross_site = answer(
            client.post(&link).header("sec-fetch-site", "cross-site").form(&[("formToken", form_token.as_str())]),
        )
        .await;
        assert_eq!(cross_site.status.as_u16(), 403);
        let other_origin = answer(
            client.post(&link).header("origin", "https://evil.example").form(&[("formToken", form_token.as_str())]),
        )
        .await;
        assert_eq!(other_origin.status.as_u16(), 403);

        let authorize = confirm_link(&app, &link, &form_token, &[]).await;
        assert!(authorize.starts_with(&provider.base), "{authorize}");
        let landed = finish_at_provider(&authorize).await;
        assert!(landed.starts_with("https://app.example/done?status=connected&credentialId="), "{landed}");
        assert_eq!(app.get_me(&p, &p.token("u1")).await.body["integrations"]["custom.crm"]["enabled"], true);

        let again = answer(client.post(&link).form(&[("formToken", form_token.as_str())])).await;
        assert_eq!(again.status.as_u16(), 410);
        let reused = answer(client.get(&link)).await;
        assert_eq!(reused.status.as_u16(), 410);
        let unknown = answer(client.get(app.url("/connect/not-a-link"))).await;
        assert_eq!(unknown.status.as_u16(), 410);
        app.send(Method::POST, &format!("/api/v1/projects/{}/users/ghost/connect-links", p.id), Some(&p.secret_key), Some(&json!({"integration": "custom.crm"})))
            .await
            .assert_error(404, "user_not_found");
    }

    async fn a_connect_link_refused_by_the_plan_stays_usable(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.send(
            Method::PUT,
            &format!("/api/v1/projects/{}/policy", p.id),
            Some(&p.secret_key),
            Some(&json!({"entitlements": {"integrations": {"custom.crm": "user.meta.plan == \"pro\""}}})),
        )
        .await
        .assert_status(200);
        app.put_user(&p, "u1", json!({"plan": "pro"})).await.assert_status(201);
        let link = create_link(&app, &p, json!({"integration": "custom.crm"})).await;
        let client = no_redirects();
        let token = hidden_form_token(&answer(client.get(&link)).await.text);
        app.patch_user(&p, "u1", json!({"plan": "basic"})).await.assert_status(200);
        let refused = answer(
            client.post(&link).header("sec-fetch-site", "same-origin").form(&[("formToken", token.as_str())]),
        )
        .await;
        assert_eq!(refused.status.as_u16(), 402, "{}", refused.text);
        assert_eq!(answer(client.get(&link)).await.status.as_u16(), 200, "still usable");
        app.patch_user(&p, "u1", json!({"plan": "pro"})).await.assert_status(200);
        let authorize = confirm_link(&app, &link, &token, &[]).await;
        assert!(authorize.starts_with(&provider.base), "{authorize}");
    }

    async fn connect_links_take_the_providers_inputs(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "desk", desk_definition(&provider)).await;
        app.put_user(&p, "u1", json!({})).await.assert_status(201);
        let links = format!("/api/v1/projects/{}/users/u1/connect-links", p.id);
        for (inputs, field) in [
            (json!({"subdomain": "Not A Subdomain!"}), "inputs.subdomain"),
            (json!({"subdomain": ""}), "inputs.subdomain"),
            (json!({"subdomain": "a".repeat(256)}), "inputs.subdomain"),
            (json!({"tenant": "acme"}), "inputs.tenant"),
        ] {
            let refused = app
                .send(Method::POST, &links, Some(&p.secret_key), Some(&json!({"integration": "custom.desk", "inputs": inputs})))
                .await;
            refused.assert_error(422, "invalid_input");
            assert!(refused.body["message"].as_str().unwrap().contains(field), "{}", refused.body);
        }

        // Given when the link is created: the page asks for nothing more.
        let link = create_link(&app, &p, json!({"integration": "custom.desk", "inputs": {"subdomain": "acme"}})).await;
        let page = answer(no_redirects().get(&link)).await;
        assert_eq!(page.status.as_u16(), 200);
        assert!(!page.text.contains("inputs.subdomain"), "{}", page.text);
        let authorize = confirm_link(&app, &link, &hidden_form_token(&page.text), &[]).await;
        assert!(authorize.contains("tenant=acme"), "{authorize}");
        assert!(finish_at_provider(&authorize).await.contains("/oauth/callback"));

        // Typed on the page: a bad value shows the page again, the link still usable.
        let link = create_link(&app, &p, json!({"integration": "custom.desk"})).await;
        let client = no_redirects();
        let page = answer(client.get(&link)).await;
        assert!(page.text.contains("name=\"inputs.subdomain\""), "{}", page.text);
        assert!(page.text.contains("Desk subdomain"));
        let token = hidden_form_token(&page.text);
        for (typed, reason) in [("<b>no</b>", "must match"), ("", "must not be empty")] {
            let refused = answer(client.post(&link).form(&[("formToken", token.as_str()), ("inputs.subdomain", typed)])).await;
            assert_eq!(refused.status.as_u16(), 422, "{}", refused.text);
            assert!(refused.text.contains("inputs.subdomain"), "{}", refused.text);
            assert!(refused.text.contains(reason), "{}", refused.text);
            assert!(!refused.text.contains("<b>no</b>"), "typed text is escaped");
        }
        let missing = answer(client.post(&link).form(&[("formToken", token.as_str())])).await;
        assert_eq!(missing.status.as_u16(), 422);
        assert!(missing.text.contains("inputs.subdomain (Desk subdomain) is required"), "{}", missing.text);
        assert_eq!(answer(client.get(&link)).await.status.as_u16(), 200, "still usable");
        let authorize = confirm_link(&app, &link, &token, &[("inputs.subdomain", "globex")]).await;
        assert!(authorize.contains("tenant=globex"), "{authorize}");
        assert!(finish_at_provider(&authorize).await.contains("/oauth/callback"));
        assert_eq!(answer(client.get(&link)).await.status.as_u16(), 410);

        // The catalog's Zendesk: every URL is on the customer's subdomain.
        app.send(
            Method::PUT,
            &format!("/api/v1/projects/{}/integrations/zendesk", p.id),
            Some(&p.secret_key),
            Some(&json!({"oauthClientId": "zd-client", "oauthClientSecret": "zd-secret"})),
        )
        .await
        .assert_status(200);
        let refused = app
            .send(Method::POST, &links, Some(&p.secret_key), Some(&json!({"integration": "zendesk", "inputs": {"subdomain": "acme.evil.example/x"}})))
            .await;
        refused.assert_error(422, "invalid_input");
        assert!(refused.body["message"].as_str().unwrap().contains("inputs.subdomain"), "{}", refused.body);
        let link = create_link(&app, &p, json!({"integration": "zendesk", "inputs": {"subdomain": "acme"}})).await;
        let page = answer(client.get(&link)).await;
        assert!(page.text.contains("Connect Zendesk"), "{}", page.text);
        let authorize = confirm_link(&app, &link, &hidden_form_token(&page.text), &[]).await;
        assert!(authorize.starts_with("https://acme.zendesk.com/oauth/authorizations/new?"), "{authorize}");
        let link = create_link(&app, &p, json!({"integration": "zendesk"})).await;
        let page = answer(client.get(&link)).await;
        assert!(page.text.contains("Zendesk subdomain"), "{}", page.text);
        let authorize = confirm_link(&app, &link, &hidden_form_token(&page.text), &[("inputs.subdomain", "globex")]).await;
        assert!(authorize.starts_with("https://globex.zendesk.com/oauth/authorizations/new?"), "{authorize}");
    }

    async fn api_key_and_client_credentials_integrations(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        let mut client_credentials = provider.oauth_definition();
        client_credentials["auth"] = json!({
            "type": "oauth2_client_credentials",
            "token_url": format!("{}/oauth/token", provider.base),
            "token_endpoint_auth": "client_secret_basic"
        });
        client_credentials["account_id"] = json!({"request": {"path": "/me", "field": "id"}});
        let cc_id = provider.configure(&app, &p, "machine", client_credentials).await;
        let token = p.token("u1");
        let created = app
            .send(Method::POST, &format!("/projects/{}/sdk/credentials", p.id), Some(&token), Some(&json!({"integrationId": cc_id, "payload": {}})))
            .await;
        created.assert_status(200);
        assert_eq!(created.body["status"], "VALID");
        assert_eq!(created.body["providerId"], format!("client_{}", provider::CLIENT_ID));
        assert_eq!(provider.sandbox.stats().client_credentials_grants, 1);
        // When the provider refuses the token, a new one is simply minted.
        provider.sandbox.faults().api_unauthorized(1);
        app.proxy(&p, &token, Method::GET, "custom.machine/me", &[], None).await.assert_status(200);
        assert_eq!(provider.sandbox.stats().client_credentials_grants, 2);

        // An API-key integration: the key is checked against the provider's identity call.
        let mut api_key = provider.oauth_definition();
        api_key["auth"] = json!({
            "type": "api_key", "header": "Authorization", "prefix": "Bearer ",
            "inputs": [{"key": "api_key", "label": "API key", "secret": true}]
        });
        api_key["account_id"] = json!({"request": {"path": "/me", "field": "id"}});
        let key_id = provider.configure(&app, &p, "keyed", api_key).await;
        let path = format!("/projects/{}/sdk/credentials", p.id);
        let refused = app.send(Method::POST, &path, Some(&token), Some(&json!({"integrationId": key_id, "payload": {"api_key": "wrong"}}))).await;
        refused.assert_error(422, "credential_rejected");
        let missing = app.send(Method::POST, &path, Some(&token), Some(&json!({"integrationId": key_id, "payload": {}}))).await;
        missing.assert_error(422, "invalid_input");
        // A real key: a token the provider issued to this client.
        let minted: Value = app
            .client
            .post(format!("{}/oauth/token", provider.base))
            .form(&[("grant_type", "client_credentials"), ("client_id", provider::CLIENT_ID), ("client_secret", provider::CLIENT_SECRET)])
            .send().await.unwrap().json().await.unwrap();
        let key = minted["access_token"].as_str().unwrap();
        let stored = app.send(Method::POST, &path, Some(&token), Some(&json!({"integrationId": key_id, "payload": {"api_key": key}}))).await;
        stored.assert_status(200);
        let echoed = app.proxy(&p, &token, Method::GET, "custom.keyed/echo", &[], None).await;
        echoed.assert_status(200);
        assert!(!raw_database_text(&app).await.contains(key), "the API key is stored in clear");
        // OAuth integrations are not connected by typed-in values.
        let oauth_id = provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.send(Method::POST, &path, Some(&token), Some(&json!({"integrationId": oauth_id, "payload": {"api_key": "x"}})))
            .await
            .assert_error(422, "invalid_input");
    }

    async fn proxy_limits_time_and_size(backend) {
        let mut config = test_config();
        config.connect.provider_timeout_secs = 1;
        config.connect.proxy_max_response_bytes = 2048;
        let app = TestApp::spawn_with(backend, config).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.connect_oauth(&p, "u1", "custom.crm", SID, json!({}), "Ada").await;
        let token = p.token("u1");
        provider.sandbox.faults().delay_api(std::time::Duration::from_secs(3), 1);
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_error(504, "upstream_timeout");
        let big = json!({"blob": "x".repeat(4096)});
        app.proxy(&p, &token, Method::POST, "custom.crm/echo", &[], Some(&big)).await.assert_error(502, "upstream_too_large");
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_status(200);
    }

    async fn custom_integrations_are_validated(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let path = format!("/api/v1/projects/{}/integrations/custom.bad", p.id);
        let no_definition = app.send(Method::PUT, &path, Some(&p.secret_key), Some(&json!({"oauthClientId": "x"}))).await;
        no_definition.assert_error(422, "invalid_input");
        let provider = FakeProvider::start().await;
        let mut broken = provider.oauth_definition();
        broken["auth"]["token_url"] = json!("ftp://example.com/token");
        let answer = app.send(Method::PUT, &path, Some(&p.secret_key), Some(&json!({"oauthClientId": "x", "definition": broken}))).await;
        answer.assert_error(422, "invalid_input");
        assert!(answer.text.contains("token_url"), "{}", answer.text);
        let catalog = app
            .send(Method::PUT, &format!("/api/v1/projects/{}/integrations/slack", p.id), Some(&p.secret_key), Some(&json!({"oauthClientId": "x", "definition": provider.oauth_definition()})))
            .await;
        catalog.assert_error(422, "invalid_input");
        // The SDK sees a custom integration under its slug.
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        let listed = app.get_integrations(&p, &p.token("u1")).await;
        assert_eq!(listed.body[0]["type"], "custom");
        assert_eq!(listed.body[0]["customIntegration"]["slug"], "custom.crm");
    }
}

#[tokio::test]
async fn loopback_providers_are_refused_unless_allowed() {
    let mut config = test_config();
    config.allow_loopback_providers = false;
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
    let answer = app
        .send(
            Method::PUT,
            &format!("/api/v1/projects/{}/integrations/custom.crm", p.id),
            Some(&p.secret_key),
            Some(&json!({"oauthClientId": "x", "definition": provider.oauth_definition()})),
        )
        .await;
    answer.assert_error(422, "invalid_input");
    assert!(answer.text.contains("https"), "{}", answer.text);
}

#[tokio::test]
async fn the_popup_start_page_tells_its_opener() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.create_project().await;
    // As the SDK opens it: the query is not URL-encoded.
    let url = app.url(&format!(
        "/projects/{}/sdk/actions/oauth-nonce?action=custom.crm&integrationId=x&originForPostMessage=http://localhost:5173&userToken={}",
        p.id,
        p.token("u1")
    ));
    let page = answer(app.client.get(url)).await;
    page.assert_status(200);
    assert!(page.text.contains("oauth-nonce-loaded"), "{}", page.text);
    assert!(page.text.contains("\"http://localhost:5173\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    // A hostile "origin" is not echoed into the script.
    let hostile = app.url(&format!(
        "/projects/{}/sdk/actions/oauth-nonce?originForPostMessage=%3C/script%3E%3Cscript%3Ealert(1)",
        p.id
    ));
    let refused = answer(app.client.get(hostile)).await;
    assert_eq!(refused.status.as_u16(), 400);
    assert!(!refused.text.contains("alert(1)"));
}
