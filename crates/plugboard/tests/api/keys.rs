//! Project secret keys, and the admin token that creates projects.

use serde_json::json;

use crate::common::*;

backend_tests! {
    async fn secret_keys_can_be_added_listed_and_revoked(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        assert!(p.secret_key.starts_with("pb_sk_"), "{}", p.secret_key);
        let created = app.create_secret_key(&p, "ci").await;
        created.assert_status(201);
        let second = created.body["secretKey"].as_str().unwrap().to_owned();
        assert_eq!(created.body["name"], json!("ci"));
        assert!(second.starts_with(created.body["prefix"].as_str().unwrap()));
        assert_ne!(second, p.secret_key);

        let list = app.list_secret_keys(&p).await;
        list.assert_status(200);
        let keys = list.body["data"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{}", list.text);
        for full in [&p.secret_key, &second] {
            assert!(!list.text.contains(full.as_str()), "a full key is listed: {}", list.text);
        }
        for key in keys {
            let prefix = key["prefix"].as_str().unwrap();
            assert!(prefix.starts_with("pb_sk_") && prefix.len() < 20, "{prefix}");
            assert!(key.get("secretKey").is_none() && key.get("hash").is_none(), "{key}");
        }
        let first_id = keys
            .iter()
            .find(|k| p.secret_key.starts_with(k["prefix"].as_str().unwrap()) && k["name"] == json!("default"))
            .expect("the project's first key is listed")["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let with_second = p.with_secret(&second);
        app.revoke_secret_key(&with_second, &first_id).await.assert_status(204);
        app.list_users(&p, &[]).await.assert_error(401, "invalid_credentials");
        app.get_project(&p).await.assert_error(401, "invalid_credentials");
        app.list_users(&with_second, &[]).await.assert_status(200);
        let list = app.list_secret_keys(&with_second).await;
        let revoked = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == json!(first_id)).unwrap().clone();
        assert!(!revoked["dateRevoked"].is_null(), "{revoked}");
        app.revoke_secret_key(&with_second, &uuid::Uuid::new_v4().to_string())
            .await
            .assert_error(404, "key_not_found");
    }

    async fn bad_secret_keys_are_invalid_credentials(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for bad in ["", "pb_sk_nope", "nope"] {
            let caller = p.with_secret(bad);
            app.list_users(&caller, &[]).await.assert_error(401, "invalid_credentials");
        }
        let truncated = p.with_secret(&p.secret_key[..p.secret_key.len() - 1]);
        app.get_project(&truncated).await.assert_error(401, "invalid_credentials");
        // A user token is no secret key.
        let token = p.token("u1");
        app.get_project(&p.with_secret(&token)).await.assert_error(401, "invalid_credentials");
        // And a secret key is no user token.
        app.get_me(&p, &p.secret_key).await.assert_error(401, "token_malformed");
    }

    async fn creating_projects_needs_the_admin_token(backend) {
        let app = TestApp::spawn(backend).await;
        let body = json!({"name": "x"});
        app.post_project(None, &body).await.assert_error(401, "invalid_credentials");
        app.post_project(Some("wrong-admin-token-of-some-length"), &body)
            .await
            .assert_error(401, "invalid_credentials");
        let almost = &app.admin_token[..app.admin_token.len() - 1];
        app.post_project(Some(almost), &body).await.assert_error(401, "invalid_credentials");
        let p = app.create_project().await;
        app.post_project(Some(&p.secret_key), &body).await.assert_error(401, "invalid_credentials");
        app.post_project(Some(&app.admin_token), &json!({"name": "  "}))
            .await
            .assert_error(422, "invalid_input");

        let created = app.post_project(Some(&app.admin_token), &json!({"name": "acme"})).await;
        created.assert_status(201);
        assert_eq!(created.body["name"], json!("acme"));
        let got = app.get_project(&Project {
            id: created.body["projectId"].as_str().unwrap().to_owned(),
            secret_key: created.body["secretKey"].as_str().unwrap().to_owned(),
            ..p
        }).await;
        got.assert_status(200);
        assert_eq!(got.body["name"], json!("acme"));
    }

    async fn admin_calls_are_refused_when_no_admin_token_is_configured(backend) {
        let config = plugboard::config::Config { admin_token: None, ..test_config() };
        let app = TestApp::spawn_with(backend, config).await;
        for token in [Some("anything-at-all-here"), Some(""), None] {
            let refused = app.post_project(token, &json!({"name": "x"})).await;
            assert!(matches!(refused.status.as_u16(), 401 | 403), "{}", refused.text);
        }
        app.post_project(Some("anything-at-all-here"), &json!({"name": "x"}))
            .await
            .assert_error(403, "admin_disabled");
    }
}
