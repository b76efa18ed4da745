//! `GET /oauth/authorize` (consent page) and `POST /oauth/authorize` (the user's decision).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::html::{self, Consent};
use crate::params::{Params, normalize_scope};
use crate::state::Code;
use crate::{Sandbox, SandboxClient, pkce};

const CODE_TTL: Duration = Duration::from_secs(60);
const DEFAULT_ACCOUNT: &str = "Sandbox User";
const MAX_ACCOUNT_NAME: usize = 100;

/// The parameters the consent form posts back.
const FORWARDED: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// A validated authorization request.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    challenge: Option<String>,
}

/// Why a request is refused: before the redirect URI is trusted, on a page; after, by redirect.
enum Refusal {
    Page(String),
    /// The `Location` to redirect to.
    Redirect(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(message) => html::error_page(&message),
            Refusal::Redirect(location) => found(location),
        }
    }
}

/// Shows the consent page, or with `auto_approve` redirects at once with a code
/// (the account is then named by `login_hint`, default "Sandbox User").
pub(crate) async fn show(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let (params, request) = match parse_and_validate(&sandbox, query.as_bytes()) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    if sandbox.settings().auto_approve {
        return approve(&sandbox, &request, params.get("login_hint"));
    }
    let hidden = params
        .iter()
        .filter(|(k, _)| FORWARDED.contains(k))
        .collect();
    html::consent_page(&Consent {
        client_id: &request.client_id,
        redirect_uri: &request.redirect_uri,
        scopes: &request.scope,
        hidden,
    })
}

/// Handles the consent form. Every parameter is checked again: hidden fields prove nothing.
pub(crate) async fn decide(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let (params, request) = match parse_and_validate(&sandbox, &body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    match params.get("decision") {
        Some("allow") => approve(&sandbox, &request, params.get("account_name")),
        Some("deny") => request.refuse("access_denied", "the user denied access"),
        _ => request.refuse("invalid_request", "decision must be allow or deny"),
    }
}

fn parse_and_validate(sandbox: &Sandbox, input: &[u8]) -> Result<(Params, AuthRequest), Refusal> {
    let params = Params::parse(input).map_err(Refusal::Page)?;
    let request = validate(sandbox, &params)?;
    Ok((params, request))
}

fn validate(sandbox: &Sandbox, params: &Params) -> Result<AuthRequest, Refusal> {
    let (client_id, redirect_uri) = check_client(sandbox, params).map_err(Refusal::Page)?;
    let request = AuthRequest {
        client_id,
        redirect_uri,
        scope: normalize_scope(params.get("scope").unwrap_or_default()),
        state: params.get("state").map(str::to_owned),
        challenge: None,
    };
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => return Err(request.refusal("unsupported_response_type", "only `code`")),
        None => return Err(request.refusal("invalid_request", "response_type is required")),
    }
    match check_pkce(params) {
        Ok(challenge) => Ok(AuthRequest {
            challenge,
            ..request
        }),
        Err(description) => Err(request.refusal("invalid_request", description)),
    }
}

/// The client and its redirect URI, or why the request cannot even be redirected.
fn check_client(sandbox: &Sandbox, params: &Params) -> Result<(String, String), String> {
    let client_id = params.get("client_id").ok_or("client_id is required")?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or("redirect_uri is required")?;
    let state = sandbox.lock();
    let Some(client) = state.clients.get(client_id) else {
        return Err(format!("Unknown client `{client_id}`."));
    };
    if !redirect_allowed(client, redirect_uri) {
        return Err(format!(
            "redirect_uri `{redirect_uri}` is not registered for client `{client_id}`."
        ));
    }
    Ok((client_id.to_owned(), redirect_uri.to_owned()))
}

/// Exact match against the registered URIs; with none registered, any absolute `http(s)`
/// URI without a fragment (RFC 6749 §3.1.2).
fn redirect_allowed(client: &SandboxClient, uri: &str) -> bool {
    if !client.redirect_uris.is_empty() {
        return client.redirect_uris.iter().any(|r| r == uri);
    }
    Url::parse(uri).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.has_host() && url.fragment().is_none()
    })
}

fn check_pkce(params: &Params) -> Result<Option<String>, &'static str> {
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method given without code_challenge"),
        (Some(_), method) if method != Some("S256") => {
            Err("code_challenge_method must be S256 (plain is not accepted)")
        }
        (Some(c), _) if !pkce::valid_challenge(c) => Err("code_challenge is not an S256 digest"),
        (Some(c), _) => Ok(Some(c.to_owned())),
    }
}

fn approve(sandbox: &Sandbox, request: &AuthRequest, account_name: Option<&str>) -> Response {
    let name = account_name_or_default(account_name);
    let code = {
        let mut state = sandbox.lock();
        let account = state.account_named(&name);
        state.new_code(Code {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            challenge: request.challenge.clone(),
            scope: request.scope.clone(),
            account,
            expires_at: Instant::now() + CODE_TTL,
        })
    };
    request.redirect(&[("code", &code)])
}

fn account_name_or_default(name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let name = name.unwrap_or(DEFAULT_ACCOUNT);
    name.chars().take(MAX_ACCOUNT_NAME).collect()
}

impl AuthRequest {
    fn refusal(&self, error: &str, description: &str) -> Refusal {
        self.location(&[("error", error), ("error_description", description)])
            .map_or_else(Refusal::Page, Refusal::Redirect)
    }

    fn refuse(&self, error: &str, description: &str) -> Response {
        self.refusal(error, description).into_response()
    }

    fn redirect(&self, pairs: &[(&str, &str)]) -> Response {
        match self.location(pairs) {
            Ok(location) => found(location),
            Err(message) => html::error_page(&message),
        }
    }

    /// The redirect URI with `pairs` and `state` added to its query.
    fn location(&self, pairs: &[(&str, &str)]) -> Result<String, String> {
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            return Err("The registered redirect_uri is not a valid URL.".to_owned());
        };
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(pairs);
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
        }
        Ok(url.into())
    }
}

fn found(location: String) -> Response {
    let headers = [(LOCATION, location), (CACHE_CONTROL, "no-store".to_owned())];
    (StatusCode::FOUND, headers).into_response()
}
