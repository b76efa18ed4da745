//! Entitlements and secret metadata end to end: a plan downgrade through each way
//! metadata changes pauses the user's Salesforce workflows in that request, an upgrade
//! restores them, a denied connection is 402, and a secret value never shows in clear.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::provider::FakeProvider;
use crate::common::*;
use crate::dashboard::Dash;
use crate::workflows::SaasApi;

const PRO_ONLY: &str = r#"user.meta.plan in ["pro", "enterprise"]"#;
const SECRET: &str = "sk_live_TOPSECRET_4242_abcd";
/// Set before `apiKey` is declared secret (so it is in earlier events, in clear).
const EARLY_KEY: &str = "sk_live_EARLY_0000_wxyz";

fn sync_workflow(saas: &str) -> String {
    format!(
        r#"
id: sync-leads
name: Sync leads
integration: custom.salesforce
trigger: {{ type: event, event: lead.created }}
steps:
  - id: push
    type: http
    method: POST
    url: "{saas}/contacts"
    headers: {{ Authorization: "Bearer {{{{ user.meta.apiKey }}}}" }}
    body: {{ note: "key {{{{ user.meta.apiKey }}}}" }}
"#
    )
}

struct Setup {
    app: TestApp,
    p: Project,
    _provider: FakeProvider,
    saas: SaasApi,
}

async fn setup(backend: Backend) -> Setup {
    let app = TestApp::spawn(backend).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
    provider
        .configure(&app, &p, "salesforce", provider.oauth_definition())
        .await;
    let token = p.token("john");
    // The key is set before it is declared secret: declaring it seals it.
    app.patch_me(
        &p,
        &token,
        json!({"plan": "pro", "email": "john@bookface.com", "apiKey": EARLY_KEY}),
    )
    .await
    .assert_status(200);
    let declared = policy(
        &app,
        &p,
        json!({
            "entitlements": { "integrations": { "custom.salesforce": PRO_ONLY } },
            "secretMetadataKeys": ["apiKey"],
        }),
    )
    .await;
    declared.assert_status(200);
    assert_eq!(
        declared.body["impact"]["secretValuesSealed"], 1,
        "{}",
        declared.text
    );
    assert_eq!(app.meta_of(&p, "john").await["apiKey"], "••••wxyz");
    app.connect_oauth(&p, "john", "custom.salesforce", "s1", json!({}), "John")
        .await;
    let (saas, saas_base) = SaasApi::start().await;
    let deployed = app
        .client
        .put(app.url(&format!("/api/v1/projects/{}/workflows/sync-leads", p.id)))
        .bearer_auth(&p.secret_key)
        .header("content-type", "application/yaml")
        .body(sync_workflow(&saas_base));
    answer(deployed).await.assert_status(200);
    app.send(
        Method::POST,
        &format!("/projects/{}/sdk/workflows/sync-leads", p.id),
        Some(&token),
        None,
    )
    .await
    .assert_status(200);
    Setup {
        app,
        p,
        _provider: provider,
        saas,
    }
}

async fn policy(app: &TestApp, p: &Project, document: Value) -> Answer {
    app.send(
        Method::PUT,
        &format!("/api/v1/projects/{}/policy", p.id),
        Some(&p.secret_key),
        Some(&document),
    )
    .await
}

async fn lead(app: &TestApp, p: &Project) -> Answer {
    app.send(
        Method::POST,
        &format!("/projects/{}/sdk/events/trigger", p.id),
        Some(&p.token("john")),
        Some(&json!({"name": "lead.created", "payload": {}})),
    )
    .await
}

/// The `entitlement.changed` events of the project, oldest first.
async fn entitlement_events(app: &TestApp, p: &Project) -> Vec<Value> {
    let project = plugboard_core::ProjectId::parse(&p.id).unwrap();
    let filter = plugboard_core::EventFilter {
        event_type: Some("entitlement.changed".into()),
        limit: 100,
        ..Default::default()
    };
    let mut events = app
        .server
        .services
        .store
        .list_events(project, &filter)
        .await
        .unwrap();
    events.reverse();
    events.into_iter().map(|e| e.payload).collect()
}

/// Sets the plan through one of the ways metadata changes.
async fn set_plan(app: &TestApp, p: &Project, path: &str, plan: &str) {
    let answer = match path {
        "sdk" => {
            app.patch_me(p, &p.token("john"), json!({"plan": plan}))
                .await
        }
        "patch" => app.patch_user(p, "john", json!({"plan": plan})).await,
        "metadata" => {
            let mut meta = app.meta_of(p, "john").await;
            meta["plan"] = json!(plan);
            app.put_meta(p, "john", meta).await
        }
        "put" => {
            let mut meta = app.meta_of(p, "john").await;
            meta["plan"] = json!(plan);
            app.put_user(p, "john", meta).await
        }
        other => panic!("{other}"),
    };
    assert!(answer.status.as_u16() < 300, "{path}: {}", answer.text);
}

async fn visible(app: &TestApp, p: &Project) -> (bool, bool) {
    let token = p.token("john");
    let me = app.get_me(p, &token).await;
    let listed = app.get_integrations(p, &token).await;
    let in_list = listed.body.as_array().unwrap().iter().any(|i| {
        i["type"] == "custom.salesforce"
            || i["name"] == "custom.salesforce"
            || i.to_string().contains("custom.salesforce")
    });
    (
        me.body["integrations"].get("custom.salesforce").is_some(),
        in_list,
    )
}

backend_tests! {
    async fn a_downgrade_through_each_path_pauses_and_an_upgrade_restores(backend) {
        let Setup { app, p, saas, .. } = setup(backend).await;
        assert_eq!(visible(&app, &p).await, (true, true));
        let mut expected_events = 0;
        for path in ["sdk", "patch", "metadata", "put"] {
            // A run queued before the downgrade is cancelled by it.
            let queued = lead(&app, &p).await;
            assert_eq!(queued.body["executions"].as_array().unwrap().len(), 1, "{path}: {}", queued.text);
            let queued_id = queued.body["executions"][0].as_str().unwrap().to_owned();

            set_plan(&app, &p, path, "free").await;
            expected_events += 1;
            assert_eq!(visible(&app, &p).await, (false, false), "{path}: hidden from the SDK");
            assert_eq!(lead(&app, &p).await.body["executions"], json!([]), "{path}: nothing starts");
            app.server.services.worker.drain().await.unwrap();
            let cancelled = app
                .send(Method::GET, &format!("/api/v1/projects/{}/executions/{queued_id}", p.id), Some(&p.secret_key), None)
                .await;
            assert_eq!(cancelled.body["status"], "CANCELLED", "{path}: {}", cancelled.text);
            app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-leads", p.id), Some(&p.token("john")), None)
                .await
                .assert_error(402, "entitlement_required");
            // Paused, not disconnected: the credential is kept.
            let credentials = app
                .send(Method::GET, &format!("/api/v1/projects/{}/users/john/credentials", p.id), Some(&p.secret_key), None)
                .await;
            assert_eq!(credentials.body["data"].as_array().map(Vec::len), Some(1), "{path}: {}", credentials.text);
            let events = entitlement_events(&app, &p).await;
            assert_eq!(events.len(), expected_events, "{path}");
            let last = events.last().unwrap();
            assert_eq!(last["lostIntegrations"], json!(["custom.salesforce"]), "{path}");
            let state = app
                .send(Method::GET, &format!("/api/v1/projects/{}/users/john/entitlements", p.id), Some(&p.secret_key), None)
                .await;
            assert_eq!(state.body["deniedIntegrations"], json!(["custom.salesforce"]), "{}", state.text);
            if path == "sdk" {
                let mut dash = Dash::new(&app);
                dash.login(&p.secret_key).await;
                let page = dash.get("/dashboard/users/john").await;
                assert!(page.text.contains("Paused: not in the user"), "{}", page.text);
            }
            assert_eq!(last["userId"], "john");
            assert_eq!(last["onLoss"], "pause");

            set_plan(&app, &p, path, "pro").await;
            expected_events += 1;
            assert_eq!(visible(&app, &p).await, (true, true), "{path}: restored");
            let me = app.get_me(&p, &p.token("john")).await;
            assert_eq!(me.body["integrations"]["custom.salesforce"]["workflowSettings"]["sync-leads"]["enabled"], true, "{path}");
            let events = entitlement_events(&app, &p).await;
            assert_eq!(events.last().unwrap()["regainedIntegrations"], json!(["custom.salesforce"]));
            let before = saas.seen.lock().unwrap().len();
            lead(&app, &p).await.assert_status(200);
            app.server.services.worker.drain().await.unwrap();
            assert_eq!(saas.seen.lock().unwrap().len(), before + 1, "{path}: runs again");
        }
    }

    async fn a_denied_connection_is_402_and_disconnect_policy_disconnects(backend) {
        let Setup { app, p, .. } = setup(backend).await;
        let ann = p.token("ann");
        app.patch_me(&p, &ann, json!({"plan": "free"})).await.assert_status(200);
        let built = app
            .build_oauth(&p, &ann, &[
                ("action", "custom.salesforce"),
                ("oauthMetaKeyId", "s2"),
                ("originForPostMessage", "http://app.example"),
                ("installOptions", "{}"),
                ("endUserSuppliedValues", "{}"),
                ("isPreviewMode", "false"),
            ])
            .await;
        built.assert_error(402, "entitlement_required");
        // Still signed in: 402, not 401.
        app.get_me(&p, &ann).await.assert_status(200);

        // A dry run says who would lose what, and changes nothing.
        let stricter = json!({
            "entitlements": { "onLoss": "disconnect", "integrations": { "custom.salesforce": "user.meta.plan == 'enterprise'" } },
            "secretMetadataKeys": ["apiKey"],
        });
        let dry = app
            .send(Method::POST, &format!("/api/v1/projects/{}/policy/dry-run", p.id), Some(&p.secret_key), Some(&stricter))
            .await;
        dry.assert_status(200);
        assert_eq!(dry.body["usersChanged"], 1, "{}", dry.text);
        assert_eq!(dry.body["changes"][0]["userId"], "john");
        assert_eq!(dry.body["changes"][0]["lostIntegrations"], json!(["custom.salesforce"]));
        assert_eq!(visible(&app, &p).await, (true, true));

        // Applied with `disconnect`: john's connection goes.
        let applied = policy(&app, &p, stricter).await;
        applied.assert_status(200);
        assert_eq!(applied.body["impact"]["usersChanged"], 1);
        let credentials = app
            .send(Method::GET, &format!("/api/v1/projects/{}/users/john/credentials", p.id), Some(&p.secret_key), None)
            .await;
        assert_eq!(credentials.body["data"], json!([]), "{}", credentials.text);

        // Bad rules are refused with the rule named.
        let bad = policy(&app, &p, json!({"entitlements": {"workflows": {"sync-leads": "user.meta.plan in ["}}})).await;
        bad.assert_error(422, "invalid_policy");
        assert!(bad.body["message"].as_str().unwrap().contains("sync-leads"), "{}", bad.text);
    }

    async fn a_secret_value_never_shows_in_clear(backend) {
        let Setup { app, p, saas, .. } = setup(backend).await;
        let token = p.token("john");
        let me = app.patch_me(&p, &token, json!({"apiKey": SECRET})).await;
        me.assert_status(200);
        assert_eq!(me.body["meta"]["apiKey"], "••••abcd");
        assert_eq!(app.get_me(&p, &token).await.body["meta"]["apiKey"], "••••abcd");
        assert_eq!(app.meta_of(&p, "john").await["apiKey"], "••••abcd");
        // Sending the mask back keeps the secret.
        let mut meta = app.meta_of(&p, "john").await;
        meta["company"] = json!("BookFace");
        app.put_meta(&p, "john", meta).await.assert_status(200);

        // Usable in templates: the SaaS gets the real key.
        let started = lead(&app, &p).await;
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();
        let (headers, body) = saas.seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(headers["authorization"], format!("Bearer {SECRET}"));
        assert_eq!(body["note"], format!("key {SECRET}"));

        // Nowhere else in clear.
        let mut answers = Vec::new();
        for path in [
            format!("/api/v1/projects/{}/executions/{id}", p.id),
            format!("/api/v1/projects/{}/executions?meta.email=john@bookface.com", p.id),
            format!("/api/v1/projects/{}/users/john", p.id),
            format!("/api/v1/projects/{}/users?meta.email=john@bookface.com", p.id),
        ] {
            let got = app.send(Method::GET, &path, Some(&p.secret_key), None).await;
            got.assert_status(200);
            answers.push(got.text);
        }
        answers.push(app.get_me(&p, &token).await.text);
        let mut dash = Dash::new(&app);
        dash.login(&p.secret_key).await;
        for page in ["/dashboard/users/john", &format!("/dashboard/executions/{id}")] {
            let html = dash.get(page).await;
            answers.push(html.text);
        }
        let project = plugboard_core::ProjectId::parse(&p.id).unwrap();
        let events = app
            .server
            .services
            .store
            .list_events(project, &plugboard_core::EventFilter { limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert!(events.iter().any(|e| e.event_type == "user.metadata_updated"));
        // Events written after `apiKey` became secret (the earlier ones hold the early key).
        answers.extend(events.iter().map(|e| e.body().to_string()));
        for text in &answers {
            assert!(!text.contains(SECRET), "secret in: {}", &text[..text.len().min(400)]);
        }
        assert!(answers[0].contains("[redacted]"), "the step trace shows where it was: {}", answers[0]);
        let raw = raw_database_text(&app).await;
        assert!(!raw.contains(SECRET), "secret in the database");
        assert!(!raw.contains("TOPSECRET"), "part of the secret in the database");
    }
}
