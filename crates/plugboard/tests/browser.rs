//! The unmodified Paragon browser SDK (`@useparagon/connect` 2.4.0) in headless Chromium
//! against a real Plugboard server. `tests/browser/run.mjs` drives the page; this file sets
//! up the server and a sandbox OAuth provider, says what to do step by step, and checks both
//! what the SDK answered and what the server stored. Chromium (`/usr/bin/chromium`, or
//! `CHROMIUM_PATH`) and Node are required: these tests fail, never skip, without them.
//! Screenshots land in `<target>/browser-artifacts/`.

#[allow(unused_macros)]
#[path = "common/mod.rs"]
mod common;

use common::browser::{NodeDriver, artifacts_dir};
use common::provider::FakeProvider;
use common::*;
use serde_json::{Value, json};

const INTEGRATION: &str = "custom.crm";

/// Console errors the page may show; any other fails the test (a CORS refusal, a 404, an
/// exception in the SDK).
const EXPECTED_CONSOLE_ERRORS: &[&str] = &[
    // A popup-blocked install leaves the SDK's message listener behind; it complains at
    // every later popup.
    "Build Oauth URL fetch failure",
    // The suspended user's refused call.
    "status of 403 (Forbidden)",
];

/// The SDK's driver (`run.mjs`): one Chromium, one test page.
struct Browser {
    driver: NodeDriver,
    /// What the page asked of Plugboard while it loaded.
    boot: Value,
}

impl Browser {
    async fn launch(app: &TestApp, name: &str) -> Self {
        let (driver, boot) = NodeDriver::start(
            "run.mjs",
            &app.server.base_url(),
            artifacts_dir().join(name),
            EXPECTED_CONSOLE_ERRORS,
        )
        .await;
        Self { driver, boot }
    }

    async fn close(self) {
        self.driver.close().await;
    }

    /// One command's answer; the page never calls outside loopback.
    async fn send(&mut self, command: Value) -> Value {
        let what = format!("{} {}", command["op"], command["method"]);
        let answer = self.driver.send(&command, &what).await;
        assert_eq!(
            answer["foreign"],
            json!([]),
            "the page called outside loopback"
        );
        answer
    }

    /// `paragon[method](...args)`; the answer's `ok`, `value` or `error`, and `requests`.
    async fn call(&mut self, method: &str, args: Value) -> Value {
        self.send(json!({"op": "call", "method": method, "args": args}))
            .await
    }

    /// Like [`call`](Self::call), asserting it resolved; returns the answer.
    async fn ok(&mut self, method: &str, args: Value) -> Value {
        let answer = self.call(method, args).await;
        assert_eq!(answer["ok"], true, "{method} failed: {answer}");
        answer
    }

    async fn user(&mut self) -> Value {
        self.ok("getUser", json!([])).await["value"].clone()
    }

    async fn install(&mut self, completion: &str, account: &str) -> Value {
        let command = json!({"op": "install", "integration": INTEGRATION,
            "completion": completion, "account": account});
        self.send(command).await
    }

    async fn screenshot(&mut self, name: &str) {
        let shot = self.send(json!({"op": "screenshot", "name": name})).await;
        let file = shot["value"].as_str().expect("a screenshot path");
        assert!(std::fs::metadata(file).unwrap().len() > 1000, "{file}");
    }

    async fn stored_state(&mut self) -> Value {
        self.send(json!({"op": "storage"})).await["value"].clone()
    }
}

/// The requests of an answer, as `METHOD path` lines (query strings dropped).
fn requests(answer: &Value) -> Vec<String> {
    answer["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                path.split('?').next().unwrap()
            )
        })
        .collect()
}

/// The one request of an answer matching `method` and ending in `suffix`.
fn request<'a>(answer: &'a Value, method: &str, suffix: &str) -> &'a Value {
    let found: Vec<&Value> = answer["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method)
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {method} …{suffix} in {:?}",
        requests(answer)
    );
    found[0]
}

async fn server_credentials(app: &TestApp, p: &Project, user: &str) -> Vec<Value> {
    let path = format!("/api/v1/projects/{}/users/{user}/credentials", p.id);
    let listed = app
        .send(reqwest::Method::GET, &path, Some(&p.secret_key), None)
        .await;
    listed.assert_status(200);
    listed.body["data"].as_array().unwrap().clone()
}

async fn setup() -> (TestApp, Project, FakeProvider) {
    // The production wait for the callback page's message, so that both channels race as
    // they do for real users.
    let mut config = test_config();
    config.connect.message_grace_ms = 3000;
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let p = app.create_project().await;
    let provider = FakeProvider::with_consent_page().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    (app, p, provider)
}

#[tokio::test]
async fn a_user_connects_uses_and_disconnects_an_account() {
    let (app, p, provider) = setup().await;
    let mut browser = Browser::launch(&app, "connect").await;
    // The SDK's hidden iframe loads CONNECT/ui from Plugboard.
    let frame = request(&browser.boot, "GET", "/ui");
    assert_eq!(
        (frame["status"].as_u64(), frame["type"].as_str()),
        (Some(200), Some("document"))
    );
    assert_eq!(browser.boot["errors"], json!([]), "{}", browser.boot);

    authenticate_with_metadata(&mut browser, &app, &p).await;
    metadata_is_merged(&mut browser, &app, &p).await;
    integration_metadata_lists_the_custom_integration(&mut browser).await;

    let blocked = browser
        .send(json!({"op": "installWithoutGesture", "integration": INTEGRATION}))
        .await;
    assert_eq!(blocked["name"], "OAuthBlockedError", "{blocked}");

    let first = install_through_polling(&mut browser, &app, &p).await;
    assert_eq!(provider.sandbox.stats().authorization_code_grants, 1);
    browser.screenshot("after-install").await;
    account_and_proxy_work(&mut browser, &first).await;
    workflows_are_not_there_yet(&mut browser).await;
    uninstall(&mut browser, &app, &p).await;
    let stats = provider.sandbox.stats();
    assert_eq!(
        stats.revocations, 1,
        "the token was revoked at the provider"
    );
    browser.screenshot("after-uninstall").await;

    install_through_post_message(&mut browser, &app, &p).await;
    assert_eq!(provider.sandbox.stats().authorization_code_grants, 2);
    uninstall(&mut browser, &app, &p).await;
    install_both_ways_at_once(&mut browser, &app, &p).await;

    browser.ok("logout", json!([])).await;
    assert_eq!(browser.user().await, json!({"authenticated": false}));
    assert_eq!(browser.stored_state().await, Value::Null);
    let refused = browser
        .call("getIntegrationAccount", json!([INTEGRATION]))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(requests(&refused), Vec::<String>::new());
    browser.close().await;
}

async fn authenticate_with_metadata(browser: &mut Browser, app: &TestApp, p: &Project) {
    let metadata = json!({"email": "john@bookface.com", "name": "John"});
    let auth = browser
        .ok(
            "authenticate",
            json!([p.id, p.token("john"), {"metadata": metadata}]),
        )
        .await;
    let me = format!("/projects/{}/sdk/me", p.id);
    let sent = &request(&auth, "PATCH", &me)["sent"];
    let normalised = json!({"Email": "john@bookface.com", "Name": "John"});
    assert_eq!(sent, &json!({"meta": normalised}));
    assert_eq!(request(&auth, "GET", "/sdk/integrations")["status"], 200);
    assert_eq!(app.meta_of(p, "john").await, normalised);

    let user = browser.user().await;
    assert_eq!(user["authenticated"], true);
    assert_eq!(user["userId"], "john");
    assert_eq!(user["meta"], normalised);
    let entry = &user["integrations"][INTEGRATION];
    assert_eq!(entry["enabled"], false, "{user}");
    assert_eq!(entry["allCredentials"], json!([]));
    assert_eq!(entry["allConfigurations"], json!([]));
    assert!(user.get("token").is_none());
}

async fn metadata_is_merged(browser: &mut Browser, app: &TestApp, p: &Project) {
    let updated = browser
        .ok("setUserMetadata", json!([{"plan": "pro"}]))
        .await;
    let merged = json!({"Email": "john@bookface.com", "Name": "John", "plan": "pro"});
    assert_eq!(updated["value"]["meta"], merged);
    assert_eq!(
        request(&updated, "PATCH", "/sdk/me")["sent"],
        json!({"meta": {"plan": "pro"}})
    );
    assert_eq!(app.meta_of(p, "john").await, merged);
}

async fn integration_metadata_lists_the_custom_integration(browser: &mut Browser) {
    let all = browser.ok("getIntegrationMetadata", json!([])).await["value"].clone();
    let list = all.as_array().unwrap();
    assert_eq!(list.len(), 1, "{all}");
    assert_eq!(list[0]["type"], INTEGRATION);
    assert_eq!(list[0]["name"], "Fake CRM");
    assert_eq!(list[0]["brandColor"], "#336699");
    let one = browser
        .ok("getIntegrationMetadata", json!([INTEGRATION]))
        .await;
    assert_eq!(one["value"], list[0]);
}

/// The popup, the consent page and the callback page, as a user goes through them.
fn assert_popup_journey(installed: &Value) {
    assert_eq!(installed["popupOpened"], true, "{installed}");
    let pages: Vec<&str> = installed["popupPages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(pages[0].ends_with("/sdk/actions/oauth-nonce"), "{pages:?}");
    assert!(
        pages.iter().any(|u| u.ends_with("/oauth/authorize")),
        "{pages:?}"
    );
    assert!(
        pages.last().unwrap().ends_with("/oauth/callback"),
        "{pages:?}"
    );
    assert_eq!(
        installed["popupClosed"], true,
        "the callback page closes the popup"
    );
}

/// Asserts the install resolved with a credential the server holds as VALID; returns its id.
async fn assert_installed(installed: &Value, app: &TestApp, p: &Project) -> String {
    assert_eq!(installed["ok"], true, "{installed}");
    let value = &installed["value"];
    assert_eq!(value["integrationType"], INTEGRATION);
    let id = value["credentialId"]
        .as_str()
        .expect("a credential id")
        .to_owned();
    assert_eq!(value["credential"]["status"], "VALID", "{value}");
    let stored = server_credentials(app, p, "john").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["id"], id.as_str());
    assert_eq!(stored[0]["status"], "VALID");
    assert_eq!(stored[0]["integration"], INTEGRATION);
    id
}

/// The SDK fired `onIntegrationInstall` exactly once for the install (SDK 2.4.0 fires it
/// for each channel that reports a success: the page's message and its polling).
fn assert_reported_once(installed: &Value) {
    assert_eq!(
        installed["installEvents"],
        json!([INTEGRATION]),
        "onIntegrationInstall events: {installed}"
    );
}

/// The credential id a poll answers once the callback page's message reported the
/// install: the nil UUID, which `GET /sdk/credentials/{it}` answers with 204.
const ALREADY_REPORTED: &str = "00000000-0000-0000-0000-000000000000";

/// The callback page loses its opener: only the SDK's polling can finish.
async fn install_through_polling(browser: &mut Browser, app: &TestApp, p: &Project) -> String {
    let installed = browser.install("polling", "Ada Lovelace").await;
    assert_popup_journey(&installed);
    let id = assert_installed(&installed, app, p).await;
    assert_reported_once(&installed);
    assert_eq!(
        request(&installed, "GET", "/sdk/actions/build-oauth")["status"],
        200
    );
    assert_eq!(last_poll(&installed)["connectCredentialId"], id.as_str());
    assert_eq!(
        request(&installed, "GET", &format!("/sdk/credentials/{id}"))["status"],
        200
    );
    assert!(
        !requests(&installed)
            .iter()
            .any(|r| r.ends_with("POST /sdk/credentials"))
    );
    let user = browser.user().await;
    assert_eq!(user["integrations"][INTEGRATION]["enabled"], true);
    assert_eq!(
        user["integrations"][INTEGRATION]["credentialId"],
        id.as_str()
    );
    id
}

/// Polls are held "pending" in the page: only the callback page's message can finish.
async fn install_through_post_message(browser: &mut Browser, app: &TestApp, p: &Project) {
    let installed = browser.install("postMessage", "Grace Hopper").await;
    assert_popup_journey(&installed);
    let id = assert_installed(&installed, app, p).await;
    assert_reported_once(&installed);
    // Until it resolved no poll reached the server, so polling could not have finished
    // this install. Then the runner handed the polls back to the server, which ended the
    // loop without naming the credential again (the SDK would report it a second time).
    assert!(installed["heldPolls"].as_u64().unwrap() >= 1, "{installed}");
    assert_eq!(
        last_poll(&installed)["connectCredentialId"],
        ALREADY_REPORTED
    );
    assert_eq!(
        request(
            &installed,
            "GET",
            &format!("/sdk/credentials/{ALREADY_REPORTED}")
        )["status"],
        204
    );
    let confirmed = request(&installed, "POST", "/sdk/credentials");
    assert_eq!(confirmed["status"], 200);
    assert_eq!(
        confirmed["sent"]["payload"]["connectCredentialId"],
        id.as_str()
    );
    assert_eq!(confirmed["body"]["id"], id.as_str());
}

/// What the last poll of the install's OAuth session answered (all polls must be 200s, and
/// of that session).
fn last_poll(installed: &Value) -> Value {
    let session = format!(
        "/sdk/actions/session-id/{}",
        installed["sid"].as_str().unwrap()
    );
    let polls: Vec<&Value> = installed["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains("/session-id/"))
        .collect();
    assert!(
        polls
            .iter()
            .all(|r| r["status"] == 200 && r["path"].as_str().unwrap().ends_with(&session)),
        "{polls:?}"
    );
    polls.last().expect("the SDK polled")["body"].clone()
}

/// Unforced, as in production: the message and the polls both reach the SDK, the
/// install is reported once and the server keeps one credential.
async fn install_both_ways_at_once(browser: &mut Browser, app: &TestApp, p: &Project) {
    let installed = browser.install("any", "Alan Turing").await;
    assert_popup_journey(&installed);
    let id = assert_installed(&installed, app, p).await;
    assert_reported_once(&installed);
    assert_eq!(
        request(&installed, "POST", "/sdk/credentials")["body"]["id"],
        id.as_str()
    );
    // The message reported it first (polls wait for it a moment): polling ends quietly.
    assert_eq!(
        last_poll(&installed)["connectCredentialId"],
        ALREADY_REPORTED
    );
    let forgot = request(&installed, "DELETE", "");
    assert!(forgot["path"].as_str().unwrap().contains("/session-id/"));
    assert_eq!(forgot["status"], 200);
}

async fn account_and_proxy_work(browser: &mut Browser, credential: &str) {
    let account = browser
        .ok(
            "getIntegrationAccount",
            json!([INTEGRATION, {"includeAccountAuth": true}]),
        )
        .await;
    let value = &account["value"];
    assert_eq!(value["credentialId"], credential);
    assert_eq!(value["credentialStatus"], "VALID");
    let token = value["accountAuth"]["OAUTH_ACCESS_TOKEN"].as_str().unwrap();
    assert!(token.starts_with("sbx_at_"), "{value}");

    let me = browser
        .ok("request", json!([INTEGRATION, "/me", {"method": "GET"}]))
        .await;
    assert_eq!(me["value"]["name"], "Ada Lovelace", "{me}");
    assert!(me["value"]["id"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(
        request(&me, "GET", "/sdk/proxy/custom.crm/me")["status"],
        200
    );
}

/// No workflow is deployed in this project: the SDK refuses to enable an unknown one
/// itself; an event reaches the server and starts nothing.
async fn workflows_are_not_there_yet(browser: &mut Browser) {
    let enable = browser.call("enableWorkflow", json!(["wf-1"])).await;
    assert_eq!(enable["ok"], false, "{enable}");
    assert_eq!(requests(&enable), Vec::<String>::new());
    let event = browser
        .call("event", json!(["Contact Created", {"id": 1}]))
        .await;
    assert_eq!(event["ok"], true, "{event}");
    let accepted = request(&event, "POST", "/sdk/events/trigger");
    assert_eq!(accepted["status"], 200);
    assert_eq!(accepted["body"]["executions"], json!([]));
}

async fn uninstall(browser: &mut Browser, app: &TestApp, p: &Project) {
    let gone = browser
        .ok("uninstallIntegration", json!([INTEGRATION]))
        .await;
    let deleted = request(&gone, "DELETE", "");
    assert!(
        deleted["path"]
            .as_str()
            .unwrap()
            .contains("/sdk/integrations/")
    );
    assert_eq!(deleted["status"], 200);
    assert_eq!(
        server_credentials(app, p, "john").await,
        Vec::<Value>::new()
    );
    let entry = &browser.user().await["integrations"][INTEGRATION];
    assert_eq!(entry["enabled"], false);
    assert_eq!(entry["allCredentials"], json!([]));
}

#[tokio::test]
async fn expired_tokens_and_suspended_users_are_signed_out() {
    let (app, p, _provider) = setup().await;
    let mut browser = Browser::launch(&app, "sign-out").await;

    // The SDK refuses an expired token itself, without a request.
    let mut claims = claims(&p.id, "late");
    claims["exp"] = json!(now_secs() - 60);
    let expired = browser
        .call("authenticate", json!([p.id, p.token_with(&claims), {}]))
        .await;
    assert_eq!(expired["ok"], false, "{expired}");
    assert!(
        expired["error"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    assert_eq!(requests(&expired), Vec::<String>::new());
    assert_eq!(browser.user().await, json!({"authenticated": false}));

    browser
        .ok(
            "authenticate",
            json!([p.id, p.token("mallory"), {"metadata": {"plan": "free"}}]),
        )
        .await;
    assert_eq!(browser.user().await["authenticated"], true);
    app.suspend_user(&p, "mallory").await.assert_status(200);
    let refused = browser
        .call("setUserMetadata", json!([{"plan": "pro"}]))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("user_suspended"),
        "{refused}"
    );
    let patch = request(&refused, "PATCH", "/sdk/me");
    assert_eq!(patch["status"], 403);
    assert_eq!(patch["body"]["code"], "user_suspended");
    // A 403 signs the SDK out and forgets the stored session.
    assert_eq!(browser.user().await, json!({"authenticated": false}));
    assert_eq!(browser.stored_state().await, Value::Null);
    assert_eq!(app.meta_of(&p, "mallory").await, json!({"plan": "free"}));
    browser.close().await;
}

/// The SaaS's own API, as a workflow calls it: records each request's `Authorization`
/// header and body.
async fn saas_api() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/notes",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let record = record.clone();
                async move {
                    let auth = headers["authorization"].to_str().unwrap_or("").to_owned();
                    record.lock().unwrap().push((auth, body));
                    axum::Json(json!({"saved": true}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, seen)
}

async fn deploy_workflow(app: &TestApp, p: &Project, id: &str, source: String) {
    let path = format!("/api/v1/projects/{}/workflows/{id}", p.id);
    let deployed = answer(
        app.client
            .put(app.url(&path))
            .bearer_auth(&p.secret_key)
            .header("content-type", "application/yaml")
            .body(source),
    )
    .await;
    deployed.assert_status(200);
}

/// Whether `workflow` is on for john, as the server holds it.
async fn enabled_on_server(app: &TestApp, p: &Project, workflow: &str) -> bool {
    let me = app.get_me(p, &p.token("john")).await;
    me.body["integrations"][INTEGRATION]["workflowSettings"][workflow]["enabled"] == true
}

/// enableWorkflow, disableWorkflow, updateWorkflowState, event and workflow from the SDK,
/// against workflows deployed on the server: switches land on the server, the app event
/// runs the enabled workflow (calling the SaaS with the user's API key from metadata, and
/// visible in the task history by the user's email), the request trigger answers at once.
#[tokio::test]
async fn workflows_are_switched_and_started_from_the_sdk() {
    let mut config = test_config();
    config.workflows.worker = true;
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let p = app.create_project().await;
    let provider = FakeProvider::with_consent_page().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    let (saas, seen) = saas_api().await;
    deploy_workflow(&app, &p, "notify", format!(
        "id: notify\nname: Notify the app\nintegration: {INTEGRATION}\ntrigger: {{ type: event, event: Contact Created }}\nsteps:\n  - {{ id: save, type: http, method: POST, url: \"{saas}/notes\", headers: {{ Authorization: \"Bearer {{{{ user.meta.apiKey }}}}\" }}, body: {{ contact: \"{{{{ trigger.payload.id }}}}\" }} }}\n"
    )).await;
    deploy_workflow(&app, &p, "quote", format!(
        "id: quote\nname: Quote\nintegration: {INTEGRATION}\ntrigger: {{ type: request, timeout_ms: 20000 }}\nsteps:\n  - {{ id: me, type: integration_request, path: /me }}\n  - {{ id: answer, type: respond, status: 200, body: {{ account: \"{{{{ steps.me.output.body.name }}}}\", asked: \"{{{{ trigger.body.q }}}}\" }} }}\n"
    )).await;

    let mut browser = Browser::launch(&app, "workflows").await;
    let metadata = json!({"email": "john@bookface.com", "apiKey": "k_john_42"});
    browser
        .ok(
            "authenticate",
            json!([p.id, p.token("john"), {"metadata": metadata}]),
        )
        .await;
    install_through_polling(&mut browser, &app, &p).await;

    let on = browser.ok("enableWorkflow", json!(["notify"])).await;
    assert_eq!(request(&on, "POST", "/sdk/workflows/notify")["status"], 200);
    assert!(enabled_on_server(&app, &p, "notify").await);
    let user = browser.user().await;
    assert_eq!(
        user["integrations"][INTEGRATION]["workflowSettings"]["notify"]["enabled"],
        true
    );
    let off = browser.ok("disableWorkflow", json!(["notify"])).await;
    assert_eq!(
        request(&off, "DELETE", "/sdk/workflows/notify")["status"],
        200
    );
    assert!(!enabled_on_server(&app, &p, "notify").await);

    let both = browser
        .ok(
            "updateWorkflowState",
            json!([{"notify": true, "quote": true}]),
        )
        .await;
    assert_eq!(both["value"]["errors"], json!([]), "{both}");
    assert!(enabled_on_server(&app, &p, "notify").await);
    assert!(enabled_on_server(&app, &p, "quote").await);

    let sent = browser
        .ok("event", json!(["Contact Created", {"id": "c-7"}]))
        .await;
    let trigger = request(&sent, "POST", "/sdk/events/trigger");
    assert_eq!(trigger["status"], 200);
    let execution = trigger["body"]["executions"][0]
        .as_str()
        .unwrap()
        .to_owned();
    // The server's own worker runs too (the request trigger needs it), so it may hold the
    // execution while `drain` finds nothing: wait for the run to end.
    app.server.services.worker.drain().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let history = loop {
        let history = app
            .send(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/projects/{}/executions?meta.Email=john@bookface.com&workflowId=notify",
                    p.id
                ),
                Some(&p.secret_key),
                None,
            )
            .await;
        let status = &history.body["data"][0]["status"];
        if (status != "EXECUTING" && status != "QUEUED") || std::time::Instant::now() > deadline {
            break history;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        history.body["data"][0]["id"],
        execution.as_str(),
        "{}",
        history.text
    );
    assert_eq!(
        history.body["data"][0]["status"], "SUCCEEDED",
        "{}",
        history.text
    );
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![("Bearer k_john_42".to_owned(), json!({"contact": "c-7"}))],
        "the SaaS was called once, with the user's API key"
    );

    let quoted = browser
        .ok("workflow", json!(["quote", {"body": {"q": "price"}}]))
        .await;
    assert_eq!(
        quoted["value"],
        json!({"account": "Ada Lovelace", "asked": "price"}),
        "{quoted}"
    );
    browser.screenshot("after-workflows").await;
    browser.close().await;
}
