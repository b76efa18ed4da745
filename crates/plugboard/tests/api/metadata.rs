//! Metadata writes: JSON Merge Patch through the SDK and the management API, replacement
//! through PUT, and key normalisation.

use serde_json::{Value, json};

use crate::common::*;

const BASE: &str = r#"{"a": {"b": 1, "c": 2}, "keep": true, "arr": [1, 2], "gone": "soon"}"#;
const PATCH: &str = r#"{"a": {"b": null, "d": {"e": 1}}, "arr": [3], "new": "x", "gone": null}"#;
const MERGED: &str = r#"{"a": {"c": 2, "d": {"e": 1}}, "keep": true, "arr": [3], "new": "x"}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

backend_tests! {
    async fn sdk_patch_merges_deeply_deletes_nulls_and_replaces_arrays(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let token = p.token("u1");
        let first = app.patch_me(&p, &token, parse(BASE)).await;
        first.assert_status(200);
        assert_eq!(first.body["meta"], parse(BASE));
        let merged = app.patch_me(&p, &token, parse(PATCH)).await;
        merged.assert_status(200);
        // The answer is the updated user, in the SDK's shape.
        assert_eq!(merged.body["meta"], parse(MERGED));
        assert_eq!(merged.body["userId"], json!("u1"));
        assert_eq!(merged.body["authenticated"], json!(true));
        assert_eq!(app.meta_of(&p, "u1").await, parse(MERGED));
        let me = app.get_me(&p, &token).await;
        assert_eq!(me.body["meta"], parse(MERGED));
        // An empty patch changes nothing.
        let same = app.patch_me(&p, &token, json!({})).await;
        same.assert_status(200);
        assert_eq!(same.body["meta"], parse(MERGED));
    }

    async fn management_patch_merges_and_returns_the_user(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", parse(BASE)).await.assert_status(201);
        let merged = app.patch_user(&p, "u1", parse(PATCH)).await;
        merged.assert_status(200);
        assert_eq!(merged.body["userId"], json!("u1"));
        assert_eq!(merged.body["meta"], parse(MERGED));
        assert_eq!(merged.body["suspended"], json!(false));
        assert_eq!(app.meta_of(&p, "u1").await, parse(MERGED));
        // A scalar can become an object (nested nulls dropped) and back.
        let reshaped = app.patch_user(&p, "u1", json!({"keep": {"x": null, "y": 2}})).await;
        assert_eq!(reshaped.body["meta"]["keep"], json!({"y": 2}));
        let back = app.patch_user(&p, "u1", json!({"keep": false})).await;
        assert_eq!(back.body["meta"]["keep"], json!(false));
        // PATCH never creates a user.
        app.patch_user(&p, "ghost", json!({"k": 1})).await.assert_error(404, "user_not_found");
        app.get_user(&p, "ghost").await.assert_error(404, "user_not_found");
    }

    async fn name_and_email_keys_are_normalised(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let token = p.token("u1");
        let patched = app.patch_me(&p, &token, json!({"name": "Ada", "EMAIL": "ada@x.io", "nAmEs": 1})).await;
        patched.assert_status(200);
        assert_eq!(patched.body["meta"], json!({"Name": "Ada", "Email": "ada@x.io", "nAmEs": 1}));
        // Any spelling updates and deletes the same key.
        let renamed = app.patch_user(&p, "u1", json!({"NAME": "Ada L."})).await;
        assert_eq!(renamed.body["meta"]["Name"], json!("Ada L."));
        let deleted = app.patch_me(&p, &token, json!({"eMail": null})).await;
        assert_eq!(deleted.body["meta"], json!({"Name": "Ada L.", "nAmEs": 1}));
        // PUT normalises too, and the normalised keys are searchable.
        app.put_user(&p, "u2", json!({"email": "b@x.io", "name": "Bo"})).await.assert_status(201);
        assert_eq!(app.meta_of(&p, "u2").await, json!({"Email": "b@x.io", "Name": "Bo"}));
        assert_eq!(app.list_user_ids(&p, &[("meta.Email", "b@x.io")]).await, vec!["u2"]);
        assert_eq!(app.list_user_ids(&p, &[("q", "bo")]).await, vec!["u2"]);
    }

    async fn put_meta_replaces_the_whole_object(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", parse(BASE)).await.assert_status(201);
        let replaced = app.put_meta(&p, "u1", json!({"only": {"this": [1]}, "email": "e@x.io"})).await;
        replaced.assert_status(200);
        let expected = json!({"only": {"this": [1]}, "Email": "e@x.io"});
        assert_eq!(replaced.body["meta"], expected);
        assert_eq!(replaced.body["userId"], json!("u1"));
        assert_eq!(app.meta_of(&p, "u1").await, expected);
        // The old values are no longer searchable; the new ones are.
        let none: Vec<String> = Vec::new();
        assert_eq!(app.list_user_ids(&p, &[("meta.gone", "soon")]).await, none);
        assert_eq!(app.list_user_ids(&p, &[("meta.Email", "e@x.io")]).await, vec!["u1"]);
        // Emptying it is a replacement too; an unknown user is 404.
        let emptied = app.put_meta(&p, "u1", json!({})).await;
        assert_eq!(emptied.body["meta"], json!({}));
        app.put_meta(&p, "ghost", json!({"k": 1})).await.assert_error(404, "user_not_found");
        app.get_user(&p, "ghost").await.assert_error(404, "user_not_found");
    }

    async fn put_user_creates_then_replaces(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let created = app.put_user(&p, "u1", json!({"a": 1, "b": {"c": 2}})).await;
        created.assert_status(201);
        assert_eq!(created.body["userId"], json!("u1"));
        assert_eq!(created.body["meta"], json!({"a": 1, "b": {"c": 2}}));
        assert_eq!(created.body["suspended"], json!(false));
        assert!(created.body["lastSeen"].is_null(), "{}", created.text);
        let replaced = app.put_user(&p, "u1", json!({"z": true})).await;
        replaced.assert_status(200);
        assert_eq!(replaced.body["meta"], json!({"z": true}));
        assert_eq!(replaced.body["dateCreated"], created.body["dateCreated"]);
        assert_eq!(app.meta_of(&p, "u1").await, json!({"z": true}));
        // The SDK sees what the backend put, under the same user.
        let me = app.get_me(&p, &p.token("u1")).await;
        assert_eq!(me.body["meta"], json!({"z": true}));
        // A body without `meta` creates a user with no metadata.
        let bare = app.users_put_raw(&p, "u2", json!({})).await;
        bare.assert_status(201);
        assert_eq!(bare.body["meta"], json!({}));
    }

    async fn user_ids_with_reserved_characters_round_trip(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for id in ["org/42 user", "ünïcode-✓", "a?b#c%d", "+plus"] {
            let me = app.patch_me(&p, &p.token(id), json!({"id": id})).await;
            me.assert_status(200);
            assert_eq!(me.body["userId"], json!(id));
            let got = app.get_user(&p, id).await;
            got.assert_status(200);
            assert_eq!(got.body["userId"], json!(id), "{id}");
            assert_eq!(got.body["meta"], json!({"id": id}));
            assert_eq!(app.list_user_ids(&p, &[("meta.id", id)]).await, vec![id.to_owned()]);
        }
    }
}

impl TestApp {
    /// `PUT /users/{uid}` with exactly `body`.
    async fn users_put_raw(&self, p: &Project, user: &str, body: Value) -> Answer {
        let path = format!("/api/v1/projects/{}/users/{}", p.id, segment(user));
        self.send(
            reqwest::Method::PUT,
            &path,
            Some(&p.secret_key),
            Some(&body),
        )
        .await
    }
}
