//! `GET /api/v1/projects/{pid}/users`: prefix search, metadata filters, the suspended
//! filter and cursor pagination.

use std::collections::HashSet;

use serde_json::json;

use crate::common::*;

/// Every user of the list, following `nextCursor` with `limit` per page; asserts each page
/// but the last is full.
async fn all_pages(app: &TestApp, p: &Project, limit: usize) -> Vec<String> {
    let limit_text = limit.to_string();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = vec![("limit", limit_text.as_str())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = app.list_users(p, &query).await;
        page.assert_status(200);
        let ids = user_ids(&page.body);
        assert!(ids.len() <= limit, "{}", page.text);
        seen.extend(ids.iter().cloned());
        match page.body["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(
                    ids.len(),
                    limit,
                    "a page before the last is full: {}",
                    page.text
                );
                cursor = Some(next.to_owned());
            }
            None => return seen,
        }
    }
    panic!("pagination does not end");
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

backend_tests! {
    async fn q_is_a_case_insensitive_prefix_of_id_name_or_email(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let users = [
            ("alice-1", json!({"Name": "Zed Zulu", "Email": "zed@corp.io"})),
            ("bob", json!({"Name": "Alice Cooper"})),
            ("carol", json!({"Email": "ALICE@corp.io"})),
            ("dave", json!({"Name": "Malice", "Email": "dave@alice.io", "note": "alice"})),
            ("Ünal", json!({"Name": "Éloïse"})),
            ("a_b", json!({})),
            ("axb", json!({})),
        ];
        for (id, meta) in &users {
            app.put_user(&p, id, meta.clone()).await.assert_status(201);
        }
        let q = async |text: &str| app.list_user_ids(&p, &[("q", text)]).await;
        // Newest first.
        assert_eq!(q("ali").await, ids(&["carol", "bob", "alice-1"]));
        assert_eq!(q("ALICE").await, ids(&["carol", "bob", "alice-1"]));
        assert_eq!(q("aLiCe C").await, ids(&["bob"]));
        assert_eq!(q("zed").await, ids(&["alice-1"]));
        assert_eq!(q("ZED@").await, ids(&["alice-1"]));
        assert_eq!(q("alice-1").await, ids(&["alice-1"]));
        assert_eq!(q("ün").await, ids(&["Ünal"]));
        assert_eq!(q("ÉLO").await, ids(&["Ünal"]));
        // Prefix only, and no wildcards.
        assert_eq!(q("cooper").await, ids(&[]));
        assert_eq!(q("corp").await, ids(&[]));
        assert_eq!(q("a_").await, ids(&["a_b"]));
        assert_eq!(q("%").await, ids(&[]));
        assert_eq!(q("alice-12").await, ids(&[]));
        // An empty q filters nothing.
        assert_eq!(q("").await.len(), users.len());
        // The searched Name and Email follow every kind of metadata write.
        app.patch_user(&p, "bob", json!({"name": "Robert", "email": "rob@x.io"})).await.assert_status(200);
        assert_eq!(q("alice c").await, ids(&[]));
        assert_eq!(q("rober").await, ids(&["bob"]));
        assert_eq!(q("rob@").await, ids(&["bob"]));
        app.patch_me(&p, &p.token("bob"), json!({"Name": null})).await.assert_status(200);
        assert_eq!(q("rober").await, ids(&[]));
        app.put_meta(&p, "bob", json!({"Name": "Zelda"})).await.assert_status(200);
        assert_eq!(q("rob@").await, ids(&[]));
        assert_eq!(q("zel").await, ids(&["bob"]));
        app.put_user(&p, "bob", json!({})).await.assert_status(200);
        assert_eq!(q("zel").await, ids(&[]));
    }

    async fn meta_filters_match_scalars_exactly(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", json!({"plan": "pro", "seats": 5, "active": true, "ratio": 1.5,
            "obj": {"x": 1}, "Email": "a+b@x.io"})).await.assert_status(201);
        app.put_user(&p, "u2", json!({"plan": "free", "seats": 50, "active": false})).await.assert_status(201);
        app.patch_me(&p, &p.token("u3"), json!({"plan": "pro", "seats": "5"})).await.assert_status(200);
        let find = async |key: &str, value: &str| app.list_user_ids(&p, &[(key, value)]).await;
        assert_eq!(find("meta.plan", "pro").await, ids(&["u3", "u1"]));
        assert_eq!(find("meta.plan", "free").await, ids(&["u2"]));
        assert_eq!(find("meta.plan", "pr").await, ids(&[]));
        assert_eq!(find("meta.plan", "PRO").await, ids(&[]));
        assert_eq!(find("meta.Plan", "pro").await, ids(&[]));
        // Numbers and booleans match their JSON spelling (a string "5" matches too).
        assert_eq!(find("meta.seats", "5").await, ids(&["u3", "u1"]));
        assert_eq!(find("meta.seats", "50").await, ids(&["u2"]));
        assert_eq!(find("meta.ratio", "1.5").await, ids(&["u1"]));
        assert_eq!(find("meta.active", "true").await, ids(&["u1"]));
        assert_eq!(find("meta.active", "false").await, ids(&["u2"]));
        assert_eq!(find("meta.Email", "a+b@x.io").await, ids(&["u1"]));
        // Objects are not searchable; unknown keys match no one.
        assert_eq!(find("meta.obj", r#"{"x":1}"#).await, ids(&[]));
        assert_eq!(find("meta.nope", "pro").await, ids(&[]));
        // The index follows updates.
        app.patch_user(&p, "u1", json!({"plan": "free", "active": null})).await.assert_status(200);
        assert_eq!(find("meta.plan", "pro").await, ids(&["u3"]));
        assert_eq!(find("meta.plan", "free").await, ids(&["u2", "u1"]));
        assert_eq!(find("meta.active", "true").await, ids(&[]));
    }

    async fn meta_filters_and_q_combine_with_and(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for (id, meta) in [
            ("u1", json!({"plan": "pro", "region": "eu", "Name": "Ann"})),
            ("u2", json!({"plan": "pro", "region": "us", "Name": "Andy"})),
            ("u3", json!({"plan": "free", "region": "eu", "Name": "Anna"})),
            ("u4", json!({"plan": "pro", "region": "eu", "Name": "Bob"})),
        ] {
            app.put_user(&p, id, meta).await.assert_status(201);
        }
        let both = [("meta.plan", "pro"), ("meta.region", "eu")];
        assert_eq!(app.list_user_ids(&p, &both).await, ids(&["u4", "u1"]));
        let reversed = [("meta.region", "eu"), ("meta.plan", "pro")];
        assert_eq!(app.list_user_ids(&p, &reversed).await, ids(&["u4", "u1"]));
        let with_q = [("meta.plan", "pro"), ("meta.region", "eu"), ("q", "an")];
        assert_eq!(app.list_user_ids(&p, &with_q).await, ids(&["u1"]));
        let contradictory = [("meta.plan", "pro"), ("meta.plan", "free")];
        assert_eq!(app.list_user_ids(&p, &contradictory).await, ids(&[]));
        app.suspend_user(&p, "u4").await.assert_status(200);
        let active = [("meta.plan", "pro"), ("meta.region", "eu"), ("suspended", "false")];
        assert_eq!(app.list_user_ids(&p, &active).await, ids(&["u1"]));
    }

    async fn suspended_filter(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for id in ["u1", "u2", "u3"] {
            app.put_user(&p, id, json!({})).await.assert_status(201);
        }
        app.suspend_user(&p, "u2").await.assert_status(200);
        assert_eq!(app.list_user_ids(&p, &[("suspended", "true")]).await, ids(&["u2"]));
        assert_eq!(app.list_user_ids(&p, &[("suspended", "false")]).await, ids(&["u3", "u1"]));
        assert_eq!(app.list_user_ids(&p, &[]).await, ids(&["u3", "u2", "u1"]));
        let listed = app.list_users(&p, &[("suspended", "true")]).await;
        assert_eq!(listed.body["data"][0]["suspended"], json!(true));
        app.resume_user(&p, "u2").await.assert_status(200);
        assert_eq!(app.list_user_ids(&p, &[("suspended", "true")]).await, ids(&[]));
    }

    async fn pagination_visits_every_user_once_newest_first(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let created: Vec<String> = (0..7).map(|i| format!("user-{i}")).collect();
        for id in &created {
            app.put_user(&p, id, json!({"plan": "pro"})).await.assert_status(201);
        }
        let newest_first: Vec<String> = created.iter().rev().cloned().collect();
        for limit in [1, 2, 3, 7, 50] {
            assert_eq!(all_pages(&app, &p, limit).await, newest_first, "limit {limit}");
        }
        // Default page size covers them all, with no next page.
        let page = app.list_users(&p, &[]).await;
        assert_eq!(user_ids(&page.body), newest_first);
        assert!(page.body["nextCursor"].is_null(), "{}", page.text);
        // Filtered lists paginate the same way.
        let first = app.list_users(&p, &[("meta.plan", "pro"), ("limit", "4")]).await;
        assert_eq!(user_ids(&first.body), newest_first[..4].to_vec());
        let cursor = first.body["nextCursor"].as_str().unwrap();
        let rest = app.list_users(&p, &[("meta.plan", "pro"), ("limit", "4"), ("cursor", cursor)]).await;
        assert_eq!(user_ids(&rest.body), newest_first[4..].to_vec());
        assert!(rest.body["nextCursor"].is_null(), "{}", rest.text);
    }

    async fn pagination_is_stable_while_users_are_added_and_updated(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for i in 0..6 {
            app.put_user(&p, &format!("old-{i}"), json!({"i": i})).await.assert_status(201);
        }
        let first = app.list_users(&p, &[("limit", "2")]).await;
        assert_eq!(user_ids(&first.body), ids(&["old-5", "old-4"]));
        let mut cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
        // Between page fetches: new users arrive, and older ones are updated.
        app.put_user(&p, "new-0", json!({})).await.assert_status(201);
        app.get_me(&p, &p.token("new-1")).await.assert_status(200);
        app.patch_user(&p, "old-1", json!({"touched": true})).await.assert_status(200);
        app.put_user(&p, "old-3", json!({"replaced": true})).await.assert_status(200);
        let mut rest = Vec::new();
        loop {
            let page = app.list_users(&p, &[("limit", "2"), ("cursor", &cursor)]).await;
            page.assert_status(200);
            rest.extend(user_ids(&page.body));
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(rest, ids(&["old-3", "old-2", "old-1", "old-0"]));
        let everyone: HashSet<String> = all_pages(&app, &p, 3).await.into_iter().collect();
        assert_eq!(everyone.len(), 8);
        assert_eq!(&all_pages(&app, &p, 3).await[..2], &ids(&["new-1", "new-0"])[..]);
    }
}
