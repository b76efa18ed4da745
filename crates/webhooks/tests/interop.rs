//! Interop: deliveries checked by the `standardwebhooks` package from PyPI, an
//! implementation independent of ours, in the scripted receiver
//! `tests/webhooks/receiver.py` (its venv comes from `scripts/ensure-python-webhooks`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use plugboard_webhooks::{
    AttemptOutcome, Deliverer, USER_AGENT, WebhookMessage, WebhookSecret, validate_endpoint_url,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

const TIMEOUT: Duration = Duration::from_secs(10);

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

/// A running `receiver.py`; killed when dropped.
struct Receiver {
    _child: Child,
    base: Url,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Receiver {
    async fn start(secrets: &[&WebhookSecret]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command.arg(repo_root().join("tests/webhooks/receiver.py"));
        for secret in secrets {
            command.args(["--secret", secret.expose()]);
        }
        command
            .args(["--port", "0", "--log"])
            .arg(dir.path().join("log.jsonl"));
        command.stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().expect("spawn receiver.py");
        let port = read_port(&mut child).await;
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let http = reqwest::Client::new();
        Self {
            _child: child,
            base,
            http,
            _dir: dir,
        }
    }

    fn hook_url(&self) -> Url {
        let url = self.base.join("hooks/plugboard").unwrap();
        validate_endpoint_url(url.as_str(), true).expect("loopback allowed in tests")
    }

    async fn plan(&self, entries: &[&str]) {
        let url = self.base.join("_control").unwrap();
        let response = self
            .http
            .post(url)
            .json(&json!({ "plan": entries }))
            .send()
            .await;
        assert_eq!(response.unwrap().status().as_u16(), 204);
    }

    async fn log(&self) -> Vec<Value> {
        let url = self.base.join("_log").unwrap();
        let response = self.http.get(url).send().await.unwrap();
        response.json().await.unwrap()
    }
}

async fn read_port(child: &mut Child) -> u16 {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("receiver.py printed no port within 30 s")
        .unwrap()
        .expect("receiver.py exited before listening");
    let value: Value = serde_json::from_str(&line).unwrap();
    value["port"].as_u64().unwrap().try_into().unwrap()
}

fn now_secs() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    since.as_secs().try_into().unwrap()
}

fn message(id: &str) -> WebhookMessage {
    let body = json!({ "type": "execution.completed", "data": { "id": id, "n": 1 } });
    WebhookMessage::new(id, now_secs(), serde_json::to_vec(&body).unwrap())
}

async fn deliver(
    receiver: &Receiver,
    message: &WebhookMessage,
    secrets: &[&WebhookSecret],
) -> AttemptOutcome {
    let deliverer = Deliverer::new(true).unwrap();
    deliverer
        .deliver(&receiver.hook_url(), message, secrets, TIMEOUT)
        .await
}

#[tokio::test]
async fn the_python_library_verifies_our_signature() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&[&secret]).await;
    let message = message("msg_interop_1");

    let outcome = deliver(&receiver, &message, &[&secret]).await;

    assert!(outcome.delivered(), "{outcome:?}");
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.response_excerpt, "ok");
    assert_eq!(outcome.error, None);
    let log = receiver.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    let entry = &log[0];
    assert_eq!(entry["verified"], true, "{entry}");
    assert_eq!(entry["id"], "msg_interop_1");
    assert_eq!(entry["timestamp"], message.timestamp_secs.to_string());
    assert_eq!(entry["body"]["data"]["id"], "msg_interop_1");
    assert_eq!(entry["user_agent"], USER_AGENT);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets() {
    let old = WebhookSecret::generate();
    let new = WebhookSecret::generate();
    let unknown = WebhookSecret::generate();
    let receiver = Receiver::start(&[&old]).await;

    let rotated = deliver(&receiver, &message("msg_rotated"), &[&new, &old]).await;
    let foreign = deliver(&receiver, &message("msg_foreign"), &[&new, &unknown]).await;

    assert!(rotated.delivered(), "{rotated:?}");
    assert_eq!(foreign.status, Some(400), "{foreign:?}");
    assert!(!foreign.delivered());
    assert!(
        foreign.response_excerpt.starts_with("invalid signature"),
        "{foreign:?}"
    );
    let log = receiver.log().await;
    let verified: Vec<_> = log
        .iter()
        .map(|e| (e["id"].clone(), e["verified"].clone()))
        .collect();
    assert_eq!(
        verified,
        [
            (json!("msg_rotated"), json!(true)),
            (json!("msg_foreign"), json!(false))
        ]
    );
    assert!(
        log[1]["error"]
            .as_str()
            .unwrap()
            .contains("No matching signature"),
        "{log:?}"
    );
}

#[tokio::test]
async fn failures_are_recorded_with_retry_after() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&[&secret]).await;
    receiver.plan(&["500", "429:2", "302", "200"]).await;

    let mut outcomes = Vec::new();
    for n in 0..4 {
        outcomes.push(deliver(&receiver, &message(&format!("msg_{n}")), &[&secret]).await);
    }

    let statuses: Vec<_> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [Some(500), Some(429), Some(302), Some(200)]);
    let delivered: Vec<_> = outcomes.iter().map(AttemptOutcome::delivered).collect();
    assert_eq!(delivered, [false, false, false, true]);
    assert_eq!(outcomes[0].retry_after, None);
    assert_eq!(outcomes[1].retry_after, Some(Duration::from_secs(2)));
    assert_eq!(outcomes[2].error.as_deref(), Some("redirect not followed"));
    let log = receiver.log().await;
    assert!(log.iter().all(|e| e["verified"] == true), "{log:?}");
}

#[tokio::test]
async fn a_slow_receiver_times_out_within_the_limit() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&[&secret]).await;
    receiver.plan(&["timeout:5"]).await;
    let deliverer = Deliverer::new(true).unwrap();

    let started = Instant::now();
    let outcome = deliverer
        .deliver(
            &receiver.hook_url(),
            &message("msg_slow"),
            &[&secret],
            Duration::from_secs(1),
        )
        .await;

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, None);
    assert!(!outcome.delivered());
    let error = outcome.error.as_deref().unwrap();
    assert!(error.contains("timeout"), "{error}");
    assert!(
        outcome.duration_ms >= 1000 && outcome.duration_ms < 3000,
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_short_connect_error_without_the_secret() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = validate_endpoint_url(&format!("http://127.0.0.1:{port}/h?token=abc"), true).unwrap();
    let secret = WebhookSecret::generate();

    let outcome = Deliverer::new(true)
        .unwrap()
        .deliver(&url, &message("msg_x"), &[&secret], TIMEOUT)
        .await;

    assert_eq!(outcome.status, None);
    let error = outcome.error.unwrap();
    assert!(error.starts_with("connect error"), "{error}");
    assert!(
        !error.contains("token=abc") && !error.contains(secret.expose()),
        "{error}"
    );
}
