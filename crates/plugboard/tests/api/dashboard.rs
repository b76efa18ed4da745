//! The dashboard over real HTTP: login, the session cookie's attributes, CSRF on every
//! form, logout and expiry, one project's key never reaching another project's data, the
//! pages' search and filters, and the management API's twin filters.

use plugboard_core::{DashboardPrincipal, DashboardSession, now_millis};
use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::common::provider::{FakeProvider, no_redirects};
use crate::common::*;

/// Minijinja escapes `/` in HTML; the tests read links as a browser would.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

fn cookie_value(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap()[name.len() + 1..].to_owned())
}

fn set_cookie(answer: &Answer, name: &str) -> String {
    answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", answer.headers))
        .to_owned()
}

/// A browser-like client of the dashboard: no redirects followed, cookies sent by hand.
pub(crate) struct Dash<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    session: Option<String>,
    csrf: String,
}

impl<'a> Dash<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: no_redirects(),
            session: None,
            csrf: String::new(),
        }
    }

    /// Logs in with `key`; returns the login answer.
    async fn try_login(&mut self, key: &str) -> Answer {
        let page = answer(self.client.get(self.app.url("/dashboard/login"))).await;
        page.assert_status(200);
        let token = cookie_value(&page, "pb_login").expect("a login token cookie");
        assert_eq!(csrf_of(&page.text), token, "double-submit token");
        let request = self
            .client
            .post(self.app.url("/dashboard/login"))
            .header(COOKIE, format!("pb_login={token}"))
            .form(&[("key", key), ("csrf", &token)]);
        let answer = answer(request).await;
        if let Some(id) = cookie_value(&answer, "pb_session") {
            self.session = Some(id);
        }
        answer
    }

    pub(crate) async fn login(&mut self, key: &str) {
        let answer = self.try_login(key).await;
        answer.assert_status(303);
        // Any page of the session carries its CSRF token in the layout's logout form.
        let page = self.get("/dashboard/projects").await;
        let page = if page.status == 303 {
            self.get("/dashboard/users").await
        } else {
            page
        };
        self.csrf = csrf_of(&page.text);
    }

    fn with_session(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.session {
            Some(id) => request.header(COOKIE, format!("pb_session={id}")),
            None => request,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        let mut got = answer(self.with_session(self.client.get(self.app.url(path)))).await;
        got.text = unescape(&got.text);
        got
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.client.post(self.app.url(path)).form(form);
        let mut got = answer(self.with_session(request)).await;
        got.text = unescape(&got.text);
        got
    }

    /// A form post with this session's CSRF token.
    pub(crate) async fn act(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }
}

#[track_caller]
fn assert_redirect(answer: &Answer, to: &str) {
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(answer.header(LOCATION.as_str()), Some(to));
}

backend_tests! {
    async fn login_sets_a_strict_cookie_and_logout_ends_the_session(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let mut dash = Dash::new(&app);
        assert_redirect(&dash.get("/dashboard/users").await, "/dashboard/login");
        assert_redirect(&dash.get("/dashboard").await, "/dashboard/users");

        // A wrong key, a key without the form's token, the admin's page without a session.
        let refused = dash.try_login("pb_sk_not-a-key").await;
        refused.assert_status(401);
        assert!(refused.text.contains("That key was not accepted"), "{}", refused.text);
        assert!(cookie_value(&refused, "pb_session").is_none());
        let no_token = answer(
            no_redirects()
                .post(app.url("/dashboard/login"))
                .form(&[("key", p.secret_key.as_str()), ("csrf", "x")]),
        )
        .await;
        no_token.assert_status(403);

        let ok = dash.try_login(&p.secret_key).await;
        assert_redirect(&ok, "/dashboard/users");
        let cookie = set_cookie(&ok, "pb_session");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=28800"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "the test server's public URL is http: {cookie}");
        let id = dash.session.clone().unwrap();
        // Only a hash of the id is stored.
        assert!(app.store.get_dashboard_session(&id, now_millis()).await.unwrap().is_none());

        let users = dash.get("/dashboard/users").await;
        users.assert_status(200);
        assert!(users.text.contains("project 0"), "the project's name is shown");
        assert_eq!(users.header("cache-control"), Some("no-store"));
        assert!(users.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
        dash.csrf = csrf_of(&users.text);

        dash.post("/dashboard/logout", &[("csrf", "wrong")]).await.assert_status(403);
        let out = dash.act("/dashboard/logout", &[]).await;
        assert_redirect(&out, "/dashboard/login");
        assert!(set_cookie(&out, "pb_session").contains("Max-Age=0"));
        // The old cookie no longer opens anything.
        assert_redirect(&dash.get("/dashboard/users").await, "/dashboard/login");
    }

    async fn every_action_needs_the_sessions_csrf_token(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.put_user(&p, "john", json!({"Email": "john@bookface.com"})).await.assert_status(201);
        let mut dash = Dash::new(&app);
        dash.login(&p.secret_key).await;
        let mut other = Dash::new(&app);
        other.login(&p.secret_key).await;
        assert_ne!(dash.csrf, other.csrf, "each session has its own token");

        for token in ["", "forged", other.csrf.as_str()] {
            let refused = dash.post("/dashboard/users/john/suspend", &[("csrf", token)]).await;
            refused.assert_status(403);
            assert!(refused.text.contains("reload the page"), "{}", refused.text);
        }
        assert_eq!(app.get_user(&p, "john").await.body["suspended"], false);
        let done = dash.act("/dashboard/users/john/suspend", &[]).await;
        assert_redirect(&done, "/dashboard/users/john?notice=suspended");
        assert_eq!(app.get_user(&p, "john").await.body["suspended"], true);
        let page = dash.get("/dashboard/users/john?notice=suspended").await;
        assert!(page.text.contains("The user is suspended"), "{}", page.text);
        dash.act("/dashboard/users/john/resume", &[]).await.assert_status(303);
        assert_eq!(app.get_user(&p, "john").await.body["suspended"], false);

        // Erasing needs the typed confirmation too.
        let mismatch = dash.act("/dashboard/users/john/erase", &[("confirm", "jon")]).await;
        assert_redirect(&mismatch, "/dashboard/users/john?notice=erase-mismatch");
        app.get_user(&p, "john").await.assert_status(200);
        dash.post("/dashboard/users/john/erase", &[("csrf", "x"), ("confirm", "john")]).await.assert_status(403);
        let erased = dash.act("/dashboard/users/john/erase", &[("confirm", "john")]).await;
        assert_redirect(&erased, "/dashboard/users?notice=erased");
        app.get_user(&p, "john").await.assert_error(404, "user_not_found");
    }

    async fn a_projects_key_never_sees_another_projects_users(backend) {
        let app = TestApp::spawn(backend).await;
        let a = app.create_project().await;
        let b = app.create_project().await;
        app.put_user(&a, "alice", json!({"Email": "alice@a.example"})).await.assert_status(201);
        app.put_user(&b, "bob", json!({"Email": "bob@b.example"})).await.assert_status(201);
        let mut dash = Dash::new(&app);
        dash.login(&a.secret_key).await;
        let list = dash.get("/dashboard/users").await;
        assert!(list.text.contains("alice@a.example"));
        assert!(!list.text.contains("bob"), "{}", list.text);
        assert!(dash.get("/dashboard/users?q=bob").await.text.contains("No user matches"));
        dash.get("/dashboard/users/bob").await.assert_status(404);
        dash.act("/dashboard/users/bob/suspend", &[]).await.assert_status(404);
        assert_eq!(app.get_user(&b, "bob").await.body["suspended"], false);
        // A key's session cannot switch projects.
        assert_redirect(&dash.get("/dashboard/projects").await, "/dashboard/users");
        dash.act("/dashboard/projects", &[("project", b.id.as_str())]).await.assert_status(400);
        assert!(!dash.get("/dashboard/users").await.text.contains("bob"));

        // The admin picks a project, then sees that one only.
        let mut admin = Dash::new(&app);
        admin.login(&app.admin_token).await;
        assert_redirect(&admin.get("/dashboard/users").await, "/dashboard/projects");
        let projects = admin.get("/dashboard/projects").await;
        assert!(projects.text.contains(&a.id) && projects.text.contains(&b.id));
        assert_redirect(&admin.act("/dashboard/projects", &[("project", b.id.as_str())]).await, "/dashboard/users");
        let list = admin.get("/dashboard/users").await;
        assert!(list.text.contains("bob@b.example") && !list.text.contains("alice"));

        // Revoking the key ends the sessions it opened.
        let keys = app.send(Method::GET, &format!("/api/v1/projects/{}/secret-keys", a.id), Some(&a.secret_key), None).await;
        let key_id = keys.body["data"][0]["id"].as_str().unwrap().to_owned();
        let spare = app.send(Method::POST, &format!("/api/v1/projects/{}/secret-keys", a.id), Some(&a.secret_key), Some(&json!({"name": "spare"}))).await;
        let spare = spare.body["secretKey"].as_str().unwrap().to_owned();
        app.send(Method::DELETE, &format!("/api/v1/projects/{}/secret-keys/{key_id}", a.id), Some(&spare), None)
            .await
            .assert_status(204);
        assert_redirect(&dash.get("/dashboard/users").await, "/dashboard/login");
    }

    async fn sessions_expire(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let now = now_millis();
        let key = app.send(Method::GET, &format!("/api/v1/projects/{}/secret-keys", p.id), Some(&p.secret_key), None).await;
        let key_id = key.body["data"][0]["id"].as_str().unwrap().parse().unwrap();
        for (id, expires_at) in [("expired-id", now - 1), ("live-id", now + 60_000)] {
            app.store
                .insert_dashboard_session(&DashboardSession {
                    id_hash: plugboard_dashboard::session::hash_id(id),
                    principal: DashboardPrincipal::SecretKey {
                        project: plugboard_core::ProjectId::parse(&p.id).unwrap(),
                        key_id,
                    },
                    csrf_token: "t".into(),
                    created_at: now - 10_000,
                    expires_at,
                })
                .await
                .unwrap();
        }
        let mut dash = Dash::new(&app);
        dash.session = Some("expired-id".into());
        assert_redirect(&dash.get("/dashboard/users").await, "/dashboard/login");
        dash.session = Some("live-id".into());
        dash.get("/dashboard/users").await.assert_status(200);
    }

    async fn connected_users_search_filter_and_count(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let provider = FakeProvider::start().await;
        provider.configure(&app, &p, "crm", provider.oauth_definition()).await;
        for (id, name, email, plan) in [
            ("u1", "John Smith", "john@bookface.com", "pro"),
            ("u2", "Jane Doe", "jane@bookface.com", "free"),
            ("u3", "Ann Lee", "ann@other.example", "pro"),
        ] {
            app.put_user(&p, id, json!({"Name": name, "Email": email, "plan": plan, "apiKey": "k_secret_1"}))
                .await
                .assert_status(201);
        }
        app.connect_oauth(&p, "u1", "custom.crm", "s1", json!({}), "John").await;
        app.connect_oauth(&p, "u3", "custom.crm", "s3", json!({}), "Ann").await;
        // u3's connection goes bad.
        provider.sandbox.faults().revoke_all_refresh_tokens();
        provider.sandbox.expire_access_tokens();
        app.proxy(&p, &p.token("u3"), Method::GET, "custom.crm/me", &[], None).await.assert_error(409, "credential_invalid");

        let mut dash = Dash::new(&app);
        dash.login(&p.secret_key).await;
        let all = dash.get("/dashboard/users").await;
        assert!(all.text.contains("3 users match"), "{}", all.text);
        let john = dash.get("/dashboard/users?q=JOHN%40book").await;
        assert!(john.text.contains("1 user matches") && john.text.contains("/dashboard/users/u1"), "{}", john.text);
        assert!(!john.text.contains("u2"));
        let pro = dash.get("/dashboard/users?meta=plan%3Dpro").await;
        assert!(pro.text.contains("2 users match"), "{}", pro.text);
        let invalid = dash.get("/dashboard/users?credential=INVALID").await;
        assert!(invalid.text.contains("1 user matches") && invalid.text.contains("/dashboard/users/u3"), "{}", invalid.text);
        let crm = dash.get("/dashboard/users?integration=custom.crm&suspended=no").await;
        assert!(crm.text.contains("2 users match"), "{}", crm.text);
        let bad = dash.get("/dashboard/users?meta=plan").await;
        bad.assert_status(400);
        assert!(bad.text.contains("key=value"), "{}", bad.text);
        dash.get("/dashboard/users?integration=custom.nope").await.assert_status(400);
        dash.get("/dashboard/users?cursor=junk").await.assert_status(400);
        // Pages of 50: 60 more users make two pages.
        for i in 0..60 {
            app.put_user(&p, &format!("bulk-{i:02}"), json!({})).await.assert_status(201);
        }
        let first = dash.get("/dashboard/users").await;
        assert!(first.text.contains("63 users match"));
        let next = first.text.split("href=\"").find_map(|s| s.strip_prefix("?").filter(|s| s.contains("cursor="))).map(|s| s.split('"').next().unwrap().to_owned()).expect("a next-page link");
        let second = dash.get(&format!("/dashboard/users?{next}")).await;
        assert!(second.text.contains("/dashboard/users/u1") && !second.text.contains("bulk-59"), "{}", second.text);

        // The user's page: secrets masked, the integration's health and account id.
        let detail = dash.get("/dashboard/users/u3").await;
        detail.assert_status(200);
        assert!(!detail.text.contains("k_secret_1"), "metadata secrets are masked");
        assert!(detail.text.contains("INVALID") && detail.text.contains("Ann"), "{}", detail.text);
        dash.get("/dashboard/users/nobody").await.assert_status(404);

        // The management API's twin filters.
        let ids = app.list_user_ids(&p, &[("credentialStatus", "INVALID")]).await;
        assert_eq!(ids, ["u3"]);
        let ids = app.list_user_ids(&p, &[("integration", "custom.crm"), ("credentialStatus", "VALID")]).await;
        assert_eq!(ids, ["u1"]);
        app.list_users(&p, &[("credentialStatus", "BROKEN")]).await.assert_error(400, "invalid_filter");
        app.list_users(&p, &[("integration", "custom.nope")]).await.assert_error(404, "integration_not_found");

        let integrations = dash.get("/dashboard/integrations").await;
        integrations.assert_status(200);
        assert!(integrations.text.contains("custom.crm"));
        dash.get("/dashboard/executions?status=BROKEN").await.assert_status(400);
        dash.get("/dashboard/executions/not-a-uuid").await.assert_status(404);
        dash.get("/dashboard/nowhere").await.assert_status(404);
    }
}
