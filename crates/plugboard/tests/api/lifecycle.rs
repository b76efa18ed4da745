//! Every lifecycle event, caused by real actions through the SDK and management API,
//! reaches a webhook endpoint signed so that the `standardwebhooks` package verifies it,
//! and no webhook body carries a secret metadata value.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::provider::FakeProvider;
use crate::common::*;
use crate::webhooks::{Receiver, config_with, create_endpoint, fast, hook_url};

const SECRET: &str = "sk_live_LIFECYCLE_9876_wxyz";

async fn mgmt(
    app: &TestApp,
    p: &Project,
    method: Method,
    rest: &str,
    body: Option<Value>,
) -> Answer {
    let path = format!("/api/v1/projects/{}/{rest}", p.id);
    app.send(method, &path, Some(&p.secret_key), body.as_ref())
        .await
}

async fn deploy(app: &TestApp, p: &Project, id: &str, yaml: String) {
    let request = app
        .client
        .put(app.url(&format!("/api/v1/projects/{}/workflows/{id}", p.id)))
        .bearer_auth(&p.secret_key)
        .header("content-type", "application/yaml")
        .body(yaml);
    answer(request).await.assert_status(200);
}

backend_tests! {
    async fn every_lifecycle_event_reaches_the_endpoint_signed(backend) {
        let app = TestApp::spawn_with(backend, config_with(fast())).await;
        let p = app.create_project().await;
        let port = free_port();
        let (_, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        mgmt(&app, &p, Method::PUT, "policy", Some(json!({
            "entitlements": { "integrations": { "custom.salesforce": "user.meta.plan == 'pro'" } },
            "secretMetadataKeys": ["apiKey"],
        }))).await.assert_status(200);
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "salesforce", provider.oauth_definition()).await;

        // user.created (first SDK call), user.metadata_updated.
        let token = p.token("john");
        app.patch_me(&p, &token, json!({"plan": "pro", "apiKey": SECRET})).await.assert_status(200);
        // integration.enabled.
        app.connect_oauth(&p, "john", "custom.salesforce", "s1", json!({}), "John").await;
        // workflow.enabled, then execution.failed (the step's answer is a 404).
        let (_saas, saas_base) = crate::workflows::SaasApi::start().await;
        deploy(&app, &p, "broken", format!(
            "id: broken\nname: Broken\nintegration: custom.salesforce\ntrigger: {{ type: event, event: go }}\nsteps:\n  - {{ id: call, type: http, method: POST, url: \"{saas_base}/missing\", headers: {{ Authorization: \"Bearer {{{{ user.meta.apiKey }}}}\" }} }}\n"
        )).await;
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/broken", p.id), Some(&token), None)
            .await
            .assert_status(200);
        app.send(Method::POST, &format!("/projects/{}/sdk/events/trigger", p.id), Some(&token), Some(&json!({"name": "go", "payload": {}})))
            .await
            .assert_status(200);
        app.server.services.worker.drain().await.unwrap();
        // entitlement.changed, twice.
        app.patch_me(&p, &token, json!({"plan": "free"})).await.assert_status(200);
        app.patch_me(&p, &token, json!({"plan": "pro"})).await.assert_status(200);
        // workflow.disabled.
        app.send(Method::DELETE, &format!("/projects/{}/sdk/workflows/broken", p.id), Some(&token), None)
            .await
            .assert_status(200);
        // credential.invalid: the provider refuses the refresh for good.
        provider.sandbox.faults().revoke_all_refresh_tokens();
        provider.sandbox.expire_access_tokens();
        app.proxy(&p, &token, Method::GET, "custom.salesforce/me", &[], None)
            .await
            .assert_error(409, "credential_invalid");
        // integration.disabled, user.suspended, user.resumed, user.deleted.
        let integration = app.get_integrations(&p, &token).await.body[0]["id"].as_str().unwrap().to_owned();
        app.send(Method::DELETE, &format!("/projects/{}/sdk/integrations/{integration}", p.id), Some(&token), None)
            .await
            .assert_status(200);
        app.suspend_user(&p, "john").await.assert_status(200);
        app.resume_user(&p, "john").await.assert_status(200);
        app.delete_user(&p, "john").await.assert_status(200);

        let expected: BTreeSet<&str> = plugboard_core::events::EVENT_TYPES.iter().copied().collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let log = loop {
            let log = receiver.log().await;
            let seen: BTreeSet<&str> = log.iter().filter_map(|e| e["body"]["type"].as_str()).collect();
            if seen == expected || std::time::Instant::now() > deadline {
                assert_eq!(seen, expected, "{log:#?}");
                break log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        for entry in &log {
            assert_eq!(entry["verified"], true, "{entry}");
            assert!(!entry.to_string().contains(SECRET), "a secret in a webhook: {entry}");
        }
        let of = |kind: &str| log.iter().filter(|e| e["body"]["type"] == kind).map(|e| e["body"]["data"].clone()).collect::<Vec<_>>();
        // Webhooks may arrive in any order (deliveries run concurrently).
        let changes = of("entitlement.changed");
        // The first is the plan set after the user was created without one.
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes.iter().any(|c| c["lostIntegrations"] == json!(["custom.salesforce"])), "{changes:?}");
        assert!(changes.iter().any(|c| c["regainedIntegrations"] == json!(["custom.salesforce"])), "{changes:?}");
        assert_eq!(of("execution.failed")[0]["workflowId"], "broken");
        assert_eq!(of("credential.invalid")[0]["integration"], "custom.salesforce");
        assert!(of("user.metadata_updated").iter().all(|d| d["meta"]["apiKey"] == "••••wxyz"));
    }
}
