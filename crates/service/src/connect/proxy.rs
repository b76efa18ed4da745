//! Calling a provider's API with a user's connection: the URL under the integration's
//! API base, the credential's auth header, one refresh-and-retry on a 401, a time limit
//! and a size limit on the answer.

use bytes::Bytes;
use plugboard_connect::credentials::CredentialSecrets;
use plugboard_core::{ProjectId, UserId};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

use super::{ConnectService, UpstreamError, UsableCredential};
use crate::error::ServiceResult;

/// Request headers never passed to the provider: hop-by-hop ones, the caller's own
/// credentials and browser context, and Plugboard's selection headers.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
    "origin",
    "referer",
    "forwarded",
];
const DROPPED_REQUEST_PREFIXES: &[&str] = &[
    "x-paragon-",
    "x-plugboard-",
    "x-forwarded-",
    "proxy-",
    "sec-",
];

/// Response headers relayed to the caller.
const RELAYED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "etag",
    "last-modified",
    "link",
];
const RELAYED_RESPONSE_PREFIXES: &[&str] = &["x-ratelimit-", "ratelimit"];

/// One API call to make for a user.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// The integration's key (`salesforce`, `custom.x`).
    pub integration: String,
    /// The credential the caller selected (`X-Paragon-Credential`); ignored when it is
    /// not one of this integration's.
    pub selected: Option<Uuid>,
    pub method: Method,
    /// Path and query under the integration's API base URL, starting with `/`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The provider's answer.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: u16,
    /// Only the relayed headers.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ProxyResponse {
    pub fn is_json(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"))
    }
}

impl ConnectService {
    /// Calls the provider's API with the user's connection.
    pub async fn proxy(
        &self,
        project: ProjectId,
        user: &UserId,
        request: &ProxyRequest,
    ) -> ServiceResult<ProxyResponse> {
        let usable = self
            .usable(project, user, &request.integration, request.selected)
            .await?;
        let response = self.forward(&usable, request).await?;
        let has_tokens = matches!(usable.secrets, CredentialSecrets::Tokens(_));
        if response.status != 401 || !has_tokens {
            return Ok(response);
        }
        // The provider refused a token we thought valid (revoked, rotated elsewhere):
        // refresh once and retry once.
        let renewed = self
            .ensure_fresh(usable.integration, usable.credential, true)
            .await?;
        Ok(self.forward(&renewed, request).await?)
    }

    async fn forward(
        &self,
        usable: &UsableCredential,
        request: &ProxyRequest,
    ) -> Result<ProxyResponse, UpstreamError> {
        let spec = &usable.integration.spec;
        let fields = usable.secrets.tokens().map(|t| t.fields_value());
        let url = spec
            .api_url(&request.path_and_query, &usable.inputs(), fields.as_ref())
            .map_err(|e| UpstreamError::BadRequest(e.to_string()))?;
        let (auth_name, auth_value) = spec
            .auth_header(&usable.secrets)
            .map_err(|e| UpstreamError::BadRequest(e.to_string()))?;
        let mut headers = forwarded_headers(&request.headers, &request.body);
        headers.insert(auth_name, auth_value);
        let sent = self
            .client
            .http()
            .request(request.method.clone(), url)
            .headers(headers)
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| self.upstream_error(e))?;
        let status = sent.status().as_u16();
        let headers = relayed_headers(sent.headers());
        let body = self.read_limited(sent).await?;
        Ok(ProxyResponse {
            status,
            headers,
            body,
        })
    }

    async fn read_limited(&self, mut response: reqwest::Response) -> Result<Bytes, UpstreamError> {
        let limit = self.settings.proxy_max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(UpstreamError::TooLarge(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.upstream_error(e))? {
            if body.len() + chunk.len() > limit {
                return Err(UpstreamError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn upstream_error(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.settings.provider_timeout)
        } else {
            UpstreamError::Unavailable(e.without_url().to_string())
        }
    }
}

fn dropped(name: &HeaderName) -> bool {
    let name = name.as_str();
    DROPPED_REQUEST_HEADERS.contains(&name)
        || DROPPED_REQUEST_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The caller's headers to pass on. The SDK sends `Content-Type: auto`: a JSON body then
/// goes as `application/json`, anything else without a content type.
fn forwarded_headers(incoming: &HeaderMap, body: &Bytes) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        if !dropped(name) {
            out.append(name.clone(), value.clone());
        }
    }
    let auto = out
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"auto"));
    if auto {
        out.remove(CONTENT_TYPE);
        if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            out.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    out
}

fn relayed_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        if RELAYED_RESPONSE_HEADERS.contains(&n)
            || RELAYED_RESPONSE_PREFIXES.iter().any(|p| n.starts_with(p))
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_credentials_and_selection_headers_are_not_forwarded() {
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer user-jwt"),
            ("cookie", "a=b"),
            ("x-paragon-credential", "c"),
            ("x-custom", "kept"),
            ("content-type", "auto"),
        ] {
            incoming.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let out = forwarded_headers(&incoming, &Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out["x-custom"], "kept");
        assert_eq!(out[CONTENT_TYPE], "application/json");
        let text = forwarded_headers(&incoming, &Bytes::from_static(b"plain"));
        assert!(text.get(CONTENT_TYPE).is_none());
    }
}
