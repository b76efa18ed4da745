//! Two servers over one database, as in a multi-node deployment: what one node writes,
//! the other honours within the configured cache lifetimes.

use std::time::{Duration, Instant};

use plugboard::config::Config;
use serde_json::json;

use crate::common::*;

/// Polls `GET /sdk/me` on `node` until it answers `status` (at most 10 s).
async fn eventually(node: &TestApp, p: &Project, token: &str, status: u16, code: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let me = node.get_me(p, token).await;
        if me.status == status {
            if !code.is_empty() {
                me.assert_error(status, code);
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after 10 s: {}",
            me.status,
            me.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn short_caches() -> Config {
    Config {
        signing_key_cache_ttl_secs: 1,
        user_cache_ttl_ms: Some(500),
        ..test_config()
    }
}

backend_tests! {
    async fn revocation_and_suspension_reach_the_other_node(backend) {
        let a = TestApp::spawn_with(backend, short_caches()).await;
        let b = a.sibling(short_caches()).await;
        let p = a.create_project().await;
        let token = p.token("u1");
        a.get_me(&p, &token).await.assert_status(200);
        b.get_me(&p, &token).await.assert_status(200);

        // Metadata written on A is seen on B.
        a.patch_me(&p, &token, json!({"plan": "pro"})).await.assert_status(200);
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.get_me(&p, &token).await.body["meta"] != json!({"plan": "pro"}) {
            assert!(Instant::now() < deadline, "B never saw A's write");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        a.suspend_user(&p, "u1").await.assert_status(200);
        a.get_me(&p, &token).await.assert_error(403, "user_suspended");
        eventually(&b, &p, &token, 403, "user_suspended").await;
        a.resume_user(&p, "u1").await.assert_status(200);
        eventually(&b, &p, &token, 200, "").await;

        a.revoke_signing_key(&p, &p.signing_key_id).await.assert_status(204);
        a.get_me(&p, &token).await.assert_error(401, "token_key_unknown");
        eventually(&b, &p, &token, 401, "token_key_unknown").await;
    }
}
