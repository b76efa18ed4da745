//! Project integrations: turned on through the management API, then listed to the SDK in
//! its wire shape, with an entry in every user's `/sdk/me`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const CLIENT_SECRET: &str = "very-secret-client-secret-4f9a";

async fn configure(app: &TestApp, p: &Project, key: &str, body: Value) -> Answer {
    let path = format!("/api/v1/projects/{}/integrations/{key}", p.id);
    app.send(Method::PUT, &path, Some(&p.secret_key), Some(&body))
        .await
}

backend_tests! {
    async fn a_configured_integration_reaches_the_sdk(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let token = p.token("u1");
        assert_eq!(app.get_integrations(&p, &token).await.body, json!([]));

        let body = json!({"oauthClientId": "client-1", "oauthClientSecret": CLIENT_SECRET, "scopes": ["api", "refresh_token"]});
        let answer = configure(&app, &p, "salesforce", body).await;
        answer.assert_status(200);
        assert_eq!(answer.body["key"], "salesforce");
        assert_eq!(answer.body["hasOauthClientSecret"], true);
        assert!(!answer.text.contains(CLIENT_SECRET), "the secret must never be answered");
        let integration_id = answer.body["id"].as_str().unwrap().to_owned();

        let listed = app.get_integrations(&p, &token).await;
        listed.assert_status(200);
        let entry = &listed.body[0];
        assert_eq!(entry["id"], integration_id.as_str());
        assert_eq!(entry["type"], "salesforce");
        assert_eq!(entry["name"], "Salesforce");
        assert_eq!(entry["isActive"], true);
        assert_eq!(entry["authenticationType"], "oauth");
        assert!(entry["configs"][0]["values"].is_object());
        assert!(entry["workflows"].as_array().unwrap().is_empty());
        assert!(!listed.text.contains(CLIENT_SECRET));

        let me = app.get_me(&p, &token).await;
        me.assert_status(200);
        assert_eq!(
            me.body["integrations"]["salesforce"],
            json!({"enabled": false, "workflowSettings": {}, "configuredWorkflows": {}, "allCredentials": []})
        );

        let managed = app
            .send(Method::GET, &format!("/api/v1/projects/{}/integrations", p.id), Some(&p.secret_key), None)
            .await;
        assert_eq!(managed.body["data"][0]["scopes"], json!(["api", "refresh_token"]));
    }

    async fn reconfiguring_keeps_the_id_and_what_was_not_sent(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let first = configure(&app, &p, "hubspot", json!({"oauthClientId": "a", "oauthClientSecret": CLIENT_SECRET})).await;
        let second = configure(&app, &p, "hubspot", json!({"active": false})).await;
        second.assert_status(200);
        assert_eq!(first.body["id"], second.body["id"]);
        assert_eq!(second.body["oauthClientId"], "a");
        assert_eq!(second.body["hasOauthClientSecret"], true);
        assert_eq!(second.body["active"], false);
        let listed = app.get_integrations(&p, &p.token("u1")).await;
        assert_eq!(listed.body[0]["isActive"], false);
    }

    async fn the_client_secret_is_stored_sealed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        configure(&app, &p, "slack", json!({"oauthClientId": "c", "oauthClientSecret": CLIENT_SECRET}))
            .await
            .assert_status(200);
        let project = plugboard_core::ProjectId::parse(&p.id).unwrap();
        let key = plugboard_core::IntegrationKey::parse("slack").unwrap();
        let stored = app.store.get_project_integration(project, &key).await.unwrap().unwrap();
        let sealed = stored.oauth_client_secret_sealed.unwrap();
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert!(!sealed.contains(CLIENT_SECRET));
        if let Some(path) = app.database_url.strip_prefix("sqlite://") {
            for file in [path.to_owned(), format!("{path}-wal")] {
                let bytes = std::fs::read(&file).unwrap_or_default();
                let clear = bytes.windows(CLIENT_SECRET.len()).any(|w| w == CLIENT_SECRET.as_bytes());
                assert!(!clear, "{file} holds the client secret in clear");
            }
        }
    }

    async fn bad_integration_settings_are_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        configure(&app, &p, "not-a-provider", json!({})).await.assert_error(422, "unknown_integration");
        configure(&app, &p, "Sales Force", json!({})).await.assert_error(422, "invalid_input");
        // An OAuth integration cannot be active without the project's OAuth app.
        configure(&app, &p, "salesforce", json!({})).await.assert_error(422, "invalid_input");
        configure(&app, &p, "salesforce", json!({"oauthClientId": "c", "scopes": ["a b"]}))
            .await
            .assert_error(422, "invalid_input");
        configure(&app, &p, "salesforce", json!({"oauthClientId": "c", "extra": 1}))
            .await
            .assert_error(422, "invalid_body");
        // An API-key integration needs no OAuth app.
        configure(&app, &p, "stripe", json!({})).await.assert_status(200);
        let other = app.create_project().await;
        let path = format!("/api/v1/projects/{}/integrations/stripe", p.id);
        app.send(Method::PUT, &path, Some(&other.secret_key), Some(&json!({})))
            .await
            .assert_error(403, "wrong_project");
        assert_eq!(app.get_integrations(&other, &other.token("u")).await.body, json!([]));
    }
}
