//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3.1).

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Sandbox;
use crate::oauth_error::OAuthError;
use crate::params::{Params, form_decode};

/// The form body of a token or revocation request.
pub(crate) fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let is_form = content_type.is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        let description = "the body must be application/x-www-form-urlencoded";
        return Err(OAuthError::invalid_request(description));
    }
    Params::parse(body).map_err(OAuthError::invalid_request)
}

/// Authenticates the client by HTTP Basic or by `client_id`/`client_secret` in the body
/// (an empty registered secret makes a public client), and returns its id.
pub(crate) fn authenticate_client(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    params: &Params,
) -> Result<String, OAuthError> {
    let (id, secret) = match basic_credentials(headers)? {
        Some(basic) => {
            if params.get("client_secret").is_some() {
                let description = "use one client authentication method, not two";
                return Err(OAuthError::invalid_request(description));
            }
            if params.get("client_id").is_some_and(|id| id != basic.0) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            basic
        }
        None => {
            let id = params
                .get("client_id")
                .ok_or_else(OAuthError::invalid_client)?;
            (
                id.to_owned(),
                params.get("client_secret").unwrap_or_default().to_owned(),
            )
        }
    };
    let state = sandbox.lock();
    let client = state
        .clients
        .get(&id)
        .ok_or_else(OAuthError::invalid_client)?;
    if !same_secret(&client.secret, &secret) {
        return Err(OAuthError::invalid_client());
    }
    Ok(id)
}

/// `Authorization: Basic` credentials, form-decoded (RFC 6749 §2.3.1), if that header is used.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

/// Compares without stopping at the first difference, as a secret comparison should.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
