//! Talking OAuth 2.0 to providers: the authorization URL, the code exchange (with PKCE),
//! refresh, client credentials and RFC 7009 revocation.
//!
//! Written over `reqwest` rather than the `oauth2` crate: providers answer in ways its
//! typed responses reject (Slack's `200 {"ok": false}`, a missing `token_type`, fields a
//! connection needs such as Salesforce's `instance_url`), and Plugboard must tell a
//! permanent refusal (`invalid_grant`) from a transient one (5xx, 429 with `Retry-After`),
//! which needs the status and headers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::catalog::{
    AuthSpec, ProviderSpec, RenderError, TemplateValues, TokenEndpointAuth, UrlTemplate,
};

/// Errors OAuth providers send that mean "this grant will never work again".
const PERMANENT_ERRORS: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    // Slack's spelling of a dead refresh token or code.
    "invalid_refresh_token",
    "invalid_code",
    "token_revoked",
];

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The provider answered with an OAuth error (`invalid_grant`, `invalid_client`…).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    #[error("the provider is rate limiting requests")]
    RateLimited { retry_after: Option<Duration> },
    /// A 5xx, a timeout or a network failure: worth trying again later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the provider's answer is not usable: {0}")]
    BadResponse(String),
    #[error("cannot build the provider URL: {0}")]
    Url(#[from] RenderError),
    #[error("this integration does not use OAuth")]
    NotOAuth,
}

impl OAuthError {
    /// Whether retrying the same grant can never succeed (the user must reconnect).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Rejected { error, .. } => PERMANENT_ERRORS.contains(&error.as_str()),
            Self::NotOAuth | Self::Url(_) => true,
            _ => false,
        }
    }

    /// How long the provider asked callers to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// The project's OAuth app at the provider.
#[derive(Clone, Copy)]
pub struct OAuthApp<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
}

impl fmt::Debug for OAuthApp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A PKCE pair (RFC 7636, `S256`). The verifier stays on the server, sealed.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        Self {
            challenge: Self::challenge_for(&verifier),
            verifier,
        }
    }

    pub fn challenge_for(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }
}

/// Tokens as a provider issued them. `Debug` never shows them.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Milliseconds since the epoch, from `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Every other field of the token response (Salesforce's `instance_url`, Slack's
    /// `team`…), for `{token.*}` placeholders and the account id. Token-bearing fields
    /// (`id_token`, Slack's `authed_user.access_token`…) are kept only sealed, like the
    /// rest of this value.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// The token response fields as one JSON value, for templates.
    pub fn fields_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    fn from_response(mut body: Map<String, Value>, now_ms: i64) -> Result<Self, OAuthError> {
        let access_token = match body.remove("access_token") {
            Some(Value::String(token)) if !token.is_empty() => token,
            _ => {
                return Err(OAuthError::BadResponse(
                    "the token response has no access_token".into(),
                ));
            }
        };
        let refresh_token = match body.remove("refresh_token") {
            Some(Value::String(token)) if !token.is_empty() => Some(token),
            _ => None,
        };
        let expires_in = match body.get("expires_in") {
            Some(Value::Number(n)) => n.as_f64(),
            // Some providers send it as a string.
            Some(Value::String(s)) => s.parse::<f64>().ok(),
            _ => None,
        };
        let expires_at = expires_in
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .map(|secs| now_ms + (secs * 1000.0) as i64);
        Ok(Self {
            access_token,
            refresh_token,
            expires_at,
            fields: body,
        })
    }
}

/// The pieces of an authorization request.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub scopes: &'a [String],
    pub pkce_challenge: Option<&'a str>,
    pub inputs: &'a BTreeMap<String, String>,
}

impl ProviderSpec {
    /// Where to send the user to grant access.
    pub fn authorization_url(
        &self,
        app: OAuthApp<'_>,
        request: AuthorizationRequest<'_>,
    ) -> Result<Url, OAuthError> {
        let AuthSpec::Oauth2(oauth) = &self.auth else {
            return Err(OAuthError::NotOAuth);
        };
        let mut url = self.render_url_with(
            &oauth.authorization_url,
            &TemplateValues {
                inputs: Some(request.inputs),
                ..TemplateValues::default()
            },
        )?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", app.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("state", request.state);
            if !request.scopes.is_empty() {
                query.append_pair("scope", &oauth.scope_separator.join(request.scopes));
            }
            if let Some(challenge) = request.pkce_challenge {
                query
                    .append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &oauth.extra_authorization_params {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }
}

/// What a token request asks for.
enum Grant<'a> {
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        verifier: Option<&'a str>,
    },
    Refresh {
        refresh_token: &'a str,
    },
    ClientCredentials {
        scopes: &'a [String],
    },
}

/// An HTTP client for provider endpoints, with a bounded time per request.
#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
}

impl ProviderClient {
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // Token endpoints never legitimately redirect; following one could leak the
            // code or client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plugboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings builds");
        Self { http }
    }

    /// The underlying client, for API calls made with a connection's credentials.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Trades an authorization code for tokens.
    pub async fn exchange_code(
        &self,
        spec: &ProviderSpec,
        app: OAuthApp<'_>,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        inputs: &BTreeMap<String, String>,
    ) -> Result<TokenSet, OAuthError> {
        let grant = Grant::AuthorizationCode {
            code,
            redirect_uri,
            verifier,
        };
        self.token_request(spec, app, grant, inputs, None).await
    }

    /// Trades a refresh token for new tokens. A provider that does not rotate refresh
    /// tokens answers without one: the old one is kept.
    pub async fn refresh(
        &self,
        spec: &ProviderSpec,
        app: OAuthApp<'_>,
        current: &TokenSet,
        inputs: &BTreeMap<String, String>,
    ) -> Result<TokenSet, OAuthError> {
        let refresh_token =
            current
                .refresh_token
                .as_deref()
                .ok_or_else(|| OAuthError::Rejected {
                    error: "invalid_grant".into(),
                    description: Some("the connection has no refresh token".into()),
                })?;
        let grant = Grant::Refresh { refresh_token };
        let fields = current.fields_value();
        let mut tokens = self
            .token_request(spec, app, grant, inputs, Some(&fields))
            .await?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = current.refresh_token.clone();
        }
        // Keep facts only the first response carried (Salesforce's instance_url).
        for (name, value) in &current.fields {
            tokens
                .fields
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        Ok(tokens)
    }

    /// Mints a token with the app's own credentials (client credentials grant).
    pub async fn client_credentials(
        &self,
        spec: &ProviderSpec,
        app: OAuthApp<'_>,
        scopes: &[String],
        inputs: &BTreeMap<String, String>,
    ) -> Result<TokenSet, OAuthError> {
        self.token_request(spec, app, Grant::ClientCredentials { scopes }, inputs, None)
            .await
    }

    /// Revokes a token (RFC 7009). `Ok(false)` when the provider has no revocation
    /// endpoint.
    pub async fn revoke(
        &self,
        spec: &ProviderSpec,
        app: OAuthApp<'_>,
        token: &str,
        token_type_hint: &str,
        tokens: &TokenSet,
        inputs: &BTreeMap<String, String>,
    ) -> Result<bool, OAuthError> {
        let (template, auth) = match &spec.auth {
            AuthSpec::Oauth2(o) => (o.revocation_url.as_ref(), o.token_endpoint_auth),
            AuthSpec::Oauth2ClientCredentials(o) => {
                (o.revocation_url.as_ref(), o.token_endpoint_auth)
            }
            _ => return Err(OAuthError::NotOAuth),
        };
        let Some(template) = template else {
            return Ok(false);
        };
        let fields = tokens.fields_value();
        let url = render(spec, template, inputs, Some(&fields))?;
        let mut form = vec![("token", token), ("token_type_hint", token_type_hint)];
        let request = with_client_auth(self.http.post(url), app, auth, &mut form);
        let response = request.form(&form).send().await.map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(error_from_response(status.as_u16(), &headers, &body))
    }

    async fn token_request(
        &self,
        spec: &ProviderSpec,
        app: OAuthApp<'_>,
        grant: Grant<'_>,
        inputs: &BTreeMap<String, String>,
        token_fields: Option<&Value>,
    ) -> Result<TokenSet, OAuthError> {
        let (template, auth, separator) = match &spec.auth {
            AuthSpec::Oauth2(o) => (&o.token_url, o.token_endpoint_auth, o.scope_separator),
            AuthSpec::Oauth2ClientCredentials(o) => {
                (&o.token_url, o.token_endpoint_auth, o.scope_separator)
            }
            _ => return Err(OAuthError::NotOAuth),
        };
        let url = render(spec, template, inputs, token_fields)?;
        let joined_scopes;
        let mut form: Vec<(&str, &str)> = Vec::new();
        match grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                form.extend([
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                ]);
                if let Some(verifier) = verifier {
                    form.push(("code_verifier", verifier));
                }
            }
            Grant::Refresh { refresh_token } => {
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ]);
            }
            Grant::ClientCredentials { scopes } => {
                form.push(("grant_type", "client_credentials"));
                if !scopes.is_empty() {
                    joined_scopes = separator.join(scopes);
                    form.push(("scope", &joined_scopes));
                }
            }
        }
        let request = with_client_auth(self.http.post(url), app, auth, &mut form);
        let response = request
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        if !(200..300).contains(&status) {
            return Err(error_from_response(status, &headers, &body));
        }
        let document = parse_token_body(&headers, &body)?;
        // Slack answers errors with 200 and `"ok": false`.
        if document.get("ok") == Some(&Value::Bool(false)) || document.contains_key("error") {
            return Err(rejected_from(&document));
        }
        TokenSet::from_response(document, now_ms())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn render(
    spec: &ProviderSpec,
    template: &UrlTemplate,
    inputs: &BTreeMap<String, String>,
    token_fields: Option<&Value>,
) -> Result<Url, OAuthError> {
    Ok(spec.render_url_with(
        template,
        &TemplateValues {
            inputs: Some(inputs),
            token: token_fields,
            ..TemplateValues::default()
        },
    )?)
}

/// Adds the client's credentials the way the provider wants them (RFC 6749 §2.3.1).
fn with_client_auth<'a>(
    request: reqwest::RequestBuilder,
    app: OAuthApp<'a>,
    auth: TokenEndpointAuth,
    form: &mut Vec<(&'a str, &'a str)>,
) -> reqwest::RequestBuilder {
    match auth {
        TokenEndpointAuth::ClientSecretBasic => request.basic_auth(
            form_urlencode(app.client_id),
            app.client_secret.map(form_urlencode),
        ),
        TokenEndpointAuth::ClientSecretPost => {
            form.push(("client_id", app.client_id));
            if let Some(secret) = app.client_secret {
                form.push(("client_secret", secret));
            }
            request
        }
    }
}

/// RFC 6749 §2.3.1 asks for the id and secret to be form-encoded before Basic encoding.
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn transport_error(e: reqwest::Error) -> OAuthError {
    // reqwest's message includes the URL, never the form body, so no secret leaks.
    OAuthError::Unavailable(e.without_url().to_string())
}

fn parse_token_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, OAuthError> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return Ok(map);
    }
    // A few providers (GitHub without `Accept`) answer form-encoded.
    let is_form = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Ok(url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    Err(OAuthError::BadResponse(
        "the token response is not a JSON object".into(),
    ))
}

fn rejected_from(document: &Map<String, Value>) -> OAuthError {
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    OAuthError::Rejected {
        error: text("error").unwrap_or_else(|| "unknown_error".into()),
        description: text("error_description").map(|d| d.chars().take(300).collect()),
    }
}

fn error_from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> OAuthError {
    if status == 429 {
        return OAuthError::RateLimited {
            retry_after: retry_after(headers),
        };
    }
    if status >= 500 {
        return OAuthError::Unavailable(format!("HTTP {status}"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(document)) if document.contains_key("error") => rejected_from(&document),
        _ => OAuthError::Rejected {
            error: format!("http_{status}"),
            description: None,
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            Pkce::challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pair = Pkce::generate();
        assert_eq!(pair.verifier.len(), 43);
        assert_eq!(Pkce::challenge_for(&pair.verifier), pair.challenge);
    }

    #[test]
    fn token_response_parsing() {
        let body = serde_json::json!({
            "access_token": "at-secret-123", "refresh_token": "r", "expires_in": "3600",
            "instance_url": "https://x.my.salesforce.com"
        });
        let Value::Object(map) = body else { panic!() };
        let tokens = TokenSet::from_response(map, 1_000).unwrap();
        assert_eq!(tokens.expires_at, Some(3_601_000));
        assert_eq!(tokens.refresh_token.as_deref(), Some("r"));
        assert!(!tokens.fields.contains_key("access_token"));
        assert!(tokens.fields.contains_key("instance_url"));
        assert!(!format!("{tokens:?}").contains("at-secret-123"));
    }

    #[test]
    fn errors_are_classified() {
        let headers = HeaderMap::new();
        let grant = error_from_response(400, &headers, br#"{"error":"invalid_grant"}"#);
        assert!(grant.is_permanent());
        assert!(!error_from_response(503, &headers, b"").is_permanent());
        let mut limited = HeaderMap::new();
        limited.insert(RETRY_AFTER, "7".parse().unwrap());
        let e = error_from_response(429, &limited, b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(!e.is_permanent());
    }
}
