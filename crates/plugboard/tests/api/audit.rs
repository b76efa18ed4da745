//! The audit log: every authenticated mutation of the management API and every dashboard
//! form action is recorded with actor, action, target, status and state digests (never
//! bodies); reads and failed authentications are not; the log is filtered, paged and
//! kept per project.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::provider::{CLIENT_SECRET, FakeProvider};
use crate::common::*;
use crate::dashboard::Dash;

const USER_ROUTE: &str = "/api/v1/projects/{projectId}/users/{userId}";

async fn audit(app: &TestApp, p: &Project, query: &[(&str, &str)]) -> Answer {
    let request = app
        .client
        .get(app.url(&format!("/api/v1/projects/{}/audit", p.id)))
        .bearer_auth(&p.secret_key)
        .query(query);
    answer(request).await
}

/// The entries of one page (asserts 200).
async fn entries(app: &TestApp, p: &Project, query: &[(&str, &str)]) -> Vec<Value> {
    let page = audit(app, p, query).await;
    page.assert_status(200);
    page.body["entries"].as_array().unwrap().clone()
}

/// The id of the project's (only) secret key.
async fn key_id(app: &TestApp, p: &Project) -> String {
    let keys = app.list_secret_keys(p).await;
    keys.assert_status(200);
    keys.body["data"][0]["id"].as_str().unwrap().to_owned()
}

fn is_digest(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit()))
}

backend_tests! {
    async fn mutations_are_recorded_with_digests_and_reads_are_not(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let other = app.create_project().await;
        let key = format!("key:{}", key_id(&app, &p).await);

        app.put_user(&p, "alice", json!({"plan": "free", "apiKey": "k_very_secret_1"})).await.assert_status(201);
        app.patch_user(&p, "alice", json!({"plan": "pro"})).await.assert_status(200);
        app.delete_user(&p, "alice").await.assert_status(200);
        app.delete_user(&p, "ghost").await.assert_error(404, "user_not_found");
        // Reads, failed authentications and other projects' keys leave no entry.
        app.list_users(&p, &[]).await.assert_status(200);
        app.get_user(&p, "ghost").await.assert_error(404, "user_not_found");
        app.patch_user(&p.with_secret("pb_sk_nope"), "bob", json!({})).await.assert_error(401, "invalid_credentials");
        app.send(Method::PATCH, &format!("/api/v1/projects/{}/users/bob", p.id), None, Some(&json!({"meta": {}})))
            .await
            .assert_error(401, "invalid_credentials");
        app.put_user(&p.with_secret(&other.secret_key), "mallory", json!({})).await.assert_error(403, "wrong_project");

        let page = audit(&app, &p, &[]).await;
        page.assert_status(200);
        assert!(!page.text.contains("k_very_secret_1"), "no bodies in the log: {}", page.text);
        assert_eq!(page.body["nextCursor"], Value::Null);
        let list = page.body["entries"].as_array().unwrap();
        let summary: Vec<_> = list
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_owned(), e["target"].as_str().unwrap().to_owned(), e["status"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                (format!("DELETE {USER_ROUTE}"), "users/ghost".to_owned(), 404),
                (format!("DELETE {USER_ROUTE}"), "users/alice".to_owned(), 200),
                (format!("PATCH {USER_ROUTE}"), "users/alice".to_owned(), 200),
                (format!("PUT {USER_ROUTE}"), "users/alice".to_owned(), 201),
            ],
            "newest first: {}",
            page.text
        );
        for e in list {
            assert_eq!(e["actor"], key.as_str());
            assert!(e["at"].as_str().unwrap().ends_with('Z'));
        }
        let (failed, delete, patch, put) = (&list[0], &list[1], &list[2], &list[3]);
        // A PUT creating the user: nothing before, its state after.
        assert_eq!(put["beforeDigest"], Value::Null);
        assert!(is_digest(&put["afterDigest"]));
        // A real change: the states differ, and chain from one entry to the next.
        assert!(is_digest(&patch["beforeDigest"]) && is_digest(&patch["afterDigest"]));
        assert_ne!(patch["beforeDigest"], patch["afterDigest"]);
        assert_eq!(patch["beforeDigest"], put["afterDigest"]);
        // A deletion: the state before, none after.
        assert_eq!(delete["beforeDigest"], patch["afterDigest"]);
        assert_eq!(delete["afterDigest"], Value::Null);
        // A refused mutation of nothing.
        assert_eq!(failed["beforeDigest"], Value::Null);
        assert_eq!(failed["afterDigest"], Value::Null);
        // The other project's log saw none of it.
        assert!(entries(&app, &other, &[]).await.is_empty());
    }

    async fn workflow_toggles_and_admin_actions_are_recorded(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        app.connect_oauth(&p, "john", "custom.crm", "s1", json!({}), "John").await;
        let source = "id: ping\nname: Ping\nintegration: custom.crm\ntrigger: { type: event, event: ping }\nsteps:\n  - { id: call, type: http, method: POST, url: \"http://127.0.0.1:9/x\" }\n";
        let request = app
            .client
            .put(app.url(&format!("/api/v1/projects/{}/workflows/ping", p.id)))
            .bearer_auth(&p.secret_key)
            .header("content-type", "application/yaml")
            .body(source);
        answer(request).await.assert_status(200);
        let toggle = format!("/api/v1/projects/{}/users/john/workflows/ping", p.id);
        app.send(Method::POST, &toggle, Some(&p.secret_key), None).await.assert_status(200);
        app.send(Method::DELETE, &toggle, Some(&p.secret_key), None).await.assert_status(200);
        app.send(Method::DELETE, &format!("/api/v1/projects/{}/users/john/workflows/nope", p.id), Some(&p.secret_key), None)
            .await
            .assert_error(404, "workflow_not_found");
        let admin = p.with_secret(&app.admin_token);
        app.patch_user(&admin, "john", json!({"by": "admin"})).await.assert_status(200);

        let page = audit(&app, &p, &[]).await;
        page.assert_status(200);
        assert!(!page.text.contains(CLIENT_SECRET), "no bodies in the log: {}", page.text);
        let list = page.body["entries"].as_array().unwrap();
        let route = "/api/v1/projects/{projectId}/users/{userId}/workflows/{workflowId}";
        assert_eq!(list[0]["actor"], "admin");
        assert_eq!(list[0]["action"], format!("PATCH {USER_ROUTE}"));
        assert_eq!(list[0]["target"], "users/john");
        assert_ne!(list[0]["beforeDigest"], list[0]["afterDigest"]);
        let failed = &list[1];
        assert_eq!((failed["action"].as_str().unwrap(), failed["target"].as_str().unwrap(), failed["status"].as_i64().unwrap()),
            (format!("DELETE {route}").as_str(), "users/john/workflows/nope", 404));
        assert_eq!(failed["afterDigest"], Value::Null);
        let (disable, enable) = (&list[2], &list[3]);
        assert_eq!(disable["action"], format!("DELETE {route}"));
        assert_eq!(disable["target"], "users/john/workflows/ping");
        assert_eq!(disable["status"], 200);
        assert_eq!(enable["action"], format!("POST {route}"));
        // No GET twin: no state before, the answer as the state after.
        assert_eq!(disable["beforeDigest"], Value::Null);
        assert!(is_digest(&disable["afterDigest"]) && is_digest(&enable["afterDigest"]));
        assert_ne!(disable["afterDigest"], enable["afterDigest"]);
        let key = format!("key:{}", key_id(&app, &p).await);
        assert_eq!(disable["actor"], key.as_str());
        assert_eq!(list[4]["action"], "PUT /api/v1/projects/{projectId}/workflows/{workflowId}");
        assert_eq!(list[5]["target"], "integrations/custom.crm");
    }

    async fn filters_and_paging(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for user in ["a-1", "a-2", "b-1", "a-3", "b-2"] {
            app.put_user(&p, user, json!({})).await.assert_status(201);
        }
        let admin = p.with_secret(&app.admin_token);
        app.suspend_user(&admin, "a-10").await.assert_error(404, "user_not_found");
        let all = entries(&app, &p, &[]).await;
        assert_eq!(all.len(), 6);

        let by_admin = entries(&app, &p, &[("actor", "admin")]).await;
        assert_eq!(by_admin.len(), 1);
        assert_eq!(by_admin[0]["target"], "users/a-10/suspend");
        let key = format!("key:{}", key_id(&app, &p).await);
        assert_eq!(entries(&app, &p, &[("actor", &key)]).await.len(), 5);
        let targets = |list: Vec<Value>| list.iter().map(|e| e["target"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(targets(entries(&app, &p, &[("target", "users/a-")]).await), ["users/a-10/suspend", "users/a-3", "users/a-2", "users/a-1"]);
        assert_eq!(targets(entries(&app, &p, &[("target", "users/a-1")]).await), ["users/a-10/suspend", "users/a-1"]);
        assert!(entries(&app, &p, &[("target", "users/c")]).await.is_empty());

        // Time windows: `since` inclusive, `until` exclusive, RFC 3339 or milliseconds.
        let newest = all[0]["at"].as_str().unwrap();
        let project = plugboard_core::ProjectId::parse(&p.id).unwrap();
        let filter = plugboard_core::AuditFilter { limit: 1, ..Default::default() };
        let newest_ms = app.store.list_audit_entries(project, &filter).await.unwrap()[0].at;
        let since = entries(&app, &p, &[("since", newest)]).await;
        assert!(since.iter().any(|e| e["id"] == all[0]["id"]));
        assert!(since.iter().all(|e| e["at"].as_str().unwrap() >= newest));
        let until = entries(&app, &p, &[("until", &newest_ms.to_string())]).await;
        assert!(until.iter().all(|e| e["at"].as_str().unwrap() < newest));
        assert_eq!(since.len() + until.len(), 6);
        let future = (newest_ms + 60_000).to_string();
        assert!(entries(&app, &p, &[("since", &future)]).await.is_empty());
        assert_eq!(entries(&app, &p, &[("since", "0"), ("until", &future)]).await.len(), 6);

        // Paging: every entry once, in order.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "4".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = audit(&app, &p, &query).await;
            page.assert_status(200);
            paged.extend(page.body["entries"].as_array().unwrap().iter().map(|e| e["id"].clone()));
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(paged, all.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());

        for (name, value) in [("limit", "0"), ("limit", "201"), ("since", "yesterday"), ("until", "2026-13-01")] {
            audit(&app, &p, &[(name, value)]).await.assert_error(400, "invalid_filter");
        }
        audit(&app, &p, &[("cursor", "junk!")]).await.assert_error(400, "invalid_cursor");
        // Listing the log is a read: it is not recorded.
        assert_eq!(entries(&app, &p, &[]).await.len(), 6);
    }

    async fn one_projects_key_never_reads_anothers_log(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        app.put_user(&a, "alice", json!({})).await.assert_status(201);
        // Cross-project keys are refused as everywhere in the management API.
        audit(&app, &a.with_secret(&b.secret_key), &[]).await.assert_error(403, "wrong_project");
        audit(&app, &a.with_secret("pb_sk_nope"), &[]).await.assert_error(401, "invalid_credentials");
        assert!(entries(&app, &b, &[]).await.is_empty());
        let admin = a.with_secret(&app.admin_token);
        assert_eq!(entries(&app, &admin, &[]).await.len(), 1);
        let missing = Project { id: "0190c0de-0000-7000-8000-000000000000".to_owned(), ..admin };
        audit(&app, &missing, &[]).await.assert_error(404, "project_not_found");
    }

    async fn dashboard_actions_are_recorded(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "alice", json!({})).await.assert_status(201);
        let mut dash = Dash::new(&app);
        dash.login(&p.secret_key).await;
        dash.act("/dashboard/users/alice/suspend", &[]).await.assert_status(303);
        dash.act("/dashboard/users/ghost/resume", &[]).await.assert_status(404);

        let key = key_id(&app, &p).await;
        let list = entries(&app, &p, &[("actor", &format!("dashboard:key:{key}"))]).await;
        assert_eq!(list.len(), 2, "{list:?}");
        let (failed, suspend) = (&list[0], &list[1]);
        assert_eq!(suspend["action"], "dashboard: suspend user");
        assert_eq!(suspend["target"], "users/alice/suspend");
        assert_eq!(suspend["status"], 303);
        assert!(is_digest(&suspend["beforeDigest"]) && is_digest(&suspend["afterDigest"]));
        assert_ne!(suspend["beforeDigest"], suspend["afterDigest"]);
        assert_eq!(failed["action"], "dashboard: resume user");
        assert_eq!(failed["status"], 404);
        assert_eq!(app.get_user(&p, "alice").await.body["suspended"], true);

        let mut admin = Dash::new(&app);
        admin.login(&app.admin_token).await;
        let picked = admin.act("/dashboard/projects", &[("project", &p.id)]).await;
        picked.assert_status(303);
        admin.act("/dashboard/users/alice/resume", &[]).await.assert_status(303);
        let list = entries(&app, &p, &[("actor", "dashboard:admin")]).await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["target"], "users/alice/resume");
    }
}
