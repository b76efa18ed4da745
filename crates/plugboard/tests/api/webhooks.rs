//! Lifecycle webhooks end to end: endpoints managed over the API, events written to the
//! outbox, the server's dispatcher sending them to `tests/webhooks/receiver.py`, which
//! checks every signature with the `standardwebhooks` package from PyPI (an
//! implementation independent of ours) and answers as scripted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use plugboard::config::{Config, Secret, WebhooksConfig};
use plugboard_core::{OutboxEvent, ProjectId, now_millis};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::common::{self, Answer, Project, TestApp, free_port, raw_database_text};

// ---------------------------------------------------------------------------------------
// The scripted receiver

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the setup script (idempotent, locked) and returns the venv's python.
fn python() -> PathBuf {
    let root = repo_root();
    let status = std::process::Command::new(root.join("scripts/ensure-python-webhooks"))
        .status()
        .expect("run scripts/ensure-python-webhooks");
    assert!(status.success(), "scripts/ensure-python-webhooks failed");
    let venv = std::env::var_os("PLUGBOARD_WEBHOOK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/webhook-venv"));
    venv.join("bin/python")
}

/// A running `receiver.py` that accepts webhooks signed with any of its secrets; killed
/// when dropped.
pub(crate) struct Receiver {
    _child: Child,
    port: u16,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub(crate) async fn start(port: u16, secrets: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command.arg(repo_root().join("tests/webhooks/receiver.py"));
        for secret in secrets {
            command.args(["--secret", secret]);
        }
        command
            .args(["--port", &port.to_string(), "--log"])
            .arg(dir.path().join("log.jsonl"));
        command.stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().expect("spawn receiver.py");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("receiver.py printed no port within 30 s")
        .unwrap()
        .expect("receiver.py exited before listening");
        let printed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(printed["port"], port);
        Self {
            _child: child,
            port,
            http: common::http_client(),
            _dir: dir,
        }
    }

    async fn plan(&self, entries: &[&str]) {
        let response = self
            .http
            .post(format!("http://127.0.0.1:{}/_control", self.port))
            .json(&json!({ "plan": entries }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
    }

    pub(crate) async fn log(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/_log", self.port);
        let response = self.http.get(url).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Waits until it has logged `n` webhooks, and returns them.
    pub(crate) async fn wait_for_log(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log().await;
            if log.len() >= n {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver saw {} webhooks, not {n}: {log:?}",
                log.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An event type the tests never emit: endpoints on hosts that are not the test's
/// receivers subscribe to it only, so nothing is sent to them.
const QUIET: &str = "entitlement.changed";

pub(crate) fn hook_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/hooks/plugboard")
}

// ---------------------------------------------------------------------------------------
// Set-up and calls

/// Short retries and timeouts, loopback endpoints, and a dispatcher running (it runs on
/// the worker nodes).
pub(crate) fn config_with(webhooks: WebhooksConfig) -> Config {
    let mut config = common::test_config();
    config.workflows.worker = true;
    config.webhooks = webhooks;
    config
}

pub(crate) fn fast() -> WebhooksConfig {
    WebhooksConfig {
        allow_loopback: true,
        timeout_secs: 1,
        max_attempts: 5,
        retry_base_ms: 100,
        ..WebhooksConfig::default()
    }
}

async fn spawn(backend: common::Backend) -> TestApp {
    TestApp::spawn_with(backend, config_with(fast())).await
}

fn project_id(p: &Project) -> ProjectId {
    ProjectId::parse(&p.id).unwrap()
}

async fn call(
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

/// Registers an endpoint; returns its id and secret.
pub(crate) async fn create_endpoint(app: &TestApp, p: &Project, body: Value) -> (String, String) {
    let created = call(app, p, Method::POST, "webhooks/endpoints", Some(body)).await;
    created.assert_status(201);
    let text = |k: &str| created.body[k].as_str().unwrap().to_owned();
    assert!(text("secret").starts_with("whsec_"), "{}", created.text);
    (text("id"), text("secret"))
}

/// Writes an event to the outbox, as a service would with its change.
async fn emit(app: &TestApp, p: &Project, event_type: &str, data: Value) -> OutboxEvent {
    let event = OutboxEvent::new(project_id(p), event_type, data, now_millis());
    app.store
        .insert_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    app.server.services.dispatcher.wake();
    event
}

async fn event_detail(app: &TestApp, p: &Project, event: &OutboxEvent) -> Value {
    let got = call(app, p, Method::GET, &format!("events/{}", event.id), None).await;
    got.assert_status(200);
    got.body
}

/// Waits until the event's only delivery has this status, and returns the event.
async fn wait_for_delivery(app: &TestApp, p: &Project, event: &OutboxEvent, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let detail = event_detail(app, p, event).await;
        if detail["deliveries"][0]["status"] == status {
            return detail;
        }
        assert!(Instant::now() < deadline, "no {status} delivery: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests

backend_tests! {
    async fn deliveries_verify_with_the_standardwebhooks_package(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let port = free_port();
        let (endpoint, secret) = create_endpoint(
            &app, &p,
            json!({"url": hook_url(port), "description": "CRM sync", "eventTypes": ["user.created"]}),
        ).await;
        // Another endpoint that wants other events gets no delivery.
        create_endpoint(
            &app, &p,
            json!({"url": hook_url(free_port()), "eventTypes": ["user.deleted"]}),
        ).await;
        let receiver = Receiver::start(port, &[&secret]).await;

        let event = emit(&app, &p, "user.created", json!({"userId": "u-1"})).await;

        let log = receiver.wait_for_log(1).await;
        let entry = &log[0];
        assert_eq!(entry["verified"], true, "{entry}");
        assert_eq!(entry["id"], event.message_id());
        assert_eq!(entry["body"]["type"], "user.created");
        assert_eq!(entry["body"]["id"], event.message_id());
        assert_eq!(entry["body"]["data"], json!({"userId": "u-1"}));
        assert_eq!(entry["user_agent"], plugboard_webhooks::USER_AGENT);
        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        assert_eq!(detail["type"], "user.created");
        assert_eq!(detail["messageId"], event.message_id());
        let deliveries = detail["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 1, "{detail}");
        assert_eq!(deliveries[0]["endpointId"], endpoint);
        assert_eq!(deliveries[0]["attemptCount"], 1);
        assert_eq!(statuses(&deliveries[0]), [json!(200)]);
        assert_eq!(deliveries[0]["attempts"][0]["responseExcerpt"], "ok");

        let listed = call(&app, &p, Method::GET, "events?type=user.created", None).await;
        listed.assert_status(200);
        assert_eq!(listed.body["data"][0]["id"], event.id.to_string());
        let none = call(&app, &p, Method::GET, "events?type=user.deleted", None).await;
        assert_eq!(none.body["data"], json!([]));
    }

    async fn a_500_is_retried_and_the_log_shows_both_attempts(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let port = free_port();
        let (_, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        receiver.plan(&["500", "200"]).await;

        let event = emit(&app, &p, "user.metadata_updated", json!({"userId": "u-2"})).await;

        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        let delivery = &detail["deliveries"][0];
        assert_eq!(delivery["attemptCount"], 2, "{detail}");
        assert_eq!(statuses(delivery), [json!(500), json!(200)]);
        assert_eq!(delivery["attempts"][0]["attempt"], 1);
        assert_eq!(delivery["attempts"][1]["attempt"], 2);
        let log = receiver.log().await;
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.iter().all(|e| e["verified"] == true && e["id"] == event.message_id()));
    }

    async fn retry_after_is_honoured(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let port = free_port();
        let (_, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        receiver.plan(&["429:2", "200"]).await;

        let event = emit(&app, &p, "user.created", json!({"userId": "u-3"})).await;

        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        let delivery = &detail["deliveries"][0];
        assert_eq!(statuses(delivery), [json!(429), json!(200)], "{detail}");
        let id = Uuid::parse_str(delivery["id"].as_str().unwrap()).unwrap();
        let attempts = app.store.list_delivery_attempts(id).await.unwrap();
        let waited = attempts[1].started_at - (attempts[0].started_at + attempts[0].duration_ms);
        // The base delay is 100 ms: only Retry-After makes it wait this long.
        assert!(waited >= 2000, "the second attempt came {waited} ms after the 429");
        assert_eq!(receiver.log().await.len(), 2);
    }

    async fn a_receiver_that_times_out_is_retried(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let port = free_port();
        let (_, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        receiver.plan(&["timeout:3", "200"]).await;

        let event = emit(&app, &p, "user.suspended", json!({"userId": "u-4"})).await;

        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        let delivery = &detail["deliveries"][0];
        assert_eq!(statuses(delivery), [Value::Null, json!(200)], "{detail}");
        let error = delivery["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("timeout"), "{error}");
        assert_eq!(receiver.log().await.len(), 2);
    }

    async fn a_pending_retry_survives_a_restart(backend) {
        let mut config = config_with(WebhooksConfig { retry_base_ms: 2500, ..fast() });
        // The restarted server must open the secrets the first one sealed.
        config.master_key = Some(Secret::new(
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ));
        let app = TestApp::spawn_with(backend, config.clone()).await;
        let p = app.create_project().await;
        let port = free_port();
        let (_, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        receiver.plan(&["500"]).await;
        let event = emit(&app, &p, "user.deleted", json!({"userId": "u-5"})).await;
        receiver.wait_for_log(1).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pending = loop {
            let detail = event_detail(&app, &p, &event).await;
            if detail["deliveries"][0]["attemptCount"] == 1 {
                break detail;
            }
            assert!(Instant::now() < deadline, "{detail}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(pending["deliveries"][0]["status"], "PENDING", "{pending}");
        assert!(pending["deliveries"][0]["nextAttemptAt"].is_string(), "{pending}");

        let app = app.restart(config).await;

        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        assert_eq!(statuses(&detail["deliveries"][0]), [json!(500), json!(200)]);
        let log = receiver.log().await;
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.iter().all(|e| e["verified"] == true));
    }

    async fn a_failing_endpoint_is_disabled_and_resumes_when_enabled(backend) {
        let app = TestApp::spawn_with(
            backend,
            config_with(WebhooksConfig { disable_after_failures: 3, max_attempts: 20, ..fast() }),
        ).await;
        let p = app.create_project().await;
        let port = free_port();
        let (endpoint, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        receiver.plan(&["500", "503", "500", "500", "500"]).await;
        let event = emit(&app, &p, "credential.invalid", json!({"userId": "u-6"})).await;

        let path = format!("webhooks/endpoints/{endpoint}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let disabled = loop {
            let got = call(&app, &p, Method::GET, &path, None).await;
            got.assert_status(200);
            if got.body["disabled"] == true {
                break got.body;
            }
            assert!(Instant::now() < deadline, "never disabled: {}", got.text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let reason = disabled["disabledReason"].as_str().unwrap();
        assert!(reason.contains("3 failed attempts"), "{reason}");
        assert_eq!(disabled["consecutiveFailures"], 3);
        // Nothing more is sent while it is disabled; the delivery waits.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.log().await.len(), 3);
        let detail = event_detail(&app, &p, &event).await;
        assert_eq!(detail["deliveries"][0]["status"], "PENDING", "{detail}");
        let listed = call(&app, &p, Method::GET, "webhooks/endpoints", None).await;
        assert_eq!(listed.body["data"][0]["disabled"], true);
        // An event while it is disabled waits for it too.
        let later = emit(&app, &p, "user.deleted", json!({"userId": "u-6"})).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.log().await.len(), 3);

        receiver.plan(&[]).await;
        let enabled = call(&app, &p, Method::PATCH, &path, Some(json!({"enabled": true}))).await;
        enabled.assert_status(200);
        assert_eq!(enabled.body["disabled"], false);
        assert_eq!(enabled.body["disabledReason"], Value::Null);
        assert_eq!(enabled.body["consecutiveFailures"], 0);

        let detail = wait_for_delivery(&app, &p, &event, "DELIVERED").await;
        assert_eq!(detail["deliveries"][0]["attemptCount"], 4, "{detail}");
        let detail = wait_for_delivery(&app, &p, &later, "DELIVERED").await;
        assert_eq!(detail["deliveries"][0]["attemptCount"], 1, "{detail}");
        let got = call(&app, &p, Method::GET, &path, None).await;
        assert_eq!(got.body["disabled"], false);
    }

    async fn redelivery_sends_the_same_webhook_id_again(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let port = free_port();
        let (endpoint, secret) = create_endpoint(&app, &p, json!({"url": hook_url(port)})).await;
        let receiver = Receiver::start(port, &[&secret]).await;
        let event = emit(&app, &p, "workflow.enabled", json!({"workflowId": "w"})).await;
        wait_for_delivery(&app, &p, &event, "DELIVERED").await;

        let path = format!("events/{}/redeliver", event.id);
        let again = call(&app, &p, Method::POST, &path, None).await;
        again.assert_status(202);
        assert_eq!(again.body["deliveries"], 1);
        let log = receiver.wait_for_log(2).await;
        assert_eq!(log[0]["id"], event.message_id());
        assert_eq!(log[1]["id"], event.message_id());
        assert!(log.iter().all(|e| e["verified"] == true));

        let named = call(&app, &p, Method::POST, &path, Some(json!({"endpointId": endpoint}))).await;
        named.assert_status(202);
        receiver.wait_for_log(3).await;

        let unknown = json!({"endpointId": Uuid::new_v4()});
        call(&app, &p, Method::POST, &path, Some(unknown))
            .await
            .assert_error(404, "webhook_endpoint_not_found");
        call(&app, &p, Method::POST, &format!("events/{}/redeliver", Uuid::new_v4()), None)
            .await
            .assert_error(404, "event_not_found");
    }

    async fn rotated_secrets_overlap_during_the_grace_period(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let old_port = free_port();
        let (endpoint, old) = create_endpoint(&app, &p, json!({"url": hook_url(old_port)})).await;
        let path = format!("webhooks/endpoints/{endpoint}");

        let rotated = call(&app, &p, Method::POST, &format!("{path}/rotate-secret"), None).await;
        rotated.assert_status(200);
        let new = rotated.body["secret"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert!(rotated.body["previousSecretExpiresAt"].is_string(), "{}", rotated.text);

        // A receiver that only knows the old secret still verifies.
        let only_old = Receiver::start(old_port, &[&old]).await;
        emit(&app, &p, "user.created", json!({"userId": "r-1"})).await;
        assert_eq!(only_old.wait_for_log(1).await[0]["verified"], true);

        // So does one that only knows the new one.
        let new_port = free_port();
        let only_new = Receiver::start(new_port, &[&new]).await;
        call(&app, &p, Method::PATCH, &path, Some(json!({"url": hook_url(new_port)})))
            .await
            .assert_status(200);
        emit(&app, &p, "user.created", json!({"userId": "r-2"})).await;
        assert_eq!(only_new.wait_for_log(1).await[0]["verified"], true);

        // Without grace, the previous secret stops signing at once.
        let abrupt = call(
            &app, &p, Method::POST, &format!("{path}/rotate-secret"),
            Some(json!({"graceSeconds": 0})),
        ).await;
        abrupt.assert_status(200);
        assert_eq!(abrupt.body["previousSecretExpiresAt"], Value::Null);
        emit(&app, &p, "user.created", json!({"userId": "r-3"})).await;
        let log = only_new.wait_for_log(2).await;
        assert_eq!(log[1]["verified"], false, "{log:?}");

        call(
            &app, &p, Method::POST, &format!("{path}/rotate-secret"),
            Some(json!({"graceSeconds": 7 * 24 * 3600 + 1})),
        ).await.assert_error(422, "invalid_input");
    }

    async fn secrets_are_sealed_and_never_listed(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let (endpoint, first) = create_endpoint(
            &app, &p, json!({"url": "https://hooks.example.com/plugboard"}),
        ).await;
        let path = format!("webhooks/endpoints/{endpoint}");
        let rotated = call(&app, &p, Method::POST, &format!("{path}/rotate-secret"), None).await;
        let second = rotated.body["secret"].as_str().unwrap().to_owned();

        let mut answers = Vec::new();
        for rest in ["webhooks/endpoints".to_owned(), path.clone()] {
            let got = call(&app, &p, Method::GET, &rest, None).await;
            got.assert_status(200);
            answers.push(got.text);
        }
        let patched = call(&app, &p, Method::PATCH, &path, Some(json!({"description": "d"}))).await;
        answers.push(patched.text);
        let raw = raw_database_text(&app).await;
        assert!(raw.contains("hooks.example.com"), "the dump holds the endpoint");
        for secret in [&first, &second] {
            let key = secret.strip_prefix("whsec_").unwrap();
            assert!(!raw.contains(key), "a webhook secret is stored in clear");
            for answer in &answers {
                assert!(!answer.contains(key), "a webhook secret is shown: {answer}");
                assert!(!answer.contains("secret\""), "{answer}");
            }
        }
    }

    async fn endpoints_and_events_belong_to_their_project(backend) {
        let app = spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        let (endpoint, _) = create_endpoint(&app, &a, json!({"url": "https://a.example.com/h", "eventTypes": [QUIET]})).await;
        let event = emit(&app, &a, "user.created", json!({"userId": "a-1"})).await;

        // B's key on A's routes.
        let foreign = a.with_secret(&b.secret_key);
        let denied = call(&app, &foreign, Method::GET, &format!("webhooks/endpoints/{endpoint}"), None).await;
        assert!(matches!(denied.status.as_u16(), 401 | 403 | 404), "{}", denied.text);
        // A's ids under B.
        call(&app, &b, Method::GET, &format!("webhooks/endpoints/{endpoint}"), None)
            .await
            .assert_error(404, "webhook_endpoint_not_found");
        call(&app, &b, Method::PATCH, &format!("webhooks/endpoints/{endpoint}"), Some(json!({"enabled": false})))
            .await
            .assert_error(404, "webhook_endpoint_not_found");
        call(&app, &b, Method::DELETE, &format!("webhooks/endpoints/{endpoint}"), None)
            .await
            .assert_error(404, "webhook_endpoint_not_found");
        call(&app, &b, Method::POST, &format!("webhooks/endpoints/{endpoint}/rotate-secret"), None)
            .await
            .assert_error(404, "webhook_endpoint_not_found");
        call(&app, &b, Method::GET, &format!("events/{}", event.id), None)
            .await
            .assert_error(404, "event_not_found");
        call(&app, &b, Method::POST, &format!("events/{}/redeliver", event.id), None)
            .await
            .assert_error(404, "event_not_found");
        let listed = call(&app, &b, Method::GET, "webhooks/endpoints", None).await;
        assert_eq!(listed.body["data"], json!([]));
        let events = call(&app, &b, Method::GET, "events", None).await;
        assert_eq!(events.body["data"], json!([]));
        // A still has both.
        call(&app, &a, Method::GET, &format!("webhooks/endpoints/{endpoint}"), None)
            .await
            .assert_status(200);
        call(&app, &a, Method::DELETE, &format!("webhooks/endpoints/{endpoint}"), None)
            .await
            .assert_status(204);
        call(&app, &a, Method::GET, &format!("webhooks/endpoints/{endpoint}"), None)
            .await
            .assert_error(404, "webhook_endpoint_not_found");
    }

    async fn refused_receivers_name_the_setting_that_allows_loopback(backend) {
        // The default settings, as `plugboard serve` has them: no loopback receivers.
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for url in ["http://127.0.0.1:9/h", "http://localhost:9/h", "https://127.0.0.1/h", "http://example.com/h"] {
            let refused = call(&app, &p, Method::POST, "webhooks/endpoints", Some(json!({"url": url}))).await;
            refused.assert_error(422, "invalid_webhook_url");
            let message = refused.body["message"].as_str().unwrap();
            assert!(message.contains("webhooks.allow_loopback"), "{url}: {message}");
        }
    }

    async fn endpoint_rules_and_event_pages(backend) {
        let app = spawn(backend).await;
        let p = app.create_project().await;
        let create = |body: Value| {
            let app = &app;
            let p = &p;
            async move { call(app, p, Method::POST, "webhooks/endpoints", Some(body)).await }
        };
        for url in ["http://example.com/h", "https://10.0.0.1/h", "not a url", "https://u:p@example.com/"] {
            create(json!({"url": url})).await.assert_error(422, "invalid_webhook_url");
        }
        create(json!({"url": "https://example.com/h", "eventTypes": ["user.exploded"]}))
            .await
            .assert_error(422, "invalid_input");
        create(json!({"url": "https://example.com/h", "description": "x".repeat(501)}))
            .await
            .assert_error(422, "invalid_input");
        for n in 0..20 {
            let url = format!("https://example.com/{n}");
            create(json!({"url": url, "eventTypes": [QUIET]})).await.assert_status(201);
        }
        create(json!({"url": "https://example.com/21"}))
            .await
            .assert_error(409, "too_many_endpoints");

        for n in 0..5 {
            emit(&app, &p, "user.created", json!({"n": n})).await;
        }
        emit(&app, &p, "user.deleted", json!({"n": 5})).await;
        let first = call(&app, &p, Method::GET, "events?limit=4", None).await;
        first.assert_status(200);
        let page: Vec<Value> = first.body["data"].as_array().unwrap().iter().map(|e| e["data"]["n"].clone()).collect();
        assert_eq!(page, [json!(5), json!(4), json!(3), json!(2)]);
        let cursor = first.body["nextCursor"].as_str().unwrap();
        let second = call(&app, &p, Method::GET, &format!("events?limit=4&cursor={cursor}"), None).await;
        let page: Vec<Value> = second.body["data"].as_array().unwrap().iter().map(|e| e["data"]["n"].clone()).collect();
        assert_eq!(page, [json!(1), json!(0)]);
        assert_eq!(second.body["nextCursor"], Value::Null);
        call(&app, &p, Method::GET, "events?limit=101", None).await.assert_error(400, "invalid_filter");
        call(&app, &p, Method::GET, "events?type=nope", None).await.assert_error(400, "invalid_filter");
        call(&app, &p, Method::GET, "events?cursor=zzz", None).await.assert_error(400, "invalid_cursor");
    }
}
