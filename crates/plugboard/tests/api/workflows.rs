//! Workflows end to end: deploy, enable per user, an app event, the worker (drained by the
//! test, never slept on), the SaaS's own API called with the user's metadata, and the
//! task history found by the user's email.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::provider::FakeProvider;
use crate::common::*;

/// The SaaS's own API: records every request, answers 200 (or 503 while `failures`
/// lasts).
#[derive(Clone, Default)]
pub(crate) struct SaasApi {
    pub(crate) seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    failures: Arc<Mutex<u32>>,
}

impl SaasApi {
    pub(crate) async fn start() -> (Self, String) {
        let api = SaasApi::default();
        let state = api.clone();
        let router = axum::Router::new().route(
            "/contacts",
            axum::routing::post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push((headers, body));
                    let mut failures = state.failures.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
                    }
                    (axum::http::StatusCode::OK, Json(json!({"ok": true})))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (api, base)
    }
}

fn sync_workflow(saas: &str) -> String {
    format!(
        r#"
id: sync-contacts
name: Sync contacts to the app
integration: custom.crm
trigger: {{ type: event, event: contact.created }}
steps:
  - {{ id: fetch, type: integration_request, path: /contacts }}
  - id: pick
    type: transform
    jq: '[.steps.fetch.output.body.contacts[] | {{email, name}}]'
  - id: each
    type: map
    items: .steps.pick.output
    concurrency: 2
    steps:
      - id: push
        type: http
        method: POST
        url: "{saas}/contacts"
        headers: {{ Authorization: "Bearer {{{{ user.meta.apiKey }}}}" }}
        body: {{ email: "{{{{ item.email }}}}", source: "{{{{ trigger.payload.source }}}}" }}
"#
    )
}

struct Setup {
    app: TestApp,
    p: Project,
    provider: FakeProvider,
    saas: SaasApi,
    saas_base: String,
}

async fn setup(backend: Backend) -> Setup {
    let app = TestApp::spawn(backend).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    app.connect_oauth(&p, "john", "custom.crm", "s1", json!({}), "John")
        .await;
    let token = p.token("john");
    // The SaaS passes a per-user API key as metadata.
    app.patch_me(
        &p,
        &token,
        json!({"apiKey": "k_john_123", "email": "john@bookface.com"}),
    )
    .await
    .assert_status(200);
    for (name, email) in [("Ann", "ann@x.example"), ("Bob", "bob@x.example")] {
        app.proxy(
            &p,
            &token,
            Method::POST,
            "custom.crm/contacts",
            &[],
            Some(&json!({"name": name, "email": email})),
        )
        .await
        .assert_status(201);
    }
    let (saas, saas_base) = SaasApi::start().await;
    Setup {
        app,
        p,
        provider,
        saas,
        saas_base,
    }
}

async fn deploy(app: &TestApp, p: &Project, id: &str, source: &str) -> Answer {
    let request = app
        .client
        .put(app.url(&format!("/api/v1/projects/{}/workflows/{id}", p.id)))
        .bearer_auth(&p.secret_key)
        .header("content-type", "application/yaml")
        .body(source.to_owned());
    answer(request).await
}

async fn event(app: &TestApp, p: &Project, user: &str, name: &str, payload: Value) -> Answer {
    app.send(
        Method::POST,
        &format!("/projects/{}/sdk/events/trigger", p.id),
        Some(&p.token(user)),
        Some(&json!({"name": name, "payload": payload})),
    )
    .await
}

backend_tests! {
    async fn an_app_event_runs_the_launch_example_end_to_end(backend) {
        let Setup { app, p, provider: _provider, saas, saas_base } = setup(backend).await;
        let deployed = deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await;
        deployed.assert_status(200);
        assert_eq!(deployed.body["version"], 1);
        let token = p.token("john");
        // The SDK sees it (§D.2): `workflows[]` and `workflowMeta`.
        let listed = app.get_integrations(&p, &token).await;
        assert_eq!(listed.body[0]["workflows"][0]["id"], "sync-contacts");
        assert_eq!(listed.body[0]["configs"][0]["values"]["workflowMeta"]["sync-contacts"]["id"], "sync-contacts");

        // Not enabled yet: the event starts nothing.
        assert_eq!(event(&app, &p, "john", "contact.created", json!({})).await.body["executions"], json!([]));
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&token), None)
            .await
            .assert_status(200);
        let me = app.get_me(&p, &token).await;
        assert_eq!(me.body["integrations"]["custom.crm"]["workflowSettings"]["sync-contacts"]["enabled"], true);

        let started = event(&app, &p, "john", "contact.created", json!({"source": "signup"})).await;
        started.assert_status(200);
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();

        let detail = app
            .send(Method::GET, &format!("/api/v1/projects/{}/executions/{id}", p.id), Some(&p.secret_key), None)
            .await;
        assert_eq!(detail.body["status"], "SUCCEEDED", "{}", detail.text);
        let seen = saas.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one call per contact");
        for (headers, body) in &seen {
            assert_eq!(headers["authorization"], "Bearer k_john_123", "the user's API key from metadata");
            assert_eq!(body["source"], "signup");
        }
        let keys: Vec<&str> = seen.iter().map(|(h, _)| h["idempotency-key"].to_str().unwrap()).collect();
        assert_ne!(keys[0], keys[1]);
        assert!(keys.iter().all(|k| k.starts_with(&id)), "{keys:?}");

        // "John from BookFace says his integration is broken": one call by his email.
        drop(detail);
        let history = app
            .send(Method::GET, &format!("/api/v1/projects/{}/executions?meta.Email=john@bookface.com", p.id), Some(&p.secret_key), None)
            .await;
        history.assert_status(200);
        assert_eq!(history.body["data"][0]["id"], id.as_str());
        assert_eq!(history.body["data"][0]["status"], "SUCCEEDED");
        let detail = app
            .send(Method::GET, &format!("/api/v1/projects/{}/executions/{id}", p.id), Some(&p.secret_key), None)
            .await;
        let steps: Vec<&str> = detail.body["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert!(steps.starts_with(&["fetch", "pick"]), "{steps:?}");
        assert!(steps.contains(&"each[0].push") && steps.contains(&"each[1].push") && steps.contains(&"each"));
        // Support replays it: a new execution, the same trigger, run again.
        let replayed = app
            .send(Method::POST, &format!("/api/v1/projects/{}/executions/{id}/replay", p.id), Some(&p.secret_key), None)
            .await;
        replayed.assert_status(201);
        assert_eq!(replayed.body["trigger"]["replayOf"], id.as_str());
        assert_eq!(replayed.body["trigger"]["payload"]["source"], "signup");
        app.server.services.worker.drain().await.unwrap();
        assert_eq!(saas.seen.lock().unwrap().len(), 4, "the replay called the app again");

        // Disabled: no more runs.
        app.send(Method::DELETE, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&token), None)
            .await
            .assert_status(200);
        assert_eq!(event(&app, &p, "john", "contact.created", json!({})).await.body["executions"], json!([]));
    }

    async fn failing_steps_retry_and_the_task_history_shows_them(backend) {
        let Setup { app, p, provider: _provider, saas, saas_base } = setup(backend).await;
        let one_call = format!(
            "id: ping\nname: Ping\nintegration: custom.crm\ntrigger: {{ type: event, event: ping }}\nsteps:\n  - {{ id: call, type: http, method: POST, url: \"{saas_base}/contacts\", body: {{ n: 1 }}, max_attempts: 2 }}\n"
        );
        deploy(&app, &p, "ping", &one_call).await.assert_status(200);
        let admin = format!("/api/v1/projects/{}/users/john/workflows/ping", p.id);
        app.send(Method::POST, &admin, Some(&p.secret_key), None).await.assert_status(200);
        *saas.failures.lock().unwrap() = 5;
        let started = app
            .send(Method::POST, &format!("/api/v1/projects/{}/events", p.id), Some(&p.secret_key), Some(&json!({"userId": "john", "name": "ping"})))
            .await;
        started.assert_status(202);
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();
        let path = format!("/api/v1/projects/{}/executions/{id}", p.id);
        let delayed = app.send(Method::GET, &path, Some(&p.secret_key), None).await;
        assert_eq!(delayed.body["status"], "DELAYED", "a transient failure waits for its backoff: {}", delayed.text);
        assert_eq!(delayed.body["steps"][0]["record"]["state"], "retrying");
        let failed = app
            .send(Method::GET, &format!("/api/v1/projects/{}/executions?status=DELAYED&workflowId=ping", p.id), Some(&p.secret_key), None)
            .await;
        assert_eq!(failed.body["data"].as_array().unwrap().len(), 1);
        app.send(Method::GET, &format!("/api/v1/projects/{}/executions?status=BROKEN", p.id), Some(&p.secret_key), None)
            .await
            .assert_error(400, "invalid_filter");
        // Not finished: no replay yet.
        app.send(Method::POST, &format!("{path}/replay"), Some(&p.secret_key), None)
            .await
            .assert_error(422, "invalid_input");
    }

    async fn deploys_are_validated_and_versioned(backend) {
        let Setup { app, p, saas_base, .. } = setup(backend).await;
        let bad = sync_workflow(&saas_base).replace("concurrency: 2", "concurrency: 0");
        let refused = deploy(&app, &p, "sync-contacts", &bad).await;
        refused.assert_error(422, "invalid_input");
        assert!(refused.text.contains("steps[2].concurrency"), "{}", refused.text);
        let wrong_id = deploy(&app, &p, "other", &sync_workflow(&saas_base)).await;
        wrong_id.assert_error(422, "invalid_input");
        let unknown = sync_workflow(&saas_base).replace("integration: custom.crm", "integration: custom.nope");
        deploy(&app, &p, "sync-contacts", &unknown).await.assert_error(422, "invalid_input");
        deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await.assert_status(200);
        let second = deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await;
        assert_eq!(second.body["version"], 2);
        let listed = app.send(Method::GET, &format!("/api/v1/projects/{}/workflows", p.id), Some(&p.secret_key), None).await;
        assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
        // Enabling a workflow of an integration the user has not connected.
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&p.token("stranger")), None)
            .await
            .assert_error(404, "not_connected");
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/nope", p.id), Some(&p.token("john")), None)
            .await
            .assert_error(404, "workflow_not_found");
    }

    async fn an_invalid_credential_records_a_failed_execution(backend) {
        let Setup { app, p, provider, saas, saas_base } = setup(backend).await;
        deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await.assert_status(200);
        let token = p.token("john");
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&token), None)
            .await
            .assert_status(200);
        provider.sandbox.faults().revoke_all_refresh_tokens();
        provider.sandbox.expire_access_tokens();
        app.proxy(&p, &token, Method::GET, "custom.crm/me", &[], None).await.assert_error(409, "credential_invalid");
        let started = event(&app, &p, "john", "contact.created", json!({})).await;
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();
        let detail = app.send(Method::GET, &format!("/api/v1/projects/{}/executions/{id}", p.id), Some(&p.secret_key), None).await;
        assert_eq!(detail.body["status"], "FAILED");
        assert!(detail.body["error"].as_str().unwrap().starts_with("credential_invalid"), "{}", detail.text);
        assert!(saas.seen.lock().unwrap().is_empty());
    }

    async fn the_paragon_task_history_pages_counts_and_redacts(backend) {
        let Setup { app, p, provider: _provider, saas: _saas, saas_base } = setup(backend).await;
        deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await.assert_status(200);
        let token = p.token("john");
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&token), None)
            .await
            .assert_status(200);
        let started = event(&app, &p, "john", "contact.created", json!({"source": "signup"})).await;
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();
        let base = format!("/projects/{}/task-history/workflow-executions", p.id);
        let key = Some(p.secret_key.as_str());

        let list = app.send(Method::GET, &format!("{base}?userId=john&status=SUCCEEDED"), key, None).await;
        list.assert_status(200);
        assert_eq!(list.body["total"], 1);
        assert_eq!(list.body["nextLink"], Value::Null);
        let run = &list.body["workflowExecutions"][0];
        assert_eq!(run["id"], id.as_str());
        assert_eq!(run["workflowId"], "sync-contacts");
        assert_eq!(run["taskCount"], 5, "fetch, pick, each and two pushes: {run}");
        assert!(run["runDuration"].as_i64().unwrap() >= 0);
        assert!(run["dateEnded"].is_string());

        let detail = app.send(Method::GET, &format!("{base}/{id}"), key, None).await;
        detail.assert_status(200);
        let steps = detail.body["stepExecutions"].as_array().unwrap();
        assert_eq!(steps[0]["stepId"], "fetch");
        assert_eq!(steps[0]["type"], "integration_request");
        assert_eq!(steps[0]["status"], "SUCCEEDED");
        assert_eq!(steps[0]["next"], json!(["pick"]));
        assert_eq!(steps[1]["prev"], "fetch");
        assert!(steps[0]["start"].is_string() && steps[0]["end"].is_string());
        assert!(!detail.text.contains("k_john_123"), "no secret in the history: {}", detail.text);

        let push = app.send(Method::GET, &format!("{base}/{id}/step-executions/each[0].push"), key, None).await;
        push.assert_status(200);
        assert_eq!(push.body["isLargeInput"], false);
        assert_eq!(push.body["input"]["headers"]["Authorization"], "[redacted]");
        assert_eq!(push.body["input"]["body"]["source"], "signup");
        assert_eq!(push.body["output"]["status"], 200);
        let by_uuid = steps[0]["id"].as_str().unwrap();
        let fetch = app.send(Method::GET, &format!("{base}/{id}/step-executions/{by_uuid}"), key, None).await;
        assert_eq!(fetch.body["input"]["method"], "GET");
        app.send(Method::GET, &format!("{base}/{id}/step-executions/nope"), key, None)
            .await
            .assert_error(404, "step_not_found");
        let ours = app.send(Method::GET, &format!("/api/v1/projects/{}/executions/{id}", p.id), key, None).await;
        assert!(!ours.text.contains("k_john_123"), "{}", ours.text);

        // 101 more runs (left queued): pages of 100 with a nextLink keeping the filters.
        for _ in 0..101 {
            event(&app, &p, "john", "contact.created", json!({})).await.assert_status(200);
        }
        let first = app.send(Method::GET, &format!("{base}?workflowId=sync-contacts&sortBy=ASC"), key, None).await;
        assert_eq!(first.body["total"], 102);
        assert_eq!(first.body["workflowExecutions"].as_array().unwrap().len(), 100);
        assert_eq!(first.body["workflowExecutions"][0]["id"], id.as_str(), "oldest first");
        assert_eq!(first.body["workflowExecutions"][1]["status"], "EXECUTING", "queued");
        let next = first.body["nextLink"].as_str().unwrap();
        assert!(next.contains("workflowId=sync-contacts") && next.contains("offset=100"), "{next}");
        let rest = answer(app.client.get(next).bearer_auth(&p.secret_key)).await;
        assert_eq!(rest.body["workflowExecutions"].as_array().unwrap().len(), 2);
        assert_eq!(rest.body["nextLink"], Value::Null);
        let executing = app.send(Method::GET, &format!("{base}?status=EXECUTING"), key, None).await;
        assert_eq!(executing.body["total"], 101);

        let replayed = app.send(Method::POST, &format!("{base}/{id}/replay"), key, None).await;
        replayed.assert_status(201);
        assert_eq!(replayed.body["status"], "EXECUTING");
        assert_eq!(replayed.body["userId"], "john");

        for bad in ["status=QUEUED", "sortBy=UP", "offset=-1", "beforeDate=yesterday", "limit=5"] {
            app.send(Method::GET, &format!("{base}?{bad}"), key, None).await.assert_error(400, "invalid_filter");
        }
        // A user token is not a secret key; another project's key sees nothing of this one.
        app.send(Method::GET, &base, Some(&token), None).await.assert_status(401);
        let other = app.create_project().await;
        let foreign = app.send(Method::GET, &base, Some(&other.secret_key), None).await;
        assert!(foreign.status == 401 || foreign.status == 403, "{}", foreign.text);
        let theirs = app
            .send(Method::GET, &format!("/projects/{}/task-history/workflow-executions/{id}", other.id), Some(&other.secret_key), None)
            .await;
        theirs.assert_error(404, "execution_not_found");
    }

    async fn integration_enabled_workflows_run_once_per_connection(backend) {
        let Setup { app, p, provider, saas, saas_base } = setup(backend).await;
        let welcome = format!(
            "id: welcome\nname: Welcome\nintegration: custom.crm\nenabled_by_default: true\ntrigger: {{ type: integration_enabled }}\nsettings: [{{ key: greeting, label: Greeting, default: hello }}]\nsteps:\n  - {{ id: hi, type: http, method: POST, url: \"{saas_base}/contacts\", body: {{ say: \"{{{{ settings.greeting }}}}\", user: \"{{{{ user.id }}}}\" }} }}\n"
        );
        deploy(&app, &p, "welcome", &welcome).await.assert_status(200);
        deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await.assert_status(200);

        // A new connection: the default-on workflow is on and runs once.
        app.connect_oauth(&p, "jane", "custom.crm", "s2", json!({}), "Jane").await;
        let me = app.get_me(&p, &p.token("jane")).await;
        let settings = &me.body["integrations"]["custom.crm"]["workflowSettings"];
        assert_eq!(settings["welcome"]["enabled"], true, "{settings}");
        assert_eq!(settings["welcome"]["settings"]["greeting"], "hello");
        assert!(settings.get("sync-contacts").is_none() || settings["sync-contacts"]["enabled"] != true);
        let runs = |user: &'static str| {
            let app = &app;
            let p = &p;
            async move {
                app.send(Method::GET, &format!("/api/v1/projects/{}/executions?userId={user}&workflowId=welcome", p.id), Some(&p.secret_key), None)
                    .await
                    .body["data"]
                    .as_array()
                    .unwrap()
                    .clone()
            }
        };
        let jane_runs = runs("jane").await;
        assert_eq!(jane_runs.len(), 1);
        assert_eq!(jane_runs[0]["trigger"]["type"], "integration_enabled");
        app.server.services.worker.drain().await.unwrap();
        let seen = saas.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, json!({"say": "hello", "user": "jane"}));

        // John connected before the deploy: turning it on the first time runs it; again, not.
        assert!(runs("john").await.is_empty());
        let path = format!("/projects/{}/sdk/workflows/welcome", p.id);
        let token = p.token("john");
        app.send(Method::POST, &path, Some(&token), None).await.assert_status(200);
        assert_eq!(runs("john").await.len(), 1);
        app.send(Method::DELETE, &path, Some(&token), None).await.assert_status(200);
        app.send(Method::POST, &path, Some(&token), None).await.assert_status(200);
        app.server.services.worker.drain().await.unwrap();
        assert_eq!(runs("john").await.len(), 1, "once per connection");
        drop(provider);
    }

    async fn project_env_reaches_templates_and_never_the_history(backend) {
        let Setup { app, p, provider: _provider, saas, saas_base } = setup(backend).await;
        let secret = "env_token_0123456789";
        let env = format!("/api/v1/projects/{}/env", p.id);
        let key = Some(p.secret_key.as_str());
        let set = app.send(Method::PUT, &env, key, Some(&json!({"SAAS_TOKEN": secret, "REGION": "eu"}))).await;
        set.assert_status(200);
        assert!(!set.text.contains(secret), "write-only: {}", set.text);
        let shown = app.send(Method::GET, &env, key, None).await;
        assert_eq!(shown.body["data"], json!([{"name": "REGION", "preview": "…"}, {"name": "SAAS_TOKEN", "preview": "…6789"}]));
        for bad in [json!({"lower": "x"}), json!({"A": 1}), json!({"9A": "x"})] {
            app.send(Method::PUT, &env, key, Some(&bad)).await.assert_error(422, "invalid_input");
        }
        app.send(Method::GET, &env, Some(&p.token("john")), None).await.assert_status(401);

        let workflow = format!(
            "id: ping\nname: Ping\nintegration: custom.crm\ntrigger: {{ type: event, event: ping }}\nsteps:\n  - {{ id: call, type: http, method: POST, url: \"{saas_base}/contacts?t={{{{ env.SAAS_TOKEN }}}}\", headers: {{ X-Region: \"{{{{ env.REGION }}}}\" }}, body: {{ token: \"{{{{ env.SAAS_TOKEN }}}}\" }} }}\n"
        );
        deploy(&app, &p, "ping", &workflow).await.assert_status(200);
        app.send(Method::POST, &format!("/api/v1/projects/{}/users/john/workflows/ping", p.id), key, None)
            .await
            .assert_status(200);
        let started = app
            .send(Method::POST, &format!("/api/v1/projects/{}/events", p.id), key, Some(&json!({"userId": "john", "name": "ping"})))
            .await;
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        app.server.services.worker.drain().await.unwrap();
        let seen = saas.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0["x-region"], "eu");
        assert_eq!(seen[0].1, json!({"token": secret}));

        let step = app
            .send(Method::GET, &format!("/projects/{}/task-history/workflow-executions/{id}/step-executions/call", p.id), key, None)
            .await;
        assert_eq!(step.body["input"]["body"]["token"], "[redacted]", "{}", step.text);
        assert!(step.body["input"]["url"].as_str().unwrap().ends_with("?t=[redacted]"));
        assert_eq!(step.body["input"]["headers"]["X-Region"], "eu", "short values are left alone");
        assert!(!raw_database_text(&app).await.contains(secret), "the value is sealed at rest and scrubbed from the journal");
    }

    async fn disconnecting_cancels_pending_runs(backend) {
        let Setup { app, p, saas, saas_base, .. } = setup(backend).await;
        deploy(&app, &p, "sync-contacts", &sync_workflow(&saas_base)).await.assert_status(200);
        let token = p.token("john");
        app.send(Method::POST, &format!("/projects/{}/sdk/workflows/sync-contacts", p.id), Some(&token), None)
            .await
            .assert_status(200);
        let started = event(&app, &p, "john", "contact.created", json!({})).await;
        let id = started.body["executions"][0].as_str().unwrap().to_owned();
        let integration_id = app.get_integrations(&p, &token).await.body[0]["id"].as_str().unwrap().to_owned();
        app.send(Method::DELETE, &format!("/projects/{}/sdk/integrations/{integration_id}", p.id), Some(&token), None)
            .await
            .assert_status(200);
        app.server.services.worker.drain().await.unwrap();
        let detail = app.send(Method::GET, &format!("/api/v1/projects/{}/executions/{id}", p.id), Some(&p.secret_key), None).await;
        assert_eq!(detail.body["status"], "CANCELLED", "{}", detail.text);
        assert!(saas.seen.lock().unwrap().is_empty());
    }
}

const QUOTE: &str = r#"
id: quote
name: Quote
integration: custom.crm
trigger: { type: request, timeout_ms: 10000 }
steps:
  - { id: me, type: integration_request, path: /me }
  - id: answer
    type: respond
    status: 201
    body: { account: "{{ steps.me.output.body.id }}", asked: "{{ trigger.body.q }}", page: "{{ trigger.query.page }}" }
"#;

#[tokio::test]
async fn a_request_trigger_answers_with_its_respond_step() {
    let mut config = test_config();
    config.workflows.worker = true;
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let p = app.create_project().await;
    let provider = FakeProvider::start().await;
    provider
        .configure(&app, &p, "crm", provider.oauth_definition())
        .await;
    app.connect_oauth(&p, "john", "custom.crm", "s1", json!({}), "John")
        .await;
    let token = p.token("john");
    deploy(&app, &p, "quote", QUOTE).await.assert_status(200);
    let trigger = |path: &str| {
        app.client
            .post(app.url(&format!("/projects/{}/sdk/triggers/{path}", p.id)))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(r#"{"q":"price"}"#)
    };
    answer(trigger("quote?page=2"))
        .await
        .assert_error(409, "workflow_not_enabled");
    app.send(
        Method::POST,
        &format!("/projects/{}/sdk/workflows/quote", p.id),
        Some(&token),
        None,
    )
    .await
    .assert_status(200);
    let answered = answer(trigger("quote?page=2")).await;
    answered.assert_status(201);
    assert!(
        answered.body["account"]
            .as_str()
            .unwrap()
            .starts_with("acct_"),
        "{}",
        answered.text
    );
    assert_eq!(answered.body["asked"], "price");
    assert_eq!(answered.body["page"], "2");

    // A workflow that cannot answer in time: 202 with the execution to follow.
    let slow = QUOTE
        .replace("id: quote", "id: slow")
        .replace("timeout_ms: 10000", "timeout_ms: 300")
        .replace(
            "  - { id: me,",
            "  - { id: wait, type: delay, seconds: 60 }\n  - { id: me,",
        );
    deploy(&app, &p, "slow", &slow).await.assert_status(200);
    app.send(
        Method::POST,
        &format!("/projects/{}/sdk/workflows/slow", p.id),
        Some(&token),
        None,
    )
    .await
    .assert_status(200);
    let pending = answer(trigger("slow?")).await;
    pending.assert_status(202);
    assert!(pending.body["executionId"].is_string());
}

const EVERY_MINUTE: &str = r#"
id: every-minute
name: Every minute
integration: custom.crm
trigger: { type: schedule, cron: "* * * * *", timezone: Europe/Paris }
steps:
  - { id: me, type: integration_request, path: /me }
"#;

mod schedules {
    use super::*;

    backend_tests! {
        async fn a_schedule_tick_runs_once_across_schedulers_and_restarts(backend) {
            let Setup { app, p, .. } = setup(backend).await;
            deploy(&app, &p, "every-minute", EVERY_MINUTE).await.assert_status(200);
            app.send(Method::POST, &format!("/projects/{}/sdk/workflows/every-minute", p.id), Some(&p.token("john")), None)
                .await
                .assert_status(200);
            let other = app.sibling(test_config()).await;
            let next_minute = (plugboard_core::now_millis() / 60_000 + 1) * 60_000;
            // Two schedulers at the same tick: one run.
            let (a, b) = tokio::join!(
                app.server.services.workflows.run_schedules_at(next_minute),
                other.server.services.workflows.run_schedules_at(next_minute),
            );
            assert_eq!(a.unwrap() + b.unwrap(), 1);
            // A restarted scheduler (a new node) does not run it again.
            let restarted = app.sibling(test_config()).await;
            assert_eq!(restarted.server.services.workflows.run_schedules_at(next_minute + 30_000).await.unwrap(), 0);
            // The next tick runs, once.
            assert_eq!(restarted.server.services.workflows.run_schedules_at(next_minute + 60_000).await.unwrap(), 1);
            assert_eq!(other.server.services.workflows.run_schedules_at(next_minute + 60_000).await.unwrap(), 0);
            app.server.services.worker.drain().await.unwrap();
            let runs = app
                .send(Method::GET, &format!("/api/v1/projects/{}/executions?workflowId=every-minute", p.id), Some(&p.secret_key), None)
                .await;
            let statuses: Vec<&str> = runs.body["data"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
            assert_eq!(statuses, ["SUCCEEDED", "SUCCEEDED"]);
            assert_eq!(runs.body["data"][0]["trigger"]["type"], "schedule");
        }
    }
}
