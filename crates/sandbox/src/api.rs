//! The tiny bearer-protected API under `/api`.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::Sandbox;
use crate::faults::ApiFault;
use crate::state::Account;

/// Runs before every API route: counts the request, applies queued faults (before the token is
/// even looked at), then requires a live bearer token and hands its account to the handler.
pub(crate) async fn guard(
    State(sandbox): State<Sandbox>,
    mut request: Request,
    next: Next,
) -> Response {
    sandbox.lock().stats.api_requests += 1;
    let taken = sandbox.faults().take_api();
    if let Some(delay) = taken.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(fault) = taken.fault {
        return fault_response(fault);
    }
    let Some(account) =
        bearer_token(request.headers()).and_then(|t| sandbox.lock().access_account(t))
    else {
        return unauthorized("missing, unknown, expired or revoked access token");
    };
    request.extensions_mut().insert(account);
    next.run(request).await
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn fault_response(fault: ApiFault) -> Response {
    match fault {
        ApiFault::Unauthorized => unauthorized("injected failure"),
        ApiFault::RateLimited { retry_after_secs } => {
            let body = json!({"error": "rate_limited", "error_description": "injected failure"});
            let retry_after = [(RETRY_AFTER, HeaderValue::from(retry_after_secs))];
            (StatusCode::TOO_MANY_REQUESTS, retry_after, Json(body)).into_response()
        }
    }
}

/// 401 as RFC 6750 §3 describes it.
fn unauthorized(description: &str) -> Response {
    let challenge = format!(
        "Bearer realm=\"sandbox\", error=\"invalid_token\", error_description=\"{description}\""
    );
    let body = json!({"error": "invalid_token", "error_description": description});
    let headers = [(WWW_AUTHENTICATE, challenge)];
    (StatusCode::UNAUTHORIZED, headers, Json(body)).into_response()
}

/// `GET /api/me`: the token's account.
pub(crate) async fn me(Extension(account): Extension<Account>) -> Json<Account> {
    Json(account)
}

/// `ANY /api/echo[/…]`: describes the request as received, for testing a proxy.
/// `path` is the full path the server saw (mount prefix included); `query` the raw query string.
pub(crate) async fn echo(
    Extension(account): Extension<Account>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or_default(),
        "headers": echoed_headers(&headers),
        "body": echoed_body(&body),
        "account": account.id,
    }))
}

/// Header names (lowercase already) to values, repeated headers joined by ", ".
fn echoed_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut echoed = Map::new();
    for name in headers.keys().filter(|name| *name != AUTHORIZATION) {
        let values: Vec<_> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        echoed.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    echoed
}

/// The body as JSON when it parses as JSON, else as text; `null` when empty.
fn echoed_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// `GET /api/contacts`: the account's contacts, `{"contacts": [{id, name, email}]}`.
pub(crate) async fn list_contacts(
    State(sandbox): State<Sandbox>,
    Extension(account): Extension<Account>,
) -> Json<Value> {
    Json(json!({"contacts": sandbox.lock().contacts(&account.id)}))
}

#[derive(Deserialize)]
struct NewContact {
    name: String,
    email: String,
}

/// `POST /api/contacts` with `{name, email}`: 201 and the stored contact.
pub(crate) async fn add_contact(
    State(sandbox): State<Sandbox>,
    Extension(account): Extension<Account>,
    body: Bytes,
) -> Response {
    let new = match serde_json::from_slice::<NewContact>(&body) {
        Ok(new) if !new.name.trim().is_empty() && new.email.contains('@') => new,
        Ok(_) => return bad_request("name must not be empty and email must contain @"),
        Err(error) => return bad_request(&format!("expected JSON {{name, email}}: {error}")),
    };
    let contact = sandbox.lock().add_contact(&account.id, new.name, new.email);
    (StatusCode::CREATED, Json(contact)).into_response()
}

fn bad_request(description: &str) -> Response {
    let body = json!({"error": "invalid_request", "error_description": description});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `GET /api/text`: a plain-text answer, to test non-JSON passthrough.
pub(crate) async fn text() -> impl IntoResponse {
    let content_type = [(CONTENT_TYPE, "text/plain; charset=utf-8")];
    (content_type, "hello from the sandbox")
}
