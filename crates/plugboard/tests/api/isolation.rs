//! Projects see only their own users, and a project's secret key opens only that project.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

backend_tests! {
    async fn secret_key_of_another_project_is_wrong_project(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        app.put_user(&a, "alice", json!({"plan": "pro"})).await.assert_status(201);
        let a_with_b_key = a.with_secret(&b.secret_key);

        app.get_project(&a_with_b_key).await.assert_error(403, "wrong_project");
        app.list_users(&a_with_b_key, &[]).await.assert_error(403, "wrong_project");
        app.get_user(&a_with_b_key, "alice").await.assert_error(403, "wrong_project");
        app.put_user(&a_with_b_key, "mallory", json!({})).await.assert_error(403, "wrong_project");
        app.patch_user(&a_with_b_key, "alice", json!({"plan": "free"}))
            .await
            .assert_error(403, "wrong_project");
        app.put_meta(&a_with_b_key, "alice", json!({})).await.assert_error(403, "wrong_project");
        app.suspend_user(&a_with_b_key, "alice").await.assert_error(403, "wrong_project");
        app.delete_user(&a_with_b_key, "alice").await.assert_error(403, "wrong_project");
        app.list_signing_keys(&a_with_b_key).await.assert_error(403, "wrong_project");
        app.add_signing_key(&a_with_b_key, Some(&foreign_key().public_pem))
            .await
            .assert_error(403, "wrong_project");
        app.revoke_signing_key(&a_with_b_key, &a.signing_key_id)
            .await
            .assert_error(403, "wrong_project");
        app.list_secret_keys(&a_with_b_key).await.assert_error(403, "wrong_project");
        app.create_secret_key(&a_with_b_key, "stolen").await.assert_error(403, "wrong_project");

        // Nothing of A changed.
        let alice = app.get_user(&a, "alice").await;
        alice.assert_status(200);
        assert_eq!(alice.body["meta"], json!({"plan": "pro"}));
        assert_eq!(alice.body["suspended"], json!(false));
        app.get_user(&a, "mallory").await.assert_error(404, "user_not_found");
        app.get_me(&a, &a.token("alice")).await.assert_status(200);
        let secret_keys = app.list_secret_keys(&a).await;
        assert_eq!(secret_keys.body["data"].as_array().unwrap().len(), 1, "{}", secret_keys.text);
    }

    async fn users_of_one_project_are_invisible_from_another(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        let meta = json!({"Name": "Alice Liddell", "Email": "alice@wonder.land", "plan": "pro"});
        app.put_user(&a, "alice", meta.clone()).await.assert_status(201);
        app.patch_me(&a, &a.token("alice-sdk"), meta.clone()).await.assert_status(200);

        app.get_user(&b, "alice").await.assert_error(404, "user_not_found");
        app.get_user(&b, "alice-sdk").await.assert_error(404, "user_not_found");
        let no_one: Vec<String> = Vec::new();
        assert_eq!(app.list_user_ids(&b, &[]).await, no_one);
        for q in ["ali", "Alice L", "alice@"] {
            assert_eq!(app.list_user_ids(&b, &[("q", q)]).await, no_one, "q={q}");
        }
        assert_eq!(app.list_user_ids(&b, &[("meta.Email", "alice@wonder.land")]).await, no_one);
        assert_eq!(app.list_user_ids(&b, &[("meta.plan", "pro")]).await, no_one);
        app.patch_user(&b, "alice", json!({"x": 1})).await.assert_error(404, "user_not_found");
        app.suspend_user(&b, "alice").await.assert_error(404, "user_not_found");
        app.delete_user(&b, "alice").await.assert_error(404, "user_not_found");

        // B's own matching user is the only one B finds; A still finds both of its own.
        app.put_user(&b, "bob", json!({"plan": "pro"})).await.assert_status(201);
        assert_eq!(app.list_user_ids(&b, &[("meta.plan", "pro")]).await, vec!["bob"]);
        assert_eq!(app.list_user_ids(&a, &[("meta.plan", "pro")]).await, vec!["alice-sdk", "alice"]);
    }

    async fn same_user_id_in_two_projects_are_distinct_users(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        let in_a = app.patch_me(&a, &a.token("u"), json!({"side": "a", "only_a": 1})).await;
        in_a.assert_status(200);
        let in_b = app.patch_me(&b, &b.token("u"), json!({"side": "b"})).await;
        in_b.assert_status(200);
        assert_eq!(in_b.body["meta"], json!({"side": "b"}));
        assert_eq!(app.meta_of(&a, "u").await, json!({"side": "a", "only_a": 1}));
        assert_eq!(app.meta_of(&b, "u").await, json!({"side": "b"}));

        // Suspending or erasing one leaves the other alone.
        app.suspend_user(&a, "u").await.assert_status(200);
        app.get_me(&a, &a.token("u")).await.assert_error(403, "user_suspended");
        app.get_me(&b, &b.token("u")).await.assert_status(200);
        let erased = app.delete_user(&a, "u").await;
        erased.assert_status(200);
        assert_eq!(erased.body["deleted"]["users"], json!(1));
        app.get_user(&a, "u").await.assert_error(404, "user_not_found");
        let still = app.get_user(&b, "u").await;
        still.assert_status(200);
        assert_eq!(still.body["meta"], json!({"side": "b"}));
        assert_eq!(still.body["suspended"], json!(false));
    }

    async fn admin_token_manages_any_project(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let as_admin = a.with_secret(&app.admin_token);
        let project = app.get_project(&as_admin).await;
        project.assert_status(200);
        assert_eq!(project.body["projectId"], json!(a.id));
        app.put_user(&as_admin, "u", json!({"k": 1})).await.assert_status(201);
        assert_eq!(app.meta_of(&a, "u").await, json!({"k": 1}));
        // An unknown project is 404 for the admin, never a silent success.
        let ghost = as_admin.clone();
        let ghost = Project { id: uuid::Uuid::new_v4().to_string(), ..ghost };
        app.get_project(&ghost).await.assert_error(404, "project_not_found");
        app.put_user(&ghost, "u", json!({})).await.assert_error(404, "project_not_found");
        let path = format!("/api/v1/projects/{}/users", "not-a-uuid");
        app.send(Method::GET, &path, Some(&a.secret_key), None)
            .await
            .assert_error(404, "project_not_found");
    }

    async fn keys_of_another_project_cannot_be_revoked(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        // A's secret key, B's key ids, on A's URLs.
        app.revoke_signing_key(&a, &b.signing_key_id).await.assert_error(404, "key_not_found");
        let b_keys = app.list_secret_keys(&b).await;
        let b_secret_id = b_keys.body["data"][0]["id"].as_str().unwrap().to_owned();
        app.revoke_secret_key(&a, &b_secret_id).await.assert_error(404, "key_not_found");
        // B is untouched, and A lists only its own keys.
        app.get_me(&b, &b.token("u1")).await.assert_status(200);
        app.list_users(&b, &[]).await.assert_status(200);
        let a_signing = app.list_signing_keys(&a).await;
        let ids: Vec<&str> = a_signing.body["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![a.signing_key_id.as_str()]);
        let a_secret = app.list_secret_keys(&a).await;
        assert!(!a_secret.text.contains(&b_secret_id), "{}", a_secret.text);
    }
}
