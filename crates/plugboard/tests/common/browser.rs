//! What the Chromium suites share: where the Node drivers live, where screenshots go, and
//! installing their npm packages once, and the JSON-lines protocol of their Node drivers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// `tests/browser`: the drivers, the test page and their `package.json`.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// `<target>/browser-artifacts`: screenshots.
pub fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("browser-artifacts")
}

/// `npm ci` when the SDK or playwright-core is missing; a file lock keeps concurrent test
/// processes (nextest runs one per test) from installing at the same time.
pub fn ensure_node_modules() {
    let dir = browser_dir();
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-npm.lock");
    let lock = std::fs::File::create(&lock_path).expect("creating the npm lock file");
    lock.lock().expect("taking the npm lock");
    let installed = ["@useparagon/connect", "playwright-core"].iter().all(|p| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    });
    if !installed {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (Node 18+ is required for the browser tests)");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
}

/// A Node driver (`tests/browser/<script>`) holding one Chromium: it takes the server's base
/// URL and an artifacts directory, prints one JSON line when ready and one per command read
/// on stdin, and exits when stdin closes.
pub struct NodeDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Console errors the page may show; any other fails the test.
    allowed_errors: &'static [&'static str],
}

impl NodeDriver {
    /// Starts the driver; returns it and its first ("ready") line.
    pub async fn start(
        script: &str,
        base_url: &str,
        artifacts: PathBuf,
        allowed_errors: &'static [&'static str],
    ) -> (Self, Value) {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(browser_dir().join(script))
            .arg(base_url)
            .arg(artifacts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut driver = Self {
            child,
            stdin,
            lines,
            allowed_errors,
        };
        let ready = driver.read("start").await;
        assert_eq!(ready["ready"], true, "{ready}");
        (driver, ready)
    }

    /// The next answer; fails on a timeout, an exited driver or an unexpected console error.
    pub async fn read(&mut self, what: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser driver did not answer `{what}` in time"))
            .expect("reading the driver's output");
        let Some(line) = line else {
            let status = self.child.wait().await.unwrap();
            panic!("the browser driver exited ({status}) during `{what}`; see its stderr");
        };
        let answer: Value = serde_json::from_str(&line).expect("the driver prints JSON lines");
        let errors = answer["errors"].as_array().into_iter().flatten();
        for error in errors.filter_map(Value::as_str) {
            assert!(
                self.allowed_errors.iter().any(|e| error.contains(e)),
                "unexpected console error during `{what}`: {error}"
            );
        }
        answer
    }

    /// Sends one command and returns its answer.
    pub async fn send(&mut self, command: &Value, what: &str) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.read(what).await
    }

    /// Ends the driver the polite way (stdin closed), so that Chromium exits with it.
    pub async fn close(self) {
        let Self {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("the browser driver exits when its input ends")
            .unwrap();
        assert!(status.success(), "the browser driver exited with {status}");
    }
}
