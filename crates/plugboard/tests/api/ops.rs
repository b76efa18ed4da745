//! CORS for the browser SDK, and the operations endpoints.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

const REQUESTED_HEADERS: &str =
    "authorization,content-type,x-paragon-sdk-version,x-paragon-credential";

backend_tests! {
    async fn cors_preflight_allows_the_sdk_from_any_origin(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let url = app.url(&format!("/projects/{}/sdk/me", p.id));
        let preflight = app
            .client
            .request(Method::OPTIONS, &url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", REQUESTED_HEADERS);
        let pre = answer(preflight).await;
        assert!(pre.status.is_success(), "{} {:?} {}", pre.status, pre.headers, pre.text);
        assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
        let methods = pre.header("access-control-allow-methods").unwrap_or("").to_ascii_lowercase();
        assert!(methods.contains("patch"), "{methods}");
        let allowed = pre.header("access-control-allow-headers").unwrap_or("").to_ascii_lowercase();
        for header in REQUESTED_HEADERS.split(',') {
            assert!(allowed.contains(header), "{header} not in {allowed}");
        }
    }

    async fn cors_headers_are_on_every_sdk_answer(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        let origin = "https://app.example.com";
        for (path, token, status) in [
            ("me", Some(p.token("u1")), 200),
            ("integrations", Some(p.token("u1")), 200),
            ("me", None, 401),
        ] {
            let url = app.url(&format!("/projects/{}/sdk/{path}", p.id));
            let mut request = app.client.get(&url).header("origin", origin);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let got = answer(request).await;
            got.assert_status(status);
            assert_eq!(got.header("access-control-allow-origin"), Some("*"), "{path}: {:?}", got.headers);
        }
    }

    async fn browsers_read_missing_sdk_routes_and_load_the_portal_frame(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        // Not implemented (the SDK's getFieldOptions): a JSON 404 the page may read,
        // preflight included.
        let url = app.url(&format!("/projects/{}/sdk/actions", p.id));
        let preflight = app
            .client
            .request(Method::OPTIONS, &url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", REQUESTED_HEADERS);
        let pre = answer(preflight).await;
        assert!(pre.status.is_success(), "{} {}", pre.status, pre.text);
        assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
        let missing = answer(app.client.post(&url).header("origin", "https://app.example.com")).await;
        missing.assert_error(404, "route_not_found");
        assert_eq!(missing.header("access-control-allow-origin"), Some("*"));

        // CONNECT/ui: the SDK's hidden iframe, which any app may frame.
        let frame = app.get("/ui?projectId=x").await;
        frame.assert_status(200);
        assert!(frame.header("content-type").unwrap().starts_with("text/html"));
        let csp = frame.header("content-security-policy").unwrap();
        assert!(!csp.contains("frame-ancestors"), "{csp}");
    }

    async fn health_and_readiness(backend) {
        let app = TestApp::spawn(backend).await;
        let health = app.get("/healthz").await;
        health.assert_status(200);
        assert_eq!(health.body, json!({"status": "ok"}));
        let ready = app.get("/readyz").await;
        ready.assert_status(200);
        assert_eq!(ready.body, json!({"status": "ready"}));
    }

    async fn metrics_count_requests_by_route(backend) {
        let app = TestApp::spawn(backend).await;
        let p = app.create_project().await;
        app.get_me(&p, &p.token("u1")).await.assert_status(200);
        app.get_me(&p, "junk").await.assert_status(401);
        app.get("/no/such/route-0123456789").await.assert_status(404);
        let metrics = app.get("/metrics").await;
        metrics.assert_status(200);
        let count = |route: &str, status: u16| -> u64 {
            metrics
                .text
                .lines()
                .filter(|l| l.starts_with("plugboard_http_requests_total{"))
                .filter(|l| l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("status=\"{status}\"")))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
                .sum()
        };
        assert_eq!(count("/projects/{projectId}/sdk/me", 200), 1, "{}", metrics.text);
        assert_eq!(count("/projects/{projectId}/sdk/me", 401), 1, "{}", metrics.text);
        assert_eq!(count("/api/v1/projects", 201), 1, "{}", metrics.text);
        // Unknown paths do not become labels.
        assert!(!metrics.text.contains("0123456789"), "{}", metrics.text);
        assert!(!metrics.text.contains(&p.id), "project ids are not labels");
    }

    async fn openapi_document_describes_the_api(backend) {
        let app = TestApp::spawn(backend).await;
        let doc = app.get("/openapi.json").await;
        doc.assert_status(200);
        let version = doc.body["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1"), "{version}");
        let paths = doc.body["paths"].as_object().expect("paths");
        for path in [
            "/projects/{projectId}/sdk/me",
            "/projects/{projectId}/sdk/integrations",
            "/api/v1/projects",
            "/api/v1/projects/{projectId}/users",
            "/api/v1/projects/{projectId}/users/{userId}",
        ] {
            assert!(paths.contains_key(path), "{path} missing: {:?}", paths.keys());
        }
        assert!(paths["/projects/{projectId}/sdk/me"].get("patch").is_some());
    }
}
