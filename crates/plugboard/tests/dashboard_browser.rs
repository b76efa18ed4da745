//! The dashboard's acceptance test in headless Chromium: the seed scenario ("John from
//! BookFace says his integration isn't working"). Log in from the keyboard, search John by
//! email, open him, turn a workflow off, open his failed execution and replay it,
//! disconnect his integration; each step is checked on the page and in the server's
//! state, with screenshots in `<target>/browser-artifacts/dashboard-*.png`. Chromium
//! (`/usr/bin/chromium` or `CHROMIUM_PATH`) and Node are required: this test fails, never
//! skips, without them.

#[allow(unused_macros)]
#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::browser::{NodeDriver, artifacts_dir};
use common::provider::FakeProvider;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Console errors the pages may show; any other fails the test.
const EXPECTED_CONSOLE_ERRORS: &[&str] = &[
    // The refused login is answered 401, which Chromium logs.
    "status of 401 (Unauthorized)",
    // A connect link's page refusing an input (422), and a spent link (410).
    "status of 422 (Unprocessable",
    "status of 410 (Gone)",
];

/// `tests/browser/dashboard.mjs`: one Chromium page.
struct Driver {
    driver: NodeDriver,
}

impl Driver {
    async fn launch(app: &TestApp) -> Self {
        let (driver, _) = NodeDriver::start(
            "dashboard.mjs",
            &app.server.base_url(),
            artifacts_dir(),
            EXPECTED_CONSOLE_ERRORS,
        )
        .await;
        Self { driver }
    }

    /// Runs one command and asserts it worked; returns the answer.
    async fn run(&mut self, command: Value) -> Value {
        let what = command.to_string();
        let answer = self.driver.send(&command, &what).await;
        assert_eq!(answer["ok"], true, "`{what}` failed: {answer}");
        answer
    }

    async fn goto(&mut self, path: &str) -> Value {
        self.run(json!({"op": "goto", "path": path})).await
    }

    async fn body(&mut self) -> String {
        self.run(json!({"op": "body"})).await["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn screenshot(&mut self, name: &str) {
        let shot = self.run(json!({"op": "screenshot", "name": name})).await;
        let file = shot["value"].as_str().expect("a screenshot path");
        assert!(std::fs::metadata(file).unwrap().len() > 1000, "{file}");
    }

    /// Every field labelled, every button and link named, no sideways scrolling.
    async fn audit(&mut self, page: &str) {
        let audit = self.run(json!({"op": "audit"})).await["value"].clone();
        assert_eq!(
            audit["unlabelled"],
            json!([]),
            "unlabelled fields on {page}"
        );
        assert_eq!(audit["nameless"], json!([]), "unnamed controls on {page}");
        assert_eq!(audit["overflow"], false, "{page} scrolls sideways");
    }

    async fn close(self) {
        self.driver.close().await;
    }
}

/// The SaaS's own API, which refuses the workflow's call until `healthy` is set.
async fn saas_api(healthy: Arc<AtomicBool>) -> String {
    let router = axum::Router::new().route(
        "/contacts",
        axum::routing::post(move || {
            let healthy = healthy.clone();
            async move {
                if healthy.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "{\"ok\":true}")
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        "{\"error\":\"list is archived\"}",
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn support_finds_john_and_fixes_his_integration() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.create_project().await;
    let api = |path: &str| format!("/api/v1/projects/{}{path}", p.id);
    let provider = FakeProvider::start().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    // The seed: John, his connected CRM, a workflow he enabled, and its failed run.
    app.put_user(
        &p,
        "john-1842",
        json!({"Name": "John Appleseed", "Email": "john@bookface.com", "apiKey": "k_john_secret"}),
    )
    .await
    .assert_status(201);
    for i in 0..30 {
        app.put_user(
            &p,
            &format!("user-{i}"),
            json!({"Email": format!("someone{i}@example.com")}),
        )
        .await
        .assert_status(201);
    }
    let connected = app
        .connect_oauth(
            &p,
            "john-1842",
            "custom.crm",
            "s1",
            json!({}),
            "BookFace CRM",
        )
        .await;
    assert!(connected.credential_id.is_some());
    let healthy = Arc::new(AtomicBool::new(false));
    let saas = saas_api(healthy.clone()).await;
    let workflow = format!(
        "id: push-contacts\nname: Push contacts to the app\nintegration: custom.crm\ntrigger: {{ type: event, event: contact.created }}\nsteps:\n  - {{ id: prepare, type: transform, jq: '{{list: \"vip\"}}' }}\n  - {{ id: push, type: http, method: POST, url: \"{saas}/contacts\", headers: {{ Authorization: \"Bearer {{{{ user.meta.apiKey }}}}\" }}, body: {{ n: 1 }}, max_attempts: 1 }}\n"
    );
    let deployed = answer(
        app.client
            .put(app.url(&api("/workflows/push-contacts")))
            .bearer_auth(&p.secret_key)
            .header("content-type", "application/yaml")
            .body(workflow),
    )
    .await;
    deployed.assert_status(200);
    app.send(
        Method::POST,
        &api("/users/john-1842/workflows/push-contacts"),
        Some(&p.secret_key),
        None,
    )
    .await
    .assert_status(200);
    let started = app
        .send(
            Method::POST,
            &api("/events"),
            Some(&p.secret_key),
            Some(&json!({"userId": "john-1842", "name": "contact.created", "payload": {}})),
        )
        .await;
    started.assert_status(202);
    let failed_id = started.body["executions"][0].as_str().unwrap().to_owned();
    app.server.services.worker.drain().await.unwrap();
    let failed = app
        .send(
            Method::GET,
            &api(&format!("/executions/{failed_id}")),
            Some(&p.secret_key),
            None,
        )
        .await;
    assert_eq!(failed.body["status"], "FAILED", "{}", failed.text);

    let mut browser = Driver::launch(&app).await;

    // Log in from the keyboard: the key field has the focus, Enter submits.
    let login = browser.goto("/dashboard/users").await;
    assert_eq!(login["url"], "/dashboard/login");
    browser.audit("the login page").await;
    browser.run(json!({"op": "fill", "label": "Project secret key or admin token", "value": "pb_sk_wrong"})).await;
    browser.run(json!({"op": "press", "key": "Enter"})).await;
    assert!(browser.body().await.contains("That key was not accepted"));
    browser.run(json!({"op": "fill", "label": "Project secret key or admin token", "value": p.secret_key})).await;
    let logged_in = browser.run(json!({"op": "press", "key": "Enter"})).await;
    assert_eq!(logged_in["url"], "/dashboard/users");
    let focus = browser.run(json!({"op": "tab"})).await["value"].clone();
    assert_eq!(
        focus["text"], "Skip to content",
        "the first Tab reaches the skip link"
    );
    assert_ne!(focus["outlineStyle"], "none", "focus is visible: {focus}");
    browser.audit("Connected users").await;
    assert!(browser.body().await.contains("31 users match"));
    browser.screenshot("1-users").await;

    // Search John by his email.
    browser.run(json!({"op": "fill", "label": "User id, name or email (starts with)", "value": "john@bookface.com"})).await;
    browser
        .run(json!({"op": "click", "role": "button", "name": "Search"}))
        .await;
    let total = browser
        .run(json!({"op": "text", "selector": "#total"}))
        .await;
    assert_eq!(total["value"], "1 user matches");
    assert!(browser.body().await.contains("John Appleseed"));
    browser.screenshot("2-search").await;

    // Open him: his integration and its health, his workflow, the failed run; no secret.
    let opened = browser
        .run(json!({"op": "click", "role": "link", "name": "john-1842"}))
        .await;
    assert_eq!(opened["url"], "/dashboard/users/john-1842");
    let page = browser.body().await;
    for expected in [
        "john@bookface.com",
        "VALID",
        "Fake CRM",
        "acct_1",
        "Push contacts to the app",
        "FAILED",
    ] {
        assert!(
            page.contains(expected),
            "the user page shows {expected}: {page}"
        );
    }
    assert!(
        !page.contains("k_john_secret"),
        "metadata secrets are masked"
    );
    browser.audit("the user page").await;
    browser.screenshot("3-user").await;

    // Turn the workflow off.
    browser
        .run(json!({"op": "click", "role": "switch", "name": "push-contacts enabled"}))
        .await;
    assert!(browser.body().await.contains("The workflow is turned off"));
    let state = browser
        .run(json!({"op": "text", "role": "switch", "name": "push-contacts enabled"}))
        .await;
    assert_eq!(state["value"], "Off");
    let credentials = app
        .send(
            Method::GET,
            &api("/users/john-1842/credentials"),
            Some(&p.secret_key),
            None,
        )
        .await;
    assert_eq!(
        credentials.body["data"][0]["configurations"][0]["workflowSettings"]["push-contacts"]["enabled"],
        false,
        "the server has it off"
    );
    browser.screenshot("4-workflow-off").await;

    // Open the failed execution from the Task History: the failing step, its timing and
    // attempts, redacted input.
    browser
        .run(json!({"op": "click", "role": "link", "name": "Task history"}))
        .await;
    browser
        .goto("/dashboard/executions?status=FAILED&meta=Email%3Djohn%40bookface.com")
        .await;
    browser.audit("Task history").await;
    let rows = browser
        .run(json!({"op": "count", "selector": "tbody tr"}))
        .await;
    assert_eq!(rows["value"], 1);
    let detail = browser
        .run(json!({"op": "click", "selector": "tbody tr a >> nth=0"}))
        .await;
    assert_eq!(detail["url"], format!("/dashboard/executions/{failed_id}"));
    let error = browser
        .run(json!({"op": "text", "selector": "#execution-error"}))
        .await;
    assert!(
        error["value"].as_str().unwrap().contains("HTTP 400"),
        "{error}"
    );
    let page = browser.body().await;
    assert!(
        page.contains("push") && page.contains("attempts: 1") && page.contains("prepare"),
        "{page}"
    );
    assert!(!page.contains("k_john_secret"));
    browser.screenshot("5-failed-execution").await;

    // Replay it, now that the app's API is fixed.
    healthy.store(true, Ordering::SeqCst);
    let replayed = browser
        .run(json!({"op": "click", "role": "button", "name": "Replay"}))
        .await;
    let replay_path = replayed["url"].as_str().unwrap().to_owned();
    assert!(
        replay_path.starts_with("/dashboard/executions/") && !replay_path.ends_with(&failed_id),
        "{replay_path}"
    );
    let replay_id = replay_path.rsplit('/').next().unwrap().to_owned();
    let queued = app
        .send(
            Method::GET,
            &api(&format!("/executions/{replay_id}")),
            Some(&p.secret_key),
            None,
        )
        .await;
    assert_eq!(queued.body["trigger"]["replayOf"], failed_id.as_str());
    app.server.services.worker.drain().await.unwrap();
    browser.goto(&replay_path).await;
    let status = browser
        .run(json!({"op": "text", "selector": "#status"}))
        .await;
    assert_eq!(status["value"], "SUCCEEDED");
    browser.screenshot("6-replayed").await;

    // Disconnect the integration.
    browser.goto("/dashboard/users/john-1842").await;
    browser.run(json!({"op": "click", "role": "button", "name": "Disconnect custom.crm account", "exact": false})).await;
    let page = browser.body().await;
    assert!(
        page.contains("The account is disconnected") && page.contains("No connected integration"),
        "{page}"
    );
    let credentials = app
        .send(
            Method::GET,
            &api("/users/john-1842/credentials"),
            Some(&p.secret_key),
            None,
        )
        .await;
    assert_eq!(
        credentials.body["data"],
        json!([]),
        "the server has no credential left"
    );
    browser.screenshot("7-disconnected").await;

    // Integrations, and the pages on a phone.
    browser.goto("/dashboard/integrations").await;
    assert!(browser.body().await.contains("custom.crm"));
    browser.audit("Integrations").await;
    browser
        .run(json!({"op": "viewport", "width": 375, "height": 740}))
        .await;
    for (page, name) in [
        ("/dashboard/users", "8-phone-users"),
        ("/dashboard/users/john-1842", "9-phone-user"),
    ] {
        browser.goto(page).await;
        browser.audit(page).await;
        browser.screenshot(name).await;
    }
    browser.close().await;
}

/// A connect link in a real browser: opening it shows a page and spends nothing; a bad
/// input shows the page again; the user's press on Connect (the form's same-origin POST,
/// as Chromium sends it) goes on to the provider and spends the link. Screenshots in
/// `<target>/browser-artifacts/dashboard-connect-link*.png`.
#[tokio::test]
async fn a_connect_link_waits_for_the_users_press() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
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
    provider.configure(&app, &p, "desk", definition).await;
    app.put_user(&p, "u1", json!({})).await.assert_status(201);
    let created = app
        .send(
            Method::POST,
            &format!("/api/v1/projects/{}/users/u1/connect-links", p.id),
            Some(&p.secret_key),
            Some(&json!({"integration": "custom.desk"})),
        )
        .await;
    created.assert_status(201);
    let link = created.body["url"].as_str().unwrap().to_owned();

    let mut browser = Driver::launch(&app).await;
    for _ in 0..2 {
        browser.goto(&link).await;
        let body = browser.body().await;
        assert!(body.contains("Connect Fake Desk"), "{body}");
    }
    browser.audit("the connect link page").await;
    browser.screenshot("connect-link").await;
    browser
        .run(json!({"op": "fill", "label": "Desk subdomain", "value": "Not valid!"}))
        .await;
    browser
        .run(json!({"op": "click", "role": "button", "name": "Connect"}))
        .await;
    let body = browser.body().await;
    assert!(
        body.contains("inputs.subdomain (Desk subdomain) must match"),
        "{body}"
    );
    browser.screenshot("connect-link-refused").await;
    browser
        .run(json!({"op": "fill", "label": "Desk subdomain", "value": "globex"}))
        .await;
    let landed = browser
        .run(json!({"op": "click", "role": "button", "name": "Connect"}))
        .await;
    assert!(
        landed["url"]
            .as_str()
            .unwrap()
            .starts_with("/oauth/callback"),
        "{landed}"
    );
    assert!(browser.body().await.contains("Connected"));
    let credentials = app
        .send(
            Method::GET,
            &format!("/api/v1/projects/{}/users/u1/credentials", p.id),
            Some(&p.secret_key),
            None,
        )
        .await;
    credentials.assert_status(200);
    assert_eq!(
        credentials.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        credentials.body
    );
    browser.goto(&link).await;
    assert!(browser.body().await.contains("Cannot connect"));
    browser.close().await;
}
