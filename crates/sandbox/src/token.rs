//! `POST /oauth/token` (RFC 6749) and `POST /oauth/revoke` (RFC 7009).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::client_auth::{authenticate_client, form_params};
use crate::oauth_error::OAuthError;
use crate::params::{Params, normalize_scope};
use crate::state::{Account, Code, RefreshToken, State as Store};
use crate::{Sandbox, pkce};

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    account: Account,
}

pub(crate) async fn token(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sandbox.lock().stats.token_requests_total += 1;
    let taken = sandbox.faults().take_token();
    if let Some(delay) = taken.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(fault) = taken.fault {
        return OAuthError::injected(fault).into_response();
    }
    match grant(&sandbox, &headers, &body) {
        Ok(response) => {
            let no_store = [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")];
            (no_store, Json(response)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// Revokes a token of the calling client; unknown tokens are fine (RFC 7009 §2.2).
pub(crate) async fn revoke(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = form_params(&headers, &body).and_then(|params| {
        let client_id = authenticate_client(&sandbox, &headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let mut state = sandbox.lock();
        state.revoke(&client_id, token);
        state.stats.revocations += 1;
        state.stats.revoked_tokens.push(token.to_owned());
        Ok(())
    });
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

fn grant(sandbox: &Sandbox, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, OAuthError> {
    let params = form_params(headers, body)?;
    let client_id = authenticate_client(sandbox, headers, &params)?;
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code(sandbox, &client_id, &params),
        Some("refresh_token") => refresh(sandbox, &client_id, &params),
        Some("client_credentials") => client_credentials(sandbox, &client_id, &params),
        Some(_) => Err(OAuthError::unsupported_grant_type()),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}

fn authorization_code(
    sandbox: &Sandbox,
    client_id: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let ttl = sandbox.settings().access_token_ttl;
    let mut state = sandbox.lock();
    let grant = redeem_code(&mut state, client_id, params)?;
    let family = state.new_family();
    let access_token = state.issue_access(client_id, &grant.account, Some(family), ttl);
    let refresh_token = state.issue_refresh(RefreshToken {
        client_id: client_id.to_owned(),
        account: grant.account.clone(),
        scope: grant.scope.clone(),
        family,
    });
    state.stats.authorization_code_grants += 1;
    let (scope, account) = (grant.scope, grant.account);
    let response = TokenResponse::new(sandbox, access_token, Some(refresh_token), scope, account);
    Ok(response)
}

/// Takes the code out of the store and checks it against the request. The code is spent by
/// its first use, right or wrong.
fn redeem_code(state: &mut Store, client_id: &str, params: &Params) -> Result<Code, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let grant = state
        .codes
        .remove(code)
        .ok_or_else(|| OAuthError::invalid_grant("unknown or already used code"))?;
    let problem = if Instant::now() >= grant.expires_at {
        Some("the code has expired")
    } else if grant.client_id != client_id {
        Some("the code was issued to another client")
    } else if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        Some("redirect_uri differs from the authorization request")
    } else {
        None
    };
    if let Some(description) = problem {
        return Err(OAuthError::invalid_grant(description));
    }
    check_verifier(grant.challenge.as_deref(), params.get("code_verifier"))?;
    Ok(grant)
}

/// A challenge needs a matching verifier; a verifier without a challenge is refused too
/// (RFC 9700 §2.1.1), so a client that believes it uses PKCE learns it does not.
fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier given but no code_challenge was",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(_), Some(v)) if !pkce::valid_verifier(v) => {
            Err(OAuthError::invalid_grant("code_verifier is malformed"))
        }
        (Some(c), Some(v)) if pkce::challenge_of(v) != c => {
            Err(OAuthError::invalid_grant("code_verifier does not match"))
        }
        (Some(_), Some(_)) => Ok(()),
    }
}

fn refresh(
    sandbox: &Sandbox,
    client_id: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let settings = sandbox.settings();
    let mut state = sandbox.lock();
    let grant = match state.refresh.get(token) {
        Some(grant) if grant.client_id == client_id => grant,
        _ => {
            return Err(OAuthError::invalid_grant(
                "unknown, revoked or rotated refresh token",
            ));
        }
    };
    let scope = narrowed_scope(&grant.scope, params.get("scope"))?;
    let (account, family) = (grant.account.clone(), grant.family);
    let access_token =
        state.issue_access(client_id, &account, Some(family), settings.access_token_ttl);
    let refresh_token = settings.rotate_refresh_tokens.then(|| {
        let old = state.refresh.remove(token).expect("looked up above");
        state.issue_refresh(old)
    });
    state.stats.refresh_grants += 1;
    Ok(TokenResponse::new(
        sandbox,
        access_token,
        refresh_token,
        scope,
        account,
    ))
}

/// A refresh may ask for fewer scopes than granted, never more (RFC 6749 §6).
fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_owned());
    };
    let granted: Vec<&str> = granted.split(' ').collect();
    let requested: Vec<&str> = requested.split_whitespace().collect();
    if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{extra}` was not granted"
        )));
    }
    Ok(requested.join(" "))
}

fn client_credentials(
    sandbox: &Sandbox,
    client_id: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let scope = normalize_scope(params.get("scope").unwrap_or_default());
    // The client acts for itself: its pseudo-account is `client_<id>`.
    let account = Account {
        id: format!("client_{client_id}"),
        name: client_id.to_owned(),
    };
    let ttl = sandbox.settings().access_token_ttl;
    let mut state = sandbox.lock();
    let access_token = state.issue_access(client_id, &account, None, ttl);
    state.stats.client_credentials_grants += 1;
    Ok(TokenResponse::new(
        sandbox,
        access_token,
        None,
        scope,
        account,
    ))
}

impl TokenResponse {
    fn new(
        sandbox: &Sandbox,
        access_token: String,
        refresh_token: Option<String>,
        scope: String,
        account: Account,
    ) -> Self {
        Self {
            access_token,
            token_type: "Bearer",
            expires_in: sandbox.settings().access_token_ttl.as_secs(),
            refresh_token,
            scope,
            account,
        }
    }
}
