//! The connected user's life: first SDK call, the `/sdk/me` shape, `lastSeen`,
//! suspension and erasure.

use std::time::{Duration, Instant};

use plugboard_core::{ProjectId, UserId};
use serde_json::json;

use crate::common::*;

/// Milliseconds since the epoch in an RFC 3339 timestamp of the API.
fn millis(timestamp: &serde_json::Value) -> i64 {
    let text = timestamp
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp, not {timestamp}"));
    assert!(text.ends_with('Z'), "UTC with a Z: {text}");
    parse_timestamp(text)
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ` (the API's only timestamp format).
fn parse_timestamp(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

fn now_millis() -> i64 {
    plugboard_core::now_millis()
}

backend_tests! {
    async fn sdk_me_has_the_paragon_shape(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let me = app.get_me(&p, &p.token("u1")).await;
        me.assert_status(200);
        assert!(me.header("content-type").unwrap().starts_with("application/json"));
        let body = &me.body;
        assert_eq!(body["authenticated"], json!(true));
        assert_eq!(body["userId"], json!("u1"));
        assert_eq!(body["meta"], json!({}));
        assert_eq!(body["resources"], json!([]));
        assert_eq!(body["integrations"], json!({}));
        assert_eq!(body["project"]["id"], json!(p.id));
        let features = body["project"]["accessibleFeatures"].as_array().unwrap();
        for feature in ["headless-cp", "user-metadata"] {
            assert!(features.contains(&json!(feature)), "{features:?}");
        }
        let integrations = app.get_integrations(&p, &p.token("u1")).await;
        integrations.assert_status(200);
        assert_eq!(integrations.body, json!([]));
    }

    async fn first_sdk_call_creates_the_user(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.get_user(&p, "fresh").await.assert_error(404, "user_not_found");
        let before = now_millis();
        app.get_integrations(&p, &p.token("fresh")).await.assert_status(200);
        let user = app.get_user(&p, "fresh").await;
        user.assert_status(200);
        assert_eq!(user.body["userId"], json!("fresh"));
        assert_eq!(user.body["meta"], json!({}));
        assert_eq!(user.body["suspended"], json!(false));
        let created = millis(&user.body["dateCreated"]);
        assert!(created >= before - 1000 && created <= now_millis() + 1000, "{}", user.text);
        assert_eq!(app.list_user_ids(&p, &[]).await, vec!["fresh"]);
        // Later calls find the same user; a second token for it does not duplicate it.
        app.get_me(&p, &p.token("fresh")).await.assert_status(200);
        assert_eq!(app.list_user_ids(&p, &[]).await, vec!["fresh"]);
    }

    async fn last_seen_is_recorded_after_a_flush(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", json!({})).await.assert_status(201);
        assert!(app.get_user(&p, "u1").await.body["lastSeen"].is_null());
        let before = now_millis();
        app.get_me(&p, &p.token("u1")).await.assert_status(200);
        app.server.services.last_seen.flush(&*app.store).await.unwrap();
        // Read straight from the database: nothing is pending in memory any more.
        let user = app.get_user(&p, "u1").await;
        user.assert_status(200);
        let seen = millis(&user.body["lastSeen"]);
        assert!(seen >= before - 1000 && seen <= now_millis() + 1000, "{}", user.text);
        let listed = app.list_users(&p, &[]).await;
        assert_eq!(listed.body["data"][0]["lastSeen"], user.body["lastSeen"]);
    }

    async fn last_seen_is_flushed_in_the_background(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.get_me(&p, &p.token("u1")).await.assert_status(200);
        let project = ProjectId::parse(&p.id).unwrap();
        let user = UserId::parse("u1").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stored = app.store.get_user(project, &user).await.unwrap().unwrap();
            if stored.last_seen_at.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "lastSeen not flushed within 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn suspended_user_is_refused_by_every_sdk_call_until_resumed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let token = p.token("u1");
        app.patch_me(&p, &token, json!({"plan": "pro"})).await.assert_status(200);
        let suspended = app.suspend_user(&p, "u1").await;
        suspended.assert_status(200);
        assert_eq!(suspended.body["suspended"], json!(true));
        assert_eq!(suspended.body["meta"], json!({"plan": "pro"}));

        app.get_me(&p, &token).await.assert_error(403, "user_suspended");
        app.patch_me(&p, &token, json!({"plan": "hacked"})).await.assert_error(403, "user_suspended");
        app.get_integrations(&p, &token).await.assert_error(403, "user_suspended");
        // A fresh token for the same user changes nothing.
        app.get_me(&p, &p.token("u1")).await.assert_error(403, "user_suspended");
        let kept = app.get_user(&p, "u1").await;
        assert_eq!(kept.body["meta"], json!({"plan": "pro"}));
        assert_eq!(kept.body["suspended"], json!(true));
        // Suspending twice is harmless; other users are unaffected.
        app.suspend_user(&p, "u1").await.assert_status(200);
        app.get_me(&p, &p.token("u2")).await.assert_status(200);

        let resumed = app.resume_user(&p, "u1").await;
        resumed.assert_status(200);
        assert_eq!(resumed.body["suspended"], json!(false));
        let me = app.get_me(&p, &token).await;
        me.assert_status(200);
        assert_eq!(me.body["meta"], json!({"plan": "pro"}));
        app.patch_me(&p, &token, json!({"plan": "team"})).await.assert_status(200);
        app.get_integrations(&p, &token).await.assert_status(200);
    }

    async fn suspending_or_resuming_an_unknown_user_is_404(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.suspend_user(&p, "ghost").await.assert_error(404, "user_not_found");
        app.resume_user(&p, "ghost").await.assert_error(404, "user_not_found");
        app.get_user(&p, "ghost").await.assert_error(404, "user_not_found");
        // Suspension cannot be used to pre-create a user.
        app.get_me(&p, &p.token("ghost")).await.assert_status(200);
    }

    async fn erase_reports_what_it_deleted_and_leaves_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        // Four indexed entries: the top-level strings, numbers and booleans of at most 256
        // characters; objects, arrays and longer strings are not indexed.
        let meta = json!({
            "Email": "gone@x.io", "plan": "pro", "seats": 3, "beta": true,
            "obj": {"a": 1}, "arr": [1, 2], "long": "x".repeat(300)
        });
        app.put_user(&p, "u1", meta).await.assert_status(201);
        app.put_user(&p, "u2", json!({"plan": "pro"})).await.assert_status(201);
        let erased = app.delete_user(&p, "u1").await;
        erased.assert_status(200);
        assert_eq!(
            erased.body,
            json!({"deleted": {
                "users": 1, "metadataIndexEntries": 4, "credentials": 0, "configurations": 0
            }})
        );

        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
        let none: Vec<String> = Vec::new();
        assert_eq!(app.list_user_ids(&p, &[("meta.Email", "gone@x.io")]).await, none);
        assert_eq!(app.list_user_ids(&p, &[("q", "gone")]).await, none);
        assert_eq!(app.list_user_ids(&p, &[("meta.plan", "pro")]).await, vec!["u2"]);
        assert_eq!(app.list_user_ids(&p, &[]).await, vec!["u2"]);
        app.delete_user(&p, "u1").await.assert_error(404, "user_not_found");
        app.patch_user(&p, "u1", json!({"k": 1})).await.assert_error(404, "user_not_found");

        // A user without metadata erases with no index entries; a later SDK call starts afresh.
        app.get_me(&p, &p.token("u3")).await.assert_status(200);
        let erased = app.delete_user(&p, "u3").await;
        assert_eq!(
            erased.body,
            json!({"deleted": {
                "users": 1, "metadataIndexEntries": 0, "credentials": 0, "configurations": 0
            }})
        );
        let again = app.get_me(&p, &p.token("u1")).await;
        again.assert_status(200);
        assert_eq!(again.body["meta"], json!({}));
    }

    async fn erased_user_does_not_come_back_with_its_last_seen(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.get_me(&p, &p.token("u1")).await.assert_status(200);
        app.delete_user(&p, "u1").await.assert_status(200);
        // A pending lastSeen flush must not resurrect the erased user.
        app.server.services.last_seen.flush(&*app.store).await.unwrap();
        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
        let none: Vec<String> = Vec::new();
        assert_eq!(app.list_user_ids(&p, &[]).await, none);
    }

    async fn user_recreated_after_erasure_has_no_last_seen(backend) {
        // No background flush during the test: the pending time stays in memory.
        let config = plugboard::config::Config { last_seen_flush_secs: 3600, ..test_config() };
        let app = TestApp::spawn_with(backend, config).await;
        let p = app.create_project().await;
        app.get_me(&p, &p.token("u1")).await.assert_status(200);
        app.delete_user(&p, "u1").await.assert_status(200);
        let recreated = app.put_user(&p, "u1", json!({})).await;
        recreated.assert_status(201);
        assert!(recreated.body["lastSeen"].is_null(), "{}", recreated.text);
        app.server.services.last_seen.flush(&*app.store).await.unwrap();
        let user = app.get_user(&p, "u1").await;
        assert!(user.body["lastSeen"].is_null(), "{}", user.text);
    }
}
