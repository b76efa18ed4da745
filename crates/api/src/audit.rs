//! The audit log of the management API: [`layer`] records every authenticated mutating
//! call under `/api/v1/projects/{projectId}/`, and `GET …/audit` lists the entries.
//!
//! An entry holds digests of the target's state, never bodies: the state is the body of a
//! GET on the same path (its "twin"), issued through the router before and after the
//! mutation; a route without a GET twin has the mutation's own 2xx answer as its after
//! state.

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, MatchedPath, RawQuery, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, middleware};
use plugboard_core::AuditEntry;
use plugboard_service::audit::{AuditQuery, NewAuditEntry, digest};
use serde::Serialize;
use tower::ServiceExt;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Actor, ProjectAdmin};
use crate::wire::timestamp;

const PREFIX: &str = "/api/v1/projects/";
/// Largest body digested; a larger state has no digest.
const MAX_DIGESTED_BYTES: u64 = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/projects/{projectId}/audit", get(list))
}

/// Wraps `routes` (the whole application, state not yet given) in the recording
/// middleware; GET twins go through `routes` itself, so they are neither recorded nor
/// counted in the metrics.
pub fn layer(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let recorder = Recorder {
        state: state.clone(),
        twin: routes.clone().with_state(state.clone()),
    };
    routes.layer(middleware::from_fn_with_state(recorder, record))
}

#[derive(Clone)]
pub struct Recorder {
    state: AppState,
    twin: Router,
}

async fn record(State(recorder): State<Recorder>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str());
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(route) = route
        .filter(|r| mutating && r.starts_with(PREFIX))
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let Ok(auth) = ProjectAdmin::from_request_parts(&mut parts, &recorder.state).await else {
        // The handler refuses it again; failed authentications are not recorded.
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The handler's extractor takes this instead of authenticating again.
    parts.extensions.insert(auth.clone());
    let path = parts.uri.path().to_owned();
    let authorization = parts.headers.get(AUTHORIZATION).cloned();
    // A catch-all route (the proxy) reaches a third party: no GET there, no buffering.
    let has_state = !route.contains("{*");
    let before = match has_state {
        true => recorder.twin(&path, &authorization, &auth).await,
        false => Twin::Missing,
    };
    let action = format!("{} {route}", parts.method);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let after = match has_state {
        true => match recorder.twin(&path, &authorization, &auth).await {
            Twin::Missing if status.is_success() => {
                let (buffered, digest) = digest_body(response).await;
                response = buffered;
                digest
            }
            Twin::Missing => None,
            Twin::State(digest) => digest,
        },
        false => None,
    };
    let entry = NewAuditEntry {
        actor: match auth.actor {
            Actor::Admin => "admin".to_owned(),
            Actor::SecretKey(id) => format!("key:{id}"),
        },
        action,
        target: target(&path),
        before_digest: before.digest(),
        after_digest: after,
        status: status.as_u16(),
    };
    if let Err(error) = recorder
        .state
        .services
        .audit
        .record(auth.project, entry)
        .await
    {
        tracing::error!(%error, "could not write an audit entry");
    }
    response
}

enum Twin {
    /// The route has no GET.
    Missing,
    /// The GET's digest when it answered 200 with a body.
    State(Option<String>),
}

impl Twin {
    fn digest(self) -> Option<String> {
        match self {
            Twin::Missing => None,
            Twin::State(digest) => digest,
        }
    }
}

impl Recorder {
    async fn twin(
        &self,
        path: &str,
        authorization: &Option<HeaderValue>,
        auth: &ProjectAdmin,
    ) -> Twin {
        let Ok(mut request) = Request::get(path).body(Body::empty()) else {
            return Twin::State(None);
        };
        if let Some(value) = authorization {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        request.extensions_mut().insert(auth.clone());
        let Ok(response) = self.twin.clone().oneshot(request).await;
        match response.status() {
            // Routing is by path first: the same path reaches the same route, whose
            // method router answers 405 when it has no GET.
            StatusCode::METHOD_NOT_ALLOWED => Twin::Missing,
            StatusCode::OK => Twin::State(digest_body(response).await.1),
            _ => Twin::State(None),
        }
    }
}

/// Buffers a body of known length up to [`MAX_DIGESTED_BYTES`] and digests it; gives the
/// response back unchanged (streaming bodies are not touched).
async fn digest_body(response: Response) -> (Response, Option<String>) {
    let (parts, body) = response.into_parts();
    match body.size_hint().exact() {
        Some(len) if len > 0 && len <= MAX_DIGESTED_BYTES => {
            match axum::body::to_bytes(body, MAX_DIGESTED_BYTES as usize).await {
                Ok(bytes) => {
                    let digest = digest(&bytes);
                    (Response::from_parts(parts, Body::from(bytes)), Some(digest))
                }
                Err(error) => {
                    tracing::error!(%error, "could not read a body to digest");
                    (Response::from_parts(parts, Body::empty()), None)
                }
            }
        }
        _ => (Response::from_parts(parts, body), None),
    }
}

/// The path after `/api/v1/projects/{projectId}/`, each segment percent-decoded.
fn target(path: &str) -> String {
    let rest = path
        .strip_prefix(PREFIX)
        .and_then(|p| p.split_once('/'))
        .map_or("", |(_, rest)| rest);
    rest.split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// One recorded action.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub id: Uuid,
    /// When it was answered, RFC 3339 in UTC with milliseconds.
    pub at: String,
    /// `key:<secret key id>`, `admin`, `dashboard:key:<id>` or `dashboard:admin`.
    pub actor: String,
    /// `METHOD <route template>`, or `dashboard: <what>` for the dashboard's forms.
    pub action: String,
    /// The path after `/api/v1/projects/{projectId}/`, e.g. `users/u-1`.
    pub target: String,
    /// SHA-256 (hex) of the target's state before the action, when it had one.
    pub before_digest: Option<String>,
    /// SHA-256 (hex) of the target's state after the action, when it has one.
    pub after_digest: Option<String>,
    /// The HTTP status the action was answered with.
    pub status: i32,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: timestamp(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            before_digest: e.before_digest,
            after_digest: e.after_digest,
            status: e.status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPageView {
    pub entries: Vec<AuditEntryView>,
    /// Pass back as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// The project's audit log, newest first: `since` (inclusive) and `until` (exclusive) as
/// RFC 3339 or Unix milliseconds, `actor` (exact), `target` (prefix), `limit` (1–200,
/// default 50) and `cursor`.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/audit", tag = "audit",
    params(
        ("projectId" = String, Path),
        ("since" = Option<String>, Query, description = "Inclusive: RFC 3339 or Unix milliseconds"),
        ("until" = Option<String>, Query, description = "Exclusive: RFC 3339 or Unix milliseconds"),
        ("actor" = Option<String>, Query, description = "Exact actor, e.g. `admin`"),
        ("target" = Option<String>, Query, description = "Target prefix, e.g. `users/u-1`"),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`"),
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
    ),
    responses(
        (status = 200, body = AuditPageView),
        (status = 400, description = "`invalid_filter`, `invalid_cursor`", body = ErrorBody),
    ),
    security(("secretKey" = []), ("adminToken" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<AuditPageView>> {
    let mut query = AuditQuery::default();
    for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "since" => &mut query.since,
            "until" => &mut query.until,
            "actor" => &mut query.actor,
            "target" => &mut query.target,
            "cursor" => &mut query.cursor,
            "limit" => &mut query.limit,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    let page = state.services.audit.list(auth.project, &query).await?;
    Ok(Json(AuditPageView {
        entries: page.entries.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_path_after_the_project() {
        let p = "/api/v1/projects/0190c0de-0000-7000-8000-000000000000";
        assert_eq!(target(&format!("{p}/users/u-1/meta")), "users/u-1/meta");
        assert_eq!(target(&format!("{p}/users/a%40b.c")), "users/a@b.c");
        assert_eq!(target(&format!("{p}/env")), "env");
    }
}
