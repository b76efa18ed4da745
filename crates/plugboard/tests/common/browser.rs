//! What the Chromium suites share: where the Node drivers live, where screenshots go, and
//! installing their npm packages once.

use std::path::{Path, PathBuf};

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
