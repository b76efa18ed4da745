//! Every limit and every malformed request, with its status and code; a refused write
//! leaves the stored metadata as it was.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::common::*;

const ORIGINAL: &str = r#"{"keep": "me", "n": 1}"#;

fn original() -> Value {
    serde_json::from_str(ORIGINAL).unwrap()
}

/// An object nested `levels` deep, the outermost object counting as level 1.
fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = json!({ "d": value });
    }
    value
}

/// `count` top-level keys `k0`, `k1`, …
fn many_keys(count: usize) -> Value {
    Value::Object(
        (0..count)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<Map<_, _>>(),
    )
}

/// `{"big": "xxx…"}` serialising to exactly `bytes` bytes.
fn sized(bytes: usize) -> Value {
    json!({ "big": "x".repeat(bytes - r#"{"big":""}"#.len()) })
}

/// Tries `patch` through both merge-patch endpoints and `whole` through the three
/// replacing ones, on user `u1` (holding [`ORIGINAL`]) and, for PUT, on a new user. Each
/// must answer `status`/`code` and change nothing.
async fn assert_every_write_refused(
    app: &TestApp,
    patch: Value,
    whole: Value,
    status: u16,
    code: &str,
) {
    let p = app.create_project().await;
    app.put_user(&p, "u1", original()).await.assert_status(201);
    let token = p.token("u1");
    app.patch_me(&p, &token, patch.clone())
        .await
        .assert_error(status, code);
    app.patch_user(&p, "u1", patch)
        .await
        .assert_error(status, code);
    app.put_meta(&p, "u1", whole.clone())
        .await
        .assert_error(status, code);
    app.put_user(&p, "u1", whole.clone())
        .await
        .assert_error(status, code);
    app.put_user(&p, "new", whole)
        .await
        .assert_error(status, code);
    assert_eq!(app.meta_of(&p, "u1").await, original());
    assert_eq!(app.get_me(&p, &token).await.body["meta"], original());
    app.get_user(&p, "new")
        .await
        .assert_error(404, "user_not_found");
    // The index holds nothing of the refused writes.
    let none: Vec<String> = Vec::new();
    assert_eq!(app.list_user_ids(&p, &[("meta.k0", "0")]).await, none);
}

backend_tests! {
    async fn a_stalled_request_is_answered_408_not_left_hanging(backend) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let config = plugboard::config::Config { request_timeout_secs: 1, ..test_config() };
        let app = TestApp::spawn_with(backend, config).await;
        let p = app.create_project().await;
        // Announce a 100-byte body, send 10 bytes, then stall.
        let mut stream = tokio::net::TcpStream::connect(app.server.addr).await.unwrap();
        let head = format!(
            "PATCH /api/v1/projects/{}/users/u1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"meta\": {{",
            p.id, p.secret_key
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer));
        read.await.expect("the server must answer within its timeout").unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    }

    async fn metadata_over_64_kib_is_metadata_too_large(backend) {
        let app = TestApp::spawn(backend).await;
        let big = sized(64 * 1024 + 1);
        assert_every_write_refused(&app, big.clone(), big, 413, "metadata_too_large").await;
        // Exactly 64 KiB is fine.
        let p = app.create_project().await;
        let fits = app.put_user(&p, "u", sized(64 * 1024)).await;
        fits.assert_status(201);
        app.put_meta(&p, "u", sized(64 * 1024 + 1)).await.assert_error(413, "metadata_too_large");
        // A patch is judged on the merged result.
        app.patch_user(&p, "u", json!({"more": 1})).await.assert_error(413, "metadata_too_large");
        assert_eq!(app.meta_of(&p, "u").await, sized(64 * 1024));
    }

    async fn metadata_nested_9_deep_is_metadata_too_deep(backend) {
        let app = TestApp::spawn(backend).await;
        assert_every_write_refused(&app, nested(9), nested(9), 422, "metadata_too_deep").await;
        // Arrays count too: the object, then eight arrays.
        let arrays = json!({"a": [[[[[[[[1]]]]]]]]});
        assert_every_write_refused(&app, arrays.clone(), arrays, 422, "metadata_too_deep").await;
        let p = app.create_project().await;
        app.put_user(&p, "u", nested(8)).await.assert_status(201);
        assert_eq!(app.meta_of(&p, "u").await, nested(8));
        app.patch_me(&p, &p.token("u"), json!({"a": [[[[[[[1]]]]]]]})).await.assert_status(200);
    }

    async fn key_of_129_chars_is_metadata_key_too_long(backend) {
        let app = TestApp::spawn(backend).await;
        let long = "k".repeat(129);
        let top = json!({ long.clone(): 1 });
        assert_every_write_refused(&app, top.clone(), top, 422, "metadata_key_too_long").await;
        let deep = json!({"outer": { long: 1 }});
        assert_every_write_refused(&app, deep.clone(), deep, 422, "metadata_key_too_long").await;
        let p = app.create_project().await;
        let fits = json!({ "é".repeat(128): {"k".repeat(128): 1} });
        app.put_user(&p, "u", fits.clone()).await.assert_status(201);
        assert_eq!(app.meta_of(&p, "u").await, fits);
    }

    async fn more_than_256_top_level_keys_is_metadata_too_many_keys(backend) {
        let app = TestApp::spawn(backend).await;
        // The patch adds 255 keys to the 2 already there: 257 once merged.
        assert_every_write_refused(&app, many_keys(255), many_keys(257), 422, "metadata_too_many_keys").await;
        let p = app.create_project().await;
        app.put_user(&p, "u", many_keys(256)).await.assert_status(201);
        // Replacing a key and deleting one to add another keep the count at 256.
        app.patch_user(&p, "u", json!({"k0": "x", "k1": null, "other": 1})).await.assert_status(200);
        app.patch_user(&p, "u", json!({"one-too-many": 1})).await.assert_error(422, "metadata_too_many_keys");
        assert_eq!(app.meta_of(&p, "u").await.as_object().unwrap().len(), 256);
    }

    async fn empty_keys_and_nul_characters_are_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let empty = json!({"": 1});
        assert_every_write_refused(&app, empty.clone(), empty, 422, "metadata_key_empty").await;
        let nul = json!({"s": "a\u{0}b"});
        assert_every_write_refused(&app, nul.clone(), nul, 422, "metadata_nul_character").await;
        let nul_key = json!({"nested": {"a\u{0}": 1}});
        assert_every_write_refused(&app, nul_key.clone(), nul_key, 422, "metadata_nul_character").await;
    }

    async fn body_over_1_mib_is_body_too_large(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", original()).await.assert_status(201);
        let body = serde_json::to_vec(&json!({"meta": {"big": "x".repeat(1024 * 1024)}})).unwrap();
        let sdk_me = format!("/projects/{}/sdk/me", p.id);
        let user = format!("/api/v1/projects/{}/users/u1", p.id);
        let token = p.token("u1");
        app.send_bytes(Method::PATCH, &sdk_me, Some(&token), body.clone())
            .await
            .assert_error(413, "body_too_large");
        app.send_bytes(Method::PATCH, &user, Some(&p.secret_key), body.clone())
            .await
            .assert_error(413, "body_too_large");
        app.send_bytes(Method::PUT, &user, Some(&p.secret_key), body)
            .await
            .assert_error(413, "body_too_large");
        assert_eq!(app.meta_of(&p, "u1").await, original());
    }

    async fn malformed_bodies_are_invalid_json_or_invalid_body(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", original()).await.assert_status(201);
        let token = p.token("u1");
        let sdk_me = format!("/projects/{}/sdk/me", p.id);
        let user = format!("/api/v1/projects/{}/users/u1", p.id);
        let meta = format!("{user}/meta");
        let sdk = async |body: &str| {
            app.send_bytes(Method::PATCH, &sdk_me, Some(&token), body.as_bytes().to_vec()).await
        };
        let mgmt = async |method: Method, path: &str, body: &str| {
            app.send_bytes(method, path, Some(&p.secret_key), body.as_bytes().to_vec()).await
        };
        for broken in [r#"{"meta": {"a": 1}"#, "not json", "", r#"{"meta": {"a": 1}} trailing"#] {
            sdk(broken).await.assert_error(400, "invalid_json");
            mgmt(Method::PATCH, &user, broken).await.assert_error(400, "invalid_json");
            mgmt(Method::PUT, &user, broken).await.assert_error(400, "invalid_json");
            mgmt(Method::PUT, &meta, broken).await.assert_error(400, "invalid_json");
        }
        // Well-formed JSON of the wrong shape.
        for not_object in [r#"{"meta": 5}"#, r#"{"meta": "x"}"#, r#"{"meta": [1]}"#, r#"{"meta": null}"#] {
            sdk(not_object).await.assert_error(422, "metadata_not_object");
            mgmt(Method::PATCH, &user, not_object).await.assert_error(422, "metadata_not_object");
            mgmt(Method::PUT, &user, not_object).await.assert_error(422, "metadata_not_object");
        }
        for whole in ["5", "[1]", "null", r#""x""#] {
            mgmt(Method::PUT, &meta, whole).await.assert_error(422, "invalid_body");
        }
        for wrong in [r#"{"meta": {}, "extra": 1}"#, "5", r#""meta""#, r#"[{"a": 1}]"#] {
            sdk(wrong).await.assert_error(422, "invalid_body");
            mgmt(Method::PATCH, &user, wrong).await.assert_error(422, "invalid_body");
        }
        sdk("{}").await.assert_error(422, "invalid_body");
        assert_eq!(app.meta_of(&p, "u1").await, original());
    }

    async fn bad_list_queries_are_400(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "u1", json!({"k": "v"})).await.assert_status(201);
        let long = "x".repeat(257);
        let nine: Vec<(String, String)> = (0..9).map(|i| (format!("meta.k{i}"), "v".into())).collect();
        let nine: Vec<(&str, &str)> = nine.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let bad_filters: Vec<Vec<(&str, &str)>> = vec![
            vec![("limit", "501")],
            vec![("limit", "0")],
            vec![("limit", "-1")],
            vec![("limit", "ten")],
            vec![("suspended", "yes")],
            vec![("email", "x")],
            vec![("meta.", "x")],
            vec![("q", &long)],
            vec![("meta.k", &long)],
            nine,
        ];
        for query in bad_filters {
            app.list_users(&p, &query).await.assert_error(400, "invalid_filter");
        }
        let junk_cursor = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            "u1:abc",
        );
        for cursor in ["!!", "not-a-cursor", "", junk_cursor.as_str()] {
            app.list_users(&p, &[("cursor", cursor)]).await.assert_error(400, "invalid_cursor");
        }
        // The bounds themselves are fine.
        assert_eq!(app.list_user_ids(&p, &[("limit", "500")]).await, vec!["u1"]);
        assert_eq!(app.list_user_ids(&p, &[("limit", "1")]).await, vec!["u1"]);
    }

    async fn user_ids_in_paths_are_validated(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        for bad in ["u".repeat(257), "line\nbreak".to_owned(), "tab\there".to_owned()] {
            app.get_user(&p, &bad).await.assert_error(400, "invalid_user_id");
            app.put_user(&p, &bad, json!({})).await.assert_error(400, "invalid_user_id");
        }
        let longest = "u".repeat(256);
        app.put_user(&p, &longest, json!({})).await.assert_status(201);
        app.get_user(&p, &longest).await.assert_status(200);
    }

    async fn unknown_routes_and_methods_answer_json(backend) {
        let app = TestApp::spawn(backend).await;
        for path in ["/nope", "/api/v1/nope", "/projects", "/api/v2/projects"] {
            let answer = app.get(path).await;
            answer.assert_error(404, "route_not_found");
            assert!(
                answer.header("content-type").unwrap_or("").starts_with("application/json"),
                "{path}: {:?}",
                answer.headers
            );
        }
        app.send(Method::DELETE, "/healthz", None, None)
            .await
            .assert_error(405, "method_not_allowed");
        app.send(Method::POST, "/api/v1/projects/x/users", None, None)
            .await
            .assert_error(405, "method_not_allowed");
    }
}
