//! User tokens: every way one is refused (401 and its own `code`), audiences, projects,
//! key rotation and revocation.

use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::json;

use crate::common::*;

/// `GET /sdk/me` with `token` answers 401 and `code`.
async fn assert_refused(app: &TestApp, p: &Project, token: &str, code: &str) {
    app.get_me(p, token).await.assert_error(401, code);
}

backend_tests! {
    async fn missing_authorization_header_is_token_missing(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let path = format!("/projects/{}/sdk/me", p.id);
        app.send(Method::GET, &path, None, None).await.assert_error(401, "token_missing");
        // A scheme other than Bearer carries no user token either.
        let basic = app.client.get(app.url(&path)).header("authorization", "Basic dTpw");
        answer(basic).await.assert_error(401, "token_missing");
    }

    async fn garbage_token_is_token_malformed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for garbage in ["garbage", "a.b.c", "a.b.c.d", "....", "eyJ.eyJ.sig"] {
            app.get_me(&p, garbage).await.assert_error(401, "token_malformed");
        }
    }

    async fn unsigned_token_is_algorithm_not_allowed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let token = unsigned(&claims(&p.id, "u1"));
        assert_refused(&app, &p, &token, "token_algorithm_not_allowed").await;
        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
    }

    async fn hs256_keyed_with_the_public_key_is_algorithm_not_allowed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        // The classic confusion attack: HMAC keyed with the bytes of the registered public key.
        let key = EncodingKey::from_secret(p.public_pem.as_bytes());
        for kid in [None, Some(p.signing_key_id.as_str())] {
            let token = sign(Algorithm::HS256, &key, kid, &claims(&p.id, "u1"));
            assert_refused(&app, &p, &token, "token_algorithm_not_allowed").await;
        }
        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
    }

    async fn es256_and_ps256_are_algorithm_not_allowed(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let es256 = sign(Algorithm::ES256, &es256_key(), None, &claims(&p.id, "u1"));
        assert_refused(&app, &p, &es256, "token_algorithm_not_allowed").await;
        // PS256 with the project's own RSA key: right key, wrong algorithm.
        let rsa = EncodingKey::from_rsa_pem(p.private_pem.as_bytes()).unwrap();
        let ps256 = sign(Algorithm::PS256, &rsa, Some(&p.signing_key_id), &claims(&p.id, "u1"));
        assert_refused(&app, &p, &ps256, "token_algorithm_not_allowed").await;
    }

    async fn key_not_registered_in_the_project_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let foreign = &foreign_key().private_pem;
        let c = claims(&p.id, "u1");
        assert_refused(&app, &p, &rs256(foreign, None, &c), "token_signature_invalid").await;
        let unknown_kid = uuid::Uuid::new_v4().to_string();
        assert_refused(&app, &p, &rs256(foreign, Some(&unknown_kid), &c), "token_key_unknown").await;
        assert_refused(&app, &p, &rs256(foreign, Some("not-a-uuid"), &c), "token_key_unknown").await;
        // The id of the project's own key does not make a foreign signature valid.
        let kid = Some(p.signing_key_id.as_str());
        assert_refused(&app, &p, &rs256(foreign, kid, &c), "token_signature_invalid").await;
        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
    }

    async fn missing_or_empty_subject_is_token_subject_missing(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "x");
        c.as_object_mut().unwrap().remove("sub");
        assert_refused(&app, &p, &p.token_with(&c), "token_subject_missing").await;
        c["sub"] = json!("");
        assert_refused(&app, &p, &p.token_with(&c), "token_subject_missing").await;
        c["sub"] = json!(null);
        assert_refused(&app, &p, &p.token_with(&c), "token_subject_missing").await;
    }

    async fn subject_that_is_not_a_user_id_is_token_subject_invalid(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let too_long = "u".repeat(257);
        assert_refused(&app, &p, &p.token(&too_long), "token_subject_invalid").await;
        assert_refused(&app, &p, &p.token("line\nbreak"), "token_subject_invalid").await;
        let mut c = claims(&p.id, "x");
        c["sub"] = json!(42);
        assert_refused(&app, &p, &p.token_with(&c), "token_subject_invalid").await;
        // 256 characters is the longest id allowed.
        let longest = "u".repeat(256);
        let me = app.get_me(&p, &p.token(&longest)).await;
        me.assert_status(200);
        assert_eq!(me.body["userId"], json!(longest));
    }

    async fn missing_exp_is_token_expiry_missing(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "u1");
        c.as_object_mut().unwrap().remove("exp");
        assert_refused(&app, &p, &p.token_with(&c), "token_expiry_missing").await;
    }

    async fn expired_token_is_token_expired(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "u1");
        c["iat"] = json!(now_secs() - 7200);
        c["exp"] = json!(now_secs() - 10);
        assert_refused(&app, &p, &p.token_with(&c), "token_expired").await;
        app.get_user(&p, "u1").await.assert_error(404, "user_not_found");
    }

    async fn iat_far_in_the_future_is_token_issued_in_future(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "u1");
        c["iat"] = json!(now_secs() + 120);
        assert_refused(&app, &p, &p.token_with(&c), "token_issued_in_future").await;
        // A few seconds of clock skew are tolerated.
        c["iat"] = json!(now_secs() + 20);
        app.get_me(&p, &p.token_with(&c)).await.assert_status(200);
    }

    async fn nbf_in_the_future_is_token_not_yet_valid(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "u1");
        c["nbf"] = json!(now_secs() + 300);
        assert_refused(&app, &p, &p.token_with(&c), "token_not_yet_valid").await;
        c["nbf"] = json!(now_secs() - 5);
        app.get_me(&p, &p.token_with(&c)).await.assert_status(200);
    }

    async fn audience_must_name_this_project(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let other = uuid::Uuid::new_v4();
        let mut c = claims(&p.id, "u1");
        for wrong in [
            json!("someone-else"),
            json!(format!("plugboard:{other}")),
            json!(format!("useparagon.com/{other}")),
            json!(["someone-else", format!("useparagon.com/{other}")]),
            json!([]),
        ] {
            c["aud"] = wrong;
            assert_refused(&app, &p, &p.token_with(&c), "token_audience_invalid").await;
        }
        for right in [
            json!(format!("useparagon.com/{}", p.id)),
            json!(format!("plugboard:{}", p.id)),
            json!(["someone-else", format!("useparagon.com/{}", p.id)]),
        ] {
            c["aud"] = right.clone();
            let me = app.get_me(&p, &p.token_with(&c)).await;
            assert_eq!(me.status, 200, "aud {right} must pass: {}", me.text);
        }
        // No audience at all is accepted too.
        c.as_object_mut().unwrap().remove("aud");
        app.get_me(&p, &p.token_with(&c)).await.assert_status(200);
    }

    async fn token_of_one_project_is_refused_by_another(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        let token_a = a.token("u1");
        app.get_me(&a, &token_a).await.assert_status(200);
        assert_refused(&app, &b, &token_a, "token_key_unknown").await;
        // Without kid nor aud, only B's keys are tried: A's signature does not verify.
        let bare = rs256(&a.private_pem, None, &json!({"sub": "u1", "exp": now_secs() + 600}));
        assert_refused(&app, &b, &bare, "token_signature_invalid").await;
        app.get_user(&b, "u1").await.assert_error(404, "user_not_found");
    }

    async fn unknown_project_is_project_not_found(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let ghost = Project { id: uuid::Uuid::new_v4().to_string(), ..p.clone() };
        app.get_me(&ghost, &p.token("u1")).await.assert_error(404, "project_not_found");
        let junk = Project { id: "demo".into(), ..p };
        app.get_me(&junk, "x").await.assert_error(404, "project_not_found");
    }

    async fn rotation_and_revocation_of_signing_keys(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let added = app.add_signing_key(&p, Some(&second_key().public_pem)).await;
        added.assert_status(201);
        let second_id = added.body["id"].as_str().unwrap().to_owned();
        assert!(added.body.get("privateKeyPem").is_none(), "{}", added.text);

        let c = claims(&p.id, "u1");
        let first_kid = rs256(&p.private_pem, Some(&p.signing_key_id), &c);
        let first_bare = rs256(&p.private_pem, None, &c);
        let second_kid = rs256(&second_key().private_pem, Some(&second_id), &c);
        let second_bare = rs256(&second_key().private_pem, None, &c);
        // `kid` picks the key; the other key's id does not verify this signature.
        let mismatched = rs256(&second_key().private_pem, Some(&p.signing_key_id), &c);
        for token in [&first_kid, &first_bare, &second_kid, &second_bare] {
            app.get_me(&p, token).await.assert_status(200);
        }
        assert_refused(&app, &p, &mismatched, "token_signature_invalid").await;

        app.revoke_signing_key(&p, &p.signing_key_id).await.assert_status(204);
        // The very tokens that worked a moment ago (and may be cached) stop verifying.
        assert_refused(&app, &p, &first_kid, "token_key_unknown").await;
        assert_refused(&app, &p, &first_bare, "token_signature_invalid").await;
        app.get_me(&p, &second_kid).await.assert_status(200);
        app.get_me(&p, &second_bare).await.assert_status(200);

        let keys = app.list_signing_keys(&p).await;
        keys.assert_status(200);
        let revoked: Vec<(String, bool)> = keys.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["id"].as_str().unwrap().to_owned(), !k["dateRevoked"].is_null()))
            .collect();
        assert!(revoked.contains(&(p.signing_key_id.clone(), true)), "{revoked:?}");
        assert!(revoked.contains(&(second_id.clone(), false)), "{revoked:?}");

        // Revoking the last key leaves no way in.
        app.revoke_signing_key(&p, &second_id).await.assert_status(204);
        assert_refused(&app, &p, &second_kid, "token_key_unknown").await;
        assert_refused(&app, &p, &second_bare, "token_key_unknown").await;
        app.revoke_signing_key(&p, &uuid::Uuid::new_v4().to_string())
            .await
            .assert_error(404, "key_not_found");
    }

    async fn generated_signing_key_signs_usable_tokens(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project_with_generated_key().await;
        assert!(p.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let me = app.get_me(&p, &p.token("u1")).await;
        me.assert_status(200);
        assert_eq!(me.body["userId"], "u1");
        // A second generated key works alongside the first.
        let added = app.add_signing_key(&p, None).await;
        added.assert_status(201);
        let private = added.body["privateKeyPem"].as_str().unwrap();
        let kid = added.body["id"].as_str().unwrap();
        app.get_me(&p, &rs256(private, Some(kid), &claims(&p.id, "u2"))).await.assert_status(200);
        // Private keys are never shown again.
        let keys = app.list_signing_keys(&p).await;
        assert!(!keys.text.contains("PRIVATE"), "{}", keys.text);
    }

    async fn private_or_junk_public_key_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for junk in [foreign_key().private_pem.as_str(), "hello"] {
            app.add_signing_key(&p, Some(junk)).await.assert_error(422, "invalid_public_key");
            app.post_project(Some(&app.admin_token), &json!({"name": "x", "publicKeyPem": junk}))
                .await
                .assert_error(422, "invalid_public_key");
        }
    }

    async fn cached_token_stops_working_when_it_expires(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut c = claims(&p.id, "u1");
        c["exp"] = json!(now_secs() + 2);
        let token = p.token_with(&c);
        app.get_me(&p, &token).await.assert_status(200);
        // Verified once, then served from the cache: it must still expire on time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let me = app.get_me(&p, &token).await;
            if me.status == 401 {
                me.assert_error(401, "token_expired");
                break;
            }
            me.assert_status(200);
            assert!(std::time::Instant::now() < deadline, "the token outlived its exp");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    async fn bearer_scheme_is_case_insensitive(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let url = app.url(&format!("/projects/{}/sdk/me", p.id));
        for scheme in ["bearer", "BEARER", "Bearer"] {
            let request = app.client.get(&url).header("authorization", format!("{scheme} {}", p.token("u1")));
            answer(request).await.assert_status(200);
        }
    }
}
