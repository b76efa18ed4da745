//! The `plugboard` binary end to end: `project create`, `token`, `serve` (with its exit
//! codes and graceful SIGTERM) and `dev`.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use plugboard_core::{ProjectId, UserId};
use serde_json::{Value, json};

use common::*;

/// `plugboard <args>` in `dir`, with no `PLUGBOARD_*` setting inherited from the caller.
fn plugboard(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(plugboard_bin());
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("PLUGBOARD_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// Runs to completion; asserts success and returns stdout.
/// `plugboard serve` (or `serve --role …`) on this database, port and master key, with
/// loopback providers allowed (the fake provider listens on loopback).
fn serve_command(
    dir: &Path,
    args: &[&str],
    database_url: &str,
    port: u16,
    public_url: &str,
    master_key: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut serve = plugboard(dir, args);
    serve
        .env("PLUGBOARD_DATABASE_URL", database_url)
        .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUGBOARD_PUBLIC_URL", public_url)
        .env("PLUGBOARD_MASTER_KEY", master_key)
        .env("PLUGBOARD_ALLOW_LOOPBACK_PROVIDERS", "true");
    serve
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("running plugboard");
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls the task history until `count` executions of the project succeeded (60 s at most;
/// `log` says what the server printed if not).
async fn wait_until_succeeded(
    base: &str,
    pid: &str,
    secret: &str,
    count: usize,
    log: impl Fn() -> String,
) {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = call(
            client
                .get(format!(
                    "{base}/api/v1/projects/{pid}/executions?status=SUCCEEDED&limit=100"
                ))
                .bearer_auth(secret),
        )
        .await;
        if done.body["data"].as_array().unwrap().len() == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all executions finished:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `plugboard project create` on `database_url`: the project's id, its secret key and the
/// file holding its signing key.
fn create_project_with_cli(
    dir: &Path,
    database_url: &str,
    name: &str,
) -> (String, String, PathBuf) {
    let key_path = dir.join(format!("{name}-key.pem"));
    let created: Value = serde_json::from_str(&run_ok(
        plugboard(
            dir,
            &[
                "project",
                "create",
                "--name",
                name,
                "--key-out",
                key_path.to_str().unwrap(),
            ],
        )
        .env("PLUGBOARD_DATABASE_URL", database_url),
    ))
    .unwrap();
    let pid = created["projectId"].as_str().unwrap().to_owned();
    let secret = created["secretKey"].as_str().unwrap().to_owned();
    (pid, secret, key_path)
}

fn master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
}

/// A child process that is killed if the test ends before it does.
struct Running {
    child: std::process::Child,
    stderr_log: std::path::PathBuf,
}

impl Running {
    fn spawn(mut command: Command, stderr_log: std::path::PathBuf) -> Self {
        let log = std::fs::File::create(&stderr_log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("starting plugboard");
        Self { child, stderr_log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit.
    async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {within:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stdout lines, read on a thread so a slow child never blocks the test.
    fn stdout_lines(&mut self) -> mpsc::Receiver<String> {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        receive
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `GET {base}/healthz` until it answers 200 (at most 30 s).
async fn wait_until_healthy(base: &str, running: &mut Running) {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status() == 200
        {
            return;
        }
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!(
                "plugboard exited ({status}) before it was healthy:\n{}",
                running.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "not healthy within 30 s:\n{}",
            running.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(request: reqwest::RequestBuilder) -> Answer {
    answer(request).await
}

backend_tests! {
    async fn project_create_token_and_serve_round_trip(backend) {
        let dir = tempfile::tempdir().unwrap();
        let database_url = backend.fresh_store(dir.path()).await.0;
        let key_path = dir.path().join("key.pem");
        let created = run_ok(
            plugboard(dir.path(), &["project", "create", "--name", "e2e", "--key-out", key_path.to_str().unwrap()])
                .env("PLUGBOARD_DATABASE_URL", &database_url),
        );
        let created: Value = serde_json::from_str(&created).expect("project create prints JSON");
        let pid = created["projectId"].as_str().unwrap().to_owned();
        let secret = created["secretKey"].as_str().unwrap().to_owned();
        assert_eq!(created["name"], json!("e2e"));
        assert_eq!(created["privateKeyPath"], json!(key_path.to_str().unwrap()));
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is readable by its owner only");

        let token = run_ok(&mut plugboard(
            dir.path(),
            &["token", "--project", &pid, "--user", "cli-user", "--key", key_path.to_str().unwrap()],
        ));
        let token = token.trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "{token}");

        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut serve = plugboard(dir.path(), &["serve"]);
        serve
            .env("PLUGBOARD_DATABASE_URL", &database_url)
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLUGBOARD_MASTER_KEY", master_key());
        let mut server = Running::spawn(serve, dir.path().join("serve.log"));
        wait_until_healthy(&base, &mut server).await;

        let client = http_client();
        let me_url = format!("{base}/projects/{pid}/sdk/me");
        let me = call(client.get(&me_url).bearer_auth(&token)).await;
        me.assert_status(200);
        assert_eq!(me.body["userId"], json!("cli-user"));
        let patched = call(client.patch(&me_url).bearer_auth(&token).json(&json!({"meta": {"plan": "pro"}}))).await;
        patched.assert_status(200);
        assert_eq!(patched.body["meta"], json!({"plan": "pro"}));
        let user = call(client.get(format!("{base}/api/v1/projects/{pid}/users/cli-user")).bearer_auth(&secret)).await;
        user.assert_status(200);
        assert_eq!(user.body["meta"], json!({"plan": "pro"}));

        let status = server.terminate(Duration::from_secs(10)).await;
        assert!(status.success(), "exit after SIGTERM: {status}; stderr:\n{}", server.stderr());
        // Shutting down flushed the user's lastSeen to the database.
        let store = plugboard::open_store(&database_url).await.unwrap();
        let stored = store
            .get_user(ProjectId::parse(&pid).unwrap(), &UserId::parse("cli-user").unwrap())
            .await
            .unwrap()
            .expect("the user is stored");
        assert!(stored.last_seen_at.is_some(), "lastSeen flushed on shutdown");
    }

    async fn serve_refuses_a_master_key_that_cannot_open_the_stored_secrets(backend) {
        let dir = tempfile::tempdir().unwrap();
        let database_url = backend.fresh_store(dir.path()).await.0;
        let (pid, secret, _) = create_project_with_cli(dir.path(), &database_url, "keys");
        let (old_key, new_key) = (master_key(), master_key());
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let serve_with = |key: &str, log: &str| {
            let command = serve_command(dir.path(), &["serve"], &database_url, port, &base, key);
            Running::spawn(command, dir.path().join(log))
        };
        // A sealed secret: a webhook endpoint's signing secret.
        let mut node = serve_with(&old_key, "old.log");
        wait_until_healthy(&base, &mut node).await;
        call(
            http_client()
                .post(format!("{base}/api/v1/projects/{pid}/webhooks/endpoints"))
                .bearer_auth(&secret)
                .json(&json!({"url": "https://example.com/hooks"})),
        )
        .await
        .assert_status(201);
        assert!(node.terminate(Duration::from_secs(10)).await.success());
        run_ok(
            plugboard(dir.path(), &["keys", "rotate"])
                .env("PLUGBOARD_DATABASE_URL", &database_url)
                .env("PLUGBOARD_MASTER_KEY", &new_key)
                .env("PLUGBOARD_PREVIOUS_MASTER_KEYS", format!("[\"{old_key}\"]")),
        );

        // The old key alone cannot open what is stored now: refuse to start, and say why.
        let mut stale = serve_with(&old_key, "stale.log");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = stale.child.try_wait().unwrap() {
                break status;
            }
            let healthy = http_client().get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200);
            assert!(!healthy, "started with a master key that opens none of the stored secrets");
            assert!(Instant::now() < deadline, "neither refused nor started within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!status.success());
        let stderr = stale.stderr();
        assert!(stderr.contains("master key"), "{stderr}");
        assert!(stderr.contains("previous_master_keys"), "{stderr}");
        assert!(stderr.contains("webhook signing secrets"), "{stderr}");
        assert!(!stderr.contains(&old_key) && !stderr.contains(&new_key), "no key in the message");

        let mut node = serve_with(&new_key, "new.log");
        wait_until_healthy(&base, &mut node).await;
        assert!(node.terminate(Duration::from_secs(10)).await.success());
    }

    async fn serve_refuses_to_start_without_a_master_key(backend) {
        let dir = tempfile::tempdir().unwrap();
        let database_url = backend.fresh_store(dir.path()).await.0;
        let out = plugboard(dir.path(), &["serve"])
            .env("PLUGBOARD_DATABASE_URL", &database_url)
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
        assert!(lines[0].contains("master_key"), "{stderr}");
        // A malformed one is refused the same way.
        let out = plugboard(dir.path(), &["serve"])
            .env("PLUGBOARD_DATABASE_URL", &database_url)
            .env("PLUGBOARD_MASTER_KEY", "c2hvcnQ=")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("master_key"), "{out:?}");
    }
}

/// What `plugboard dev` printed: the project, the token and the three sample requests.
struct Welcome {
    project_id: String,
    token: String,
    secret: String,
    /// (URL, body) of each `curl`, in order.
    curls: Vec<(String, Option<Value>)>,
}

/// Reads the welcome text up to its third `curl` (at most 60 s).
fn read_welcome(lines: &mpsc::Receiver<String>, running: &Running) -> Welcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = Vec::new();
    while !text.iter().any(|l: &String| l.contains("PB_SECRET\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => text.push(line),
            Err(_) => panic!(
                "no complete welcome within 60 s: {text:?}\n{}",
                running.stderr()
            ),
        }
    }
    let field = |prefix: &str| {
        text.iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("`{prefix}` in {text:?}"))
            .trim()
            .to_owned()
    };
    let mut curls = Vec::new();
    for (i, line) in text.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("curl -s ") else {
            continue;
        };
        let url = rest
            .split_whitespace()
            .find(|w| w.trim_matches('"').starts_with("http"))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        let body = text.get(i + 1).and_then(|next| {
            let start = next.find("-d '")? + 4;
            let end = next.rfind('\'')?;
            Some(serde_json::from_str(&next[start..end]).expect("curl -d carries JSON"))
        });
        curls.push((url, body));
    }
    assert_eq!(curls.len(), 3, "{text:?}");
    Welcome {
        project_id: field("project id"),
        token: field("PB_TOKEN="),
        secret: field("PB_SECRET="),
        curls,
    }
}

/// Starts `plugboard dev` on a free port over `state_dir`; returns it with its welcome.
async fn start_dev(work: &Path, state_dir: &Path, log: &str) -> (Running, Welcome) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let command = plugboard(
        work,
        &[
            "dev",
            "--listen",
            &listen,
            "--dir",
            state_dir.to_str().unwrap(),
        ],
    );
    let mut dev = Running::spawn(command, work.join(log));
    let lines = dev.stdout_lines();
    let welcome = read_welcome(&lines, &dev);
    wait_until_healthy(&format!("http://{listen}"), &mut dev).await;
    (dev, welcome)
}

/// `dev` runs on SQLite only, by design.
mod dev {
    mod sqlite {
        use super::super::*;

        #[tokio::test]
        async fn dev_prints_working_requests_and_keeps_its_project() {
            let work = tempfile::tempdir().unwrap();
            let state_dir = work.path().join(".plugboard");
            let (mut dev, welcome) = start_dev(work.path(), &state_dir, "dev1.log").await;
            assert!(
                ProjectId::parse(&welcome.project_id).is_ok(),
                "{}",
                welcome.project_id
            );
            let client = http_client();

            // 1. the connected user, with the printed token
            let (me_url, _) = &welcome.curls[0];
            assert!(me_url.contains(&welcome.project_id), "{me_url}");
            let me = call(client.get(me_url).bearer_auth(&welcome.token)).await;
            me.assert_status(200);
            assert_eq!(me.body["userId"], json!("demo-user"));
            // 2. metadata through the SDK
            let (patch_url, body) = &welcome.curls[1];
            let body = body.as_ref().expect("curl #2 has a body");
            let patched = call(
                client
                    .patch(patch_url)
                    .bearer_auth(&welcome.token)
                    .json(body),
            )
            .await;
            patched.assert_status(200);
            assert_eq!(patched.body["meta"]["Email"], json!("john@bookface.com"));
            // 3. the user found by metadata, with the printed secret key
            let (search_url, _) = &welcome.curls[2];
            let found = call(client.get(search_url).bearer_auth(&welcome.secret)).await;
            found.assert_status(200);
            assert_eq!(user_ids(&found.body), vec!["demo-user"]);
            // 4–5. the sandbox integration, connected through its consent page, then used
            let base = me_url.split("/projects/").next().unwrap();
            connect_sandbox_in_dev(base, &welcome).await;
            // 6. a webhook receiver on this machine, over plain http
            let endpoint = call(
                client
                    .post(format!(
                        "{base}/api/v1/projects/{}/webhooks/endpoints",
                        welcome.project_id
                    ))
                    .bearer_auth(&welcome.secret)
                    .json(&json!({"url": "http://127.0.0.1:9/hooks"})),
            )
            .await;
            endpoint.assert_status(201);
            // 7. a new user token from the state folder alone
            let token = run_ok(&mut plugboard(
                work.path(),
                &[
                    "token",
                    "--dir",
                    state_dir.to_str().unwrap(),
                    "--user",
                    "demo-user",
                ],
            ));
            let me = call(client.get(me_url).bearer_auth(token.trim())).await;
            me.assert_status(200);
            assert_eq!(me.body["userId"], json!("demo-user"));

            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state_dir), 0o700);
            assert_eq!(mode(&state_dir.join("demo.json")), 0o600);
            assert_eq!(mode(&state_dir.join("demo-signing-key.pem")), 0o600);
            let status = dev.terminate(Duration::from_secs(10)).await;
            assert!(status.success(), "{status}: {}", dev.stderr());

            // A restart reuses the project, its keys and its data.
            let (mut again, second) = start_dev(work.path(), &state_dir, "dev2.log").await;
            assert_eq!(second.project_id, welcome.project_id);
            assert_eq!(second.secret, welcome.secret);
            let found = call(client.get(&second.curls[2].0).bearer_auth(&second.secret)).await;
            assert_eq!(user_ids(&found.body), vec!["demo-user"]);
            // The old token still verifies: the signing key was kept.
            let me = call(client.get(&second.curls[0].0).bearer_auth(&welcome.token)).await;
            me.assert_status(200);
            let status = again.terminate(Duration::from_secs(10)).await;
            assert!(status.success(), "{status}: {}", again.stderr());
        }
    }
}

/// Two `plugboard serve` processes on one PostgreSQL database; the provider then refuses
/// the user's access token, and 100 concurrent proxy calls, half on each process, all
/// succeed with exactly one refresh at the provider (the lease is in the database).
#[tokio::test]
async fn one_refresh_for_100_concurrent_calls_across_two_processes() {
    use common::provider::FakeProvider;
    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Postgres.fresh_store(dir.path()).await.0;
    let key_path = dir.path().join("key.pem");
    let created = run_ok(
        plugboard(
            dir.path(),
            &[
                "project",
                "create",
                "--name",
                "two",
                "--key-out",
                key_path.to_str().unwrap(),
            ],
        )
        .env("PLUGBOARD_DATABASE_URL", &database_url),
    );
    let created: Value = serde_json::from_str(&created).unwrap();
    let pid = created["projectId"].as_str().unwrap().to_owned();
    let secret = created["secretKey"].as_str().unwrap().to_owned();
    let token = run_ok(&mut plugboard(
        dir.path(),
        &[
            "token",
            "--project",
            &pid,
            "--user",
            "u1",
            "--key",
            key_path.to_str().unwrap(),
        ],
    ))
    .trim()
    .to_owned();

    let key = master_key();
    let ports = [free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let serve = serve_command(
            dir.path(),
            &["serve"],
            &database_url,
            *port,
            &bases[0],
            &key,
        );
        let mut node = Running::spawn(serve, dir.path().join(format!("node{i}.log")));
        wait_until_healthy(&bases[i], &mut node).await;
        nodes.push(node);
    }

    let provider = FakeProvider::start().await;
    let client = http_client();
    connect_through(&bases[0], &pid, &secret, &token, &provider).await;

    // The provider no longer accepts the stored access token.
    provider.sandbox.expire_access_tokens();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..100 {
        let url = format!("{}/projects/{pid}/sdk/proxy/custom.crm/me", bases[i % 2]);
        let request = client.get(url).bearer_auth(&token);
        calls.spawn(async move { answer(request).await });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap().assert_status(200);
    }
    let stats = provider.sandbox.stats();
    assert_eq!(
        stats.refresh_grants, 1,
        "exactly one refresh at the provider"
    );
    // At least one call met the refused token; calls that read the credential after the
    // refresh went straight through.
    assert!(stats.api_requests > 100, "{stats:?}");
    for node in &mut nodes {
        assert!(node.terminate(Duration::from_secs(10)).await.success());
        assert!(
            !node.stderr().contains("sbx_"),
            "a token reached the log:\n{}",
            node.stderr()
        );
    }
}

/// Configures `custom.crm` on `provider` through the server at `base` and connects the
/// token's user to it through the OAuth round trip.
async fn connect_through(
    base: &str,
    pid: &str,
    secret: &str,
    token: &str,
    provider: &common::provider::FakeProvider,
) {
    let client = http_client();
    call(
        client
            .put(format!(
                "{base}/api/v1/projects/{pid}/integrations/custom.crm"
            ))
            .bearer_auth(secret)
            .json(&json!({
                "oauthClientId": common::provider::CLIENT_ID,
                "oauthClientSecret": common::provider::CLIENT_SECRET,
                "definition": provider.oauth_definition(),
            })),
    )
    .await
    .assert_status(200);
    connect_user(base, pid, token).await;
}

/// `plugboard keys rotate` re-seals credentials and client secrets under a new master key;
/// afterwards the server runs with the new key alone.
#[tokio::test]
async fn keys_rotate_reseals_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Sqlite.fresh_store(dir.path()).await.0;
    let (pid, secret, key_path) = create_project_with_cli(dir.path(), &database_url, "rot");
    let token = run_ok(&mut plugboard(
        dir.path(),
        &[
            "token",
            "--project",
            &pid,
            "--user",
            "u1",
            "--key",
            key_path.to_str().unwrap(),
        ],
    ))
    .trim()
    .to_owned();
    let (old_key, new_key) = (master_key(), master_key());
    let provider = common::provider::FakeProvider::start().await;

    let serve_with = |key: &str, log: &str| {
        let port = free_port();
        let mut serve = plugboard(dir.path(), &["serve"]);
        serve
            .env("PLUGBOARD_DATABASE_URL", &database_url)
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLUGBOARD_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("PLUGBOARD_MASTER_KEY", key)
            .env("PLUGBOARD_ALLOW_LOOPBACK_PROVIDERS", "true");
        (
            format!("http://127.0.0.1:{port}"),
            Running::spawn(serve, dir.path().join(log)),
        )
    };
    let (base, mut node) = serve_with(&old_key, "old.log");
    wait_until_healthy(&base, &mut node).await;
    connect_through(&base, &pid, &secret, &token, &provider).await;
    let client = http_client();
    call(
        client
            .put(format!("{base}/api/v1/projects/{pid}/policy"))
            .bearer_auth(&secret)
            .json(&json!({"secretMetadataKeys": ["apiKey"]})),
    )
    .await
    .assert_status(200);
    let set_meta = |base: &str, meta: Value| {
        client
            .patch(format!("{base}/api/v1/projects/{pid}/users/u1"))
            .bearer_auth(&secret)
            .json(&json!({ "meta": meta }))
    };
    call(set_meta(
        &base,
        json!({"apiKey": "sk_rotate_me_0123456789"}),
    ))
    .await
    .assert_status(200);
    assert!(node.terminate(Duration::from_secs(10)).await.success());

    let rotate = || {
        let out = run_ok(
            plugboard(dir.path(), &["keys", "rotate"])
                .env("PLUGBOARD_DATABASE_URL", &database_url)
                .env("PLUGBOARD_MASTER_KEY", &new_key)
                .env("PLUGBOARD_PREVIOUS_MASTER_KEYS", format!("[\"{old_key}\"]")),
        );
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let first = rotate();
    assert_eq!(first["credentials"]["resealed"], 1, "{first}");
    assert_eq!(first["clientSecrets"]["resealed"], 1, "{first}");
    assert_eq!(first["userSecrets"]["resealed"], 1, "{first}");
    let again = rotate();
    assert_eq!(
        again["credentials"],
        json!({"resealed": 0, "current": 1, "changedMeanwhile": 0})
    );

    // The new key alone now opens everything: the proxy uses the credential and, to
    // refresh after the provider refuses the token, the client secret.
    let (base, mut node) = serve_with(&new_key, "new.log");
    wait_until_healthy(&base, &mut node).await;
    provider.sandbox.expire_access_tokens();
    let proxied = call(
        http_client()
            .get(format!("{base}/projects/{pid}/sdk/proxy/custom.crm/me"))
            .bearer_auth(&token),
    )
    .await;
    proxied.assert_status(200);
    assert_eq!(provider.sandbox.stats().refresh_grants, 1);
    // Changing metadata opens the user's sealed secrets (to keep them): the new key can.
    let kept = call(set_meta(&base, json!({"plan": "pro"}))).await;
    kept.assert_status(200);
    assert_eq!(kept.body["meta"]["apiKey"], "••••6789", "{}", kept.text);
    assert!(node.terminate(Duration::from_secs(10)).await.success());
}

/// Connects the dev project's sandbox integration the way a person would: connect link,
/// the sandbox's consent page, Allow, Plugboard's callback; then calls the proxy.
async fn connect_sandbox_in_dev(base: &str, welcome: &Welcome) {
    let client = http_client();
    let pid = &welcome.project_id;
    let link = call(
        client
            .post(format!(
                "{base}/api/v1/projects/{pid}/users/demo-user/connect-links"
            ))
            .bearer_auth(&welcome.secret)
            .json(&json!({"integration": "custom.sandbox"})),
    )
    .await;
    link.assert_status(201);
    let browser = common::provider::no_redirects();
    let url = link.body["url"].as_str().unwrap();
    // The link's page waits for the user's press on Connect (its form, same origin).
    let page = call(browser.get(url)).await;
    page.assert_status(200);
    let opened = browser
        .post(url)
        .header("sec-fetch-site", "same-origin")
        .form(&hidden_inputs(&page.text))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let authorize = opened.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{base}/sandbox/oauth/authorize")),
        "{authorize}"
    );
    let consent = call(browser.get(&authorize)).await;
    consent.assert_status(200);
    assert!(
        consent.text.contains("development only"),
        "{}",
        consent.text
    );
    let mut form = hidden_inputs(&consent.text);
    form.push(("decision".into(), "allow".into()));
    form.push(("account_name".into(), "Dev Person".into()));
    let post_to = authorize.split('?').next().unwrap();
    let allowed = browser.post(post_to).form(&form).send().await.unwrap();
    assert_eq!(allowed.status(), 302);
    let callback = allowed.headers()["location"].to_str().unwrap().to_owned();
    let page = call(browser.get(&callback)).await;
    page.assert_status(200);
    let me = call(
        client
            .get(format!("{base}/projects/{pid}/sdk/proxy/custom.sandbox/me"))
            .bearer_auth(&welcome.token),
    )
    .await;
    me.assert_status(200);
    assert_eq!(me.body["output"]["name"], "Dev Person");
}

/// `name`/`value` of each hidden input of a page, unescaped.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let unescape = |v: &str| {
        v.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .collect()
}

/// A `plugboard serve` running workflows is SIGKILLed mid-run and restarted: every
/// accepted event's execution completes, and each side effect reaches the upstream once
/// per idempotency key.
#[tokio::test]
async fn a_killed_worker_loses_no_execution_and_repeats_no_side_effect() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    // The upstream: counts calls per idempotency key, answers slowly so runs are in
    // flight when the process dies.
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counter = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                *counter.lock().unwrap().entry(key).or_default() += 1;
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Sqlite.fresh_store(dir.path()).await.0;
    let (pid, secret, key_path) = create_project_with_cli(dir.path(), &database_url, "crash");
    let key = master_key();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let serve = || {
        let mut serve = serve_command(dir.path(), &["serve"], &database_url, port, &base, &key);
        serve
            .env("PLUGBOARD_WORKFLOWS__ALLOW_PRIVATE_ADDRESSES", "true")
            .env("PLUGBOARD_WORKFLOWS__LEASE_SECS", "3");
        serve
    };
    let mut node = Running::spawn(serve(), dir.path().join("first.log"));
    wait_until_healthy(&base, &mut node).await;

    let provider = common::provider::FakeProvider::start().await;
    let accepted = hook_workload(
        &base,
        &pid,
        &secret,
        &key_path,
        dir.path(),
        &hook,
        &provider,
        40,
    )
    .await;
    // Let some side effects happen, then kill the process without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 10 {
        assert!(Instant::now() < deadline, "no progress:\n{}", node.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let before_restart = seen.lock().unwrap().values().sum::<u32>();
    assert!(
        before_restart < 120,
        "the kill came mid-run ({before_restart} calls)"
    );

    let mut node = Running::spawn(serve(), dir.path().join("second.log"));
    wait_until_healthy(&base, &mut node).await;
    wait_until_succeeded(&base, &pid, &secret, accepted.len(), || node.stderr()).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        accepted.len() * 3,
        "every step of every execution reached the upstream"
    );
    // An interrupted step may be sent again, always with its key: the upstream can dedupe.
    for id in &accepted {
        for step in ["one", "two", "three"] {
            assert!(
                seen.contains_key(&format!("{id}:{step}")),
                "{id}:{step} missing"
            );
        }
    }
    // Only a step in flight at the kill is sent again (one per execution being run, at
    // most a worker's batch of 32), and always with the same key, so an upstream that
    // honours the key applies each side effect once.
    let repeated: u32 = seen.values().map(|n| n - 1).sum();
    assert!(repeated <= 32, "{repeated} repeats");
    assert!(
        seen.values().all(|&n| n <= 2),
        "a step was sent more than twice: {seen:?}"
    );
    assert!(node.terminate(Duration::from_secs(10)).await.success());
}

/// Connects `users` users of the project to `custom.crm` (configured on `provider`),
/// deploys `hook` (three `http` steps POSTing to `hook`, started by event `go`), enables it
/// for each and sends each one event. Returns the accepted executions' ids.
#[allow(clippy::too_many_arguments)]
async fn hook_workload(
    base: &str,
    pid: &str,
    secret: &str,
    key_path: &Path,
    dir: &Path,
    hook: &str,
    provider: &common::provider::FakeProvider,
    users: usize,
) -> Vec<String> {
    let client = http_client();
    let names: Vec<String> = (0..users).map(|i| format!("u{i}")).collect();
    // An api-free integration would do, but users need a credential to enable a
    // workflow: connect each through the OAuth round trip.
    for user in &names {
        let token = run_ok(&mut plugboard(
            dir,
            &[
                "token",
                "--project",
                pid,
                "--user",
                user,
                "--key",
                key_path.to_str().unwrap(),
            ],
        ))
        .trim()
        .to_owned();
        if user == "u0" {
            connect_through(base, pid, secret, &token, provider).await;
        } else {
            connect_user(base, pid, &token).await;
        }
    }
    let workflow = format!(
        "id: hook\nname: Hook\nintegration: custom.crm\ntrigger: {{ type: event, event: go }}\nsteps:\n  - {{ id: one, type: http, method: POST, url: \"{hook}\", body: {{ step: 1 }} }}\n  - {{ id: two, type: http, method: POST, url: \"{hook}\", body: {{ step: 2 }} }}\n  - {{ id: three, type: http, method: POST, url: \"{hook}\", body: {{ step: 3 }} }}\n"
    );
    call(
        client
            .put(format!("{base}/api/v1/projects/{pid}/workflows/hook"))
            .bearer_auth(secret)
            .body(workflow),
    )
    .await
    .assert_status(200);
    let mut accepted = Vec::new();
    for user in &names {
        call(
            client
                .post(format!(
                    "{base}/api/v1/projects/{pid}/users/{user}/workflows/hook"
                ))
                .bearer_auth(secret),
        )
        .await
        .assert_status(200);
        let sent = call(
            client
                .post(format!("{base}/api/v1/projects/{pid}/events"))
                .bearer_auth(secret)
                .json(&json!({"userId": user, "name": "go"})),
        )
        .await;
        sent.assert_status(202);
        accepted.push(sent.body["executions"][0].as_str().unwrap().to_owned());
    }
    accepted
}

/// Connects the token's user to the already configured `custom.crm`.
async fn connect_user(base: &str, pid: &str, token: &str) {
    let client = http_client();
    let built = call(
        client
            .get(format!("{base}/v2/projects/{pid}/sdk/actions/build-oauth"))
            .bearer_auth(token)
            .query(&[("action", "custom.crm"), ("oauthMetaKeyId", "cli")]),
    )
    .await;
    built.assert_status(200);
    let hop = common::provider::no_redirects()
        .get(built.body["redirectUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = hop.headers()["location"].to_str().unwrap().to_owned();
    call(client.get(&callback)).await.assert_status(200);
}

/// `plugboard workflows deploy DIR` checks every file before deploying any, names the file,
/// field and reason of what is wrong, and deploys each valid file as a new version that
/// the running server serves.
#[tokio::test]
async fn workflows_deploy_checks_every_file_then_deploys_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Sqlite.fresh_store(dir.path()).await.0;
    let created: Value = serde_json::from_str(&run_ok(
        plugboard(dir.path(), &["project", "create", "--name", "deploy"])
            .env("PLUGBOARD_DATABASE_URL", &database_url),
    ))
    .unwrap();
    let pid = created["projectId"].as_str().unwrap().to_owned();
    let secret = created["secretKey"].as_str().unwrap().to_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = plugboard(dir.path(), &["serve"]);
    serve
        .env("PLUGBOARD_DATABASE_URL", &database_url)
        .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUGBOARD_PUBLIC_URL", &base)
        .env("PLUGBOARD_MASTER_KEY", master_key());
    let mut node = Running::spawn(serve, dir.path().join("serve.log"));
    wait_until_healthy(&base, &mut node).await;
    let client = http_client();
    call(
        client
            .put(format!("{base}/api/v1/projects/{pid}/integrations/custom.crm"))
            .bearer_auth(&secret)
            .json(&json!({ "definition": {
                "name": "CRM", "brand_color": "#000000", "category": "crm",
                "api_base_url": "https://crm.example.com/api",
                "auth": { "type": "api_key", "header": "X-Key", "inputs": [{ "key": "key", "label": "Key" }] },
                "account_id": { "request": { "path": "/me", "field": "id" } }
            }})),
    )
    .await
    .assert_status(200);

    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    let file = |name: &str, id: &str, extra: &str| {
        std::fs::write(
            workflows.join(name),
            format!("id: {id}\nname: {id}\nintegration: custom.crm\ntrigger: {{ type: event, event: go }}\nsteps:\n  - {{ id: a, type: transform, jq: '.trigger'{extra} }}\n"),
        )
        .unwrap();
    };
    file("a-sync.yaml", "sync", "");
    file("b-notify.yml", "notify", "");
    file("c-broken.yaml", "broken", ", max_attempts: 0");
    std::fs::write(workflows.join("README.md"), "not a workflow").unwrap();
    let deploy = |args: &[&str]| {
        let mut all = vec![
            "workflows",
            "deploy",
            workflows.to_str().unwrap(),
            "--project",
            &pid,
        ];
        all.extend_from_slice(args);
        let mut command = plugboard(dir.path(), &all);
        command.env("PLUGBOARD_DATABASE_URL", &database_url);
        command
    };
    let refused = deploy(&[]).output().unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("c-broken.yaml") && why.contains("max_attempts"),
        "names the file and the field: {why}"
    );
    let listed = |client: &reqwest::Client| {
        client
            .get(format!("{base}/api/v1/projects/{pid}/workflows"))
            .bearer_auth(&secret)
    };
    assert_eq!(
        call(listed(&client)).await.body["data"],
        json!([]),
        "nothing deployed"
    );

    file("c-broken.yaml", "broken", "");
    let checked: Value = serde_json::from_str(&run_ok(&mut deploy(&["--check"]))).unwrap();
    assert_eq!(checked.as_array().unwrap().len(), 3);
    assert_eq!(
        call(listed(&client)).await.body["data"],
        json!([]),
        "--check deploys nothing"
    );
    let deployed: Value = serde_json::from_str(&run_ok(&mut deploy(&[]))).unwrap();
    let versions: Vec<(&str, i64)> = deployed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["workflowId"].as_str().unwrap(),
                d["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, vec![("sync", 1), ("notify", 1), ("broken", 1)]);
    let again: Value = serde_json::from_str(&run_ok(&mut deploy(&[]))).unwrap();
    assert_eq!(again[0]["version"], 2, "every deploy is a new version");
    let served = call(listed(&client)).await;
    assert_eq!(
        served.body["data"].as_array().unwrap().len(),
        3,
        "{}",
        served.text
    );
}

/// An `api` node and two `worker` nodes on one PostgreSQL: every step of every execution
/// reaches the upstream exactly once, never while another worker runs the same step, and
/// both workers take part.
#[tokio::test]
async fn two_worker_processes_never_run_the_same_step_at_once() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Upstream {
        in_flight: HashMap<String, u32>,
        calls: HashMap<String, u32>,
        overlaps: Vec<String>,
    }
    let upstream: Arc<Mutex<Upstream>> = Arc::default();
    let state = upstream.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let state = state.clone();
            async move {
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                {
                    let mut s = state.lock().unwrap();
                    let running = s.in_flight.entry(key.clone()).or_default();
                    *running += 1;
                    if *running > 1 {
                        s.overlaps.push(key.clone());
                    }
                    *s.calls.entry(key.clone()).or_default() += 1;
                }
                // Slow, so a run outlasts a worker's start-up and a second runner of the
                // same step would overlap.
                tokio::time::sleep(Duration::from_millis(200)).await;
                *state.lock().unwrap().in_flight.get_mut(&key).unwrap() -= 1;
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Postgres.fresh_store(dir.path()).await.0;
    let (pid, secret, key_path) = create_project_with_cli(dir.path(), &database_url, "workers");
    let key = master_key();
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let node = |role: &str, port: u16| {
        let mut serve = serve_command(
            dir.path(),
            &["serve", "--role", role],
            &database_url,
            port,
            &base,
            &key,
        );
        serve
            .env("PLUGBOARD_WORKFLOWS__ALLOW_PRIVATE_ADDRESSES", "true")
            .env("PLUGBOARD_WORKFLOWS__LEASE_SECS", "5")
            .env("RUST_LOG", "info,plugboard_service::workflows=debug");
        serve
    };
    let mut api = Running::spawn(node("api", api_port), dir.path().join("api.log"));
    wait_until_healthy(&base, &mut api).await;
    let provider = common::provider::FakeProvider::start().await;
    // Workers start after the events are in, so that both find work waiting.
    let accepted = hook_workload(
        &base,
        &pid,
        &secret,
        &key_path,
        dir.path(),
        &hook,
        &provider,
        60,
    )
    .await;
    let ports = [free_port(), free_port()];
    let mut workers: Vec<Running> = (0..2)
        .map(|i| {
            Running::spawn(
                node("worker", ports[i]),
                dir.path().join(format!("worker{i}.log")),
            )
        })
        .collect();
    for (worker, port) in workers.iter_mut().zip(ports) {
        wait_until_healthy(&format!("http://127.0.0.1:{port}"), worker).await;
    }

    wait_until_succeeded(&base, &pid, &secret, accepted.len(), || workers[0].stderr()).await;
    {
        let upstream = upstream.lock().unwrap();
        assert!(
            upstream.overlaps.is_empty(),
            "steps ran twice at once: {:?}",
            upstream.overlaps
        );
        assert_eq!(upstream.calls.len(), accepted.len() * 3);
        assert!(
            upstream.calls.values().all(|&n| n == 1),
            "with no crash, each step ran once"
        );
    }
    for worker in &mut workers {
        assert!(worker.terminate(Duration::from_secs(10)).await.success());
        let ran = worker.stderr().matches("execution ran").count();
        assert!(ran > 0, "each worker ran executions:\n{}", worker.stderr());
    }
    assert!(
        api.stderr().matches("execution ran").count() == 0,
        "the api node runs none"
    );
}

/// A secret metadata value used by a workflow whose upstream fails (echoing the key back)
/// reaches neither the log of a `plugboard serve` at debug level nor the execution record.
#[tokio::test]
async fn a_secret_metadata_value_never_reaches_the_log() {
    const SECRET: &str = "sk_log_probe_Z9Y8X7W6V5";
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            (
                axum::http::StatusCode::BAD_REQUEST,
                format!("{{\"refused\": \"{auth}\"}}"),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let database_url = Backend::Sqlite.fresh_store(dir.path()).await.0;
    let (pid, secret, key_path) = create_project_with_cli(dir.path(), &database_url, "logs");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = serve_command(
        dir.path(),
        &["serve"],
        &database_url,
        port,
        &base,
        master_key(),
    );
    serve
        .env("PLUGBOARD_WORKFLOWS__ALLOW_PRIVATE_ADDRESSES", "true")
        .env("RUST_LOG", "debug");
    let mut node = Running::spawn(serve, dir.path().join("serve.log"));
    wait_until_healthy(&base, &mut node).await;
    let provider = common::provider::FakeProvider::start().await;
    let client = http_client();
    call(
        client
            .put(format!("{base}/api/v1/projects/{pid}/policy"))
            .bearer_auth(&secret)
            .json(&json!({"secretMetadataKeys": ["apiKey"]})),
    )
    .await
    .assert_status(200);
    let token = run_ok(&mut plugboard(
        dir.path(),
        &[
            "token",
            "--project",
            &pid,
            "--user",
            "u0",
            "--key",
            key_path.to_str().unwrap(),
        ],
    ))
    .trim()
    .to_owned();
    connect_through(&base, &pid, &secret, &token, &provider).await;
    call(
        client
            .patch(format!("{base}/projects/{pid}/sdk/me"))
            .bearer_auth(&token)
            .json(&json!({"meta": {"apiKey": SECRET}})),
    )
    .await
    .assert_status(200);
    let workflow = format!(
        "id: leak\nname: Leak probe\nintegration: custom.crm\ntrigger: {{ type: event, event: go }}\nsteps:\n  - {{ id: call, type: http, method: POST, url: \"{hook}\", headers: {{ Authorization: \"Bearer {{{{ user.meta.apiKey }}}}\" }}, body: {{ key: \"{{{{ user.meta.apiKey }}}}\" }} }}\n"
    );
    call(
        client
            .put(format!("{base}/api/v1/projects/{pid}/workflows/leak"))
            .bearer_auth(&secret)
            .body(workflow),
    )
    .await
    .assert_status(200);
    call(
        client
            .post(format!(
                "{base}/api/v1/projects/{pid}/users/u0/workflows/leak"
            ))
            .bearer_auth(&secret),
    )
    .await
    .assert_status(200);
    let sent = call(
        client
            .post(format!("{base}/api/v1/projects/{pid}/events"))
            .bearer_auth(&secret)
            .json(&json!({"userId": "u0", "name": "go"})),
    )
    .await;
    sent.assert_status(202);
    let id = sent.body["executions"][0].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        let got = call(
            client
                .get(format!("{base}/api/v1/projects/{pid}/executions/{id}"))
                .bearer_auth(&secret),
        )
        .await;
        if got.body["status"] == "FAILED" {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "not failed: {}\n{}",
            got.text,
            node.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(record.text.contains("[redacted]"), "{}", record.text);
    assert!(!record.text.contains(SECRET), "{}", record.text);
    assert!(node.terminate(Duration::from_secs(10)).await.success());
    let log = node.stderr();
    assert!(log.lines().count() > 10, "a debug log was written:\n{log}");
    assert!(!log.contains(SECRET), "the secret reached the log:\n{log}");
}
