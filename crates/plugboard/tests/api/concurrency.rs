//! Simultaneous requests: no lost metadata update, no duplicate user.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::common::*;

/// Sends every `(method, path, bearer, body)` at once; returns the statuses in order.
async fn all_at_once(
    app: &TestApp,
    requests: Vec<(Method, String, String, Option<Value>)>,
) -> Vec<u16> {
    let mut set = JoinSet::new();
    for (i, (method, path, bearer, body)) in requests.into_iter().enumerate() {
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        set.spawn(async move { (i, answer(request).await) });
    }
    let mut statuses = vec![0; set.len()];
    while let Some(done) = set.join_next().await {
        let (i, answer) = done.unwrap();
        statuses[i] = answer.status.as_u16();
    }
    statuses
}

backend_tests! {
    async fn simultaneous_patches_all_land(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", json!({})).await.assert_status(201);
        let token = p.token("u1");
        let sdk_me = format!("/projects/{}/sdk/me", p.id);
        let user = format!("/api/v1/projects/{}/users/u1", p.id);
        let requests = (0..8)
            .map(|i| {
                let body = Some(json!({"meta": { format!("k{i}"): i }}));
                if i % 2 == 0 {
                    (Method::PATCH, sdk_me.clone(), token.clone(), body)
                } else {
                    (Method::PATCH, user.clone(), p.secret_key.clone(), body)
                }
            })
            .collect();
        assert_eq!(all_at_once(&app, requests).await, vec![200; 8]);
        let expected: serde_json::Map<String, Value> = (0..8).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(app.meta_of(&p, "u1").await, Value::Object(expected));
        for i in 0..8 {
            let key = format!("meta.k{i}");
            assert_eq!(app.list_user_ids(&p, &[(key.as_str(), &i.to_string())]).await, vec!["u1"]);
        }
    }

    async fn simultaneous_first_calls_create_one_user(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let sdk_me = format!("/projects/{}/sdk/me", p.id);
        let users = format!("/api/v1/projects/{}/users/u1", p.id);
        let mut requests: Vec<_> = (0..6).map(|_| (Method::GET, sdk_me.clone(), p.token("u1"), None)).collect();
        requests.push((Method::PUT, users.clone(), p.secret_key.clone(), Some(json!({"meta": {"from": "put"}}))));
        let statuses = all_at_once(&app, requests).await;
        assert_eq!(&statuses[..6], &[200; 6]);
        assert!(matches!(statuses[6], 200 | 201), "{statuses:?}");
        assert_eq!(app.list_user_ids(&p, &[]).await, vec!["u1"]);
        assert_eq!(app.meta_of(&p, "u1").await, json!({"from": "put"}));
    }
}
