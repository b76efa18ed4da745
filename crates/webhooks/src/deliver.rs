use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, Response, StatusCode, redirect};
use tokio::time::timeout_at;
use url::Url;

use crate::{WebhookError, WebhookMessage, WebhookSecret};

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("Plugboard-Webhooks/", env!("CARGO_PKG_VERSION"));

/// How much of a response body is kept (and read at all), in bytes.
pub const RESPONSE_EXCERPT_LIMIT: usize = 1024;

/// Error texts are cut to this many characters: they are shown to users and stored.
const ERROR_TEXT_LIMIT: usize = 200;

/// What one delivery attempt came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The response status; `None` when no response came (timeout, connection failure).
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// The first [`RESPONSE_EXCERPT_LIMIT`] bytes of the response body, as lossy UTF-8.
    pub response_excerpt: String,
    /// A short description of what went wrong, if anything did. It can be set next to
    /// a status too: for a redirect, or when the body could not be read in time.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, read only on 429 and 503.
    pub retry_after: Option<Duration>,
}

impl AttemptOutcome {
    /// Whether the receiver took the webhook: any 2xx status. A 2xx whose body could not
    /// be read in time still counts, since the receiver had already answered.
    pub fn delivered(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// Resolves endpoint host names and refuses those with a private, loopback or link-local
/// address (loopback allowed when `allow_loopback`), at connection time: a name checked
/// when it was saved may point elsewhere by the time it is used.
struct PublicOnly {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs
                .iter()
                .find(|a| !crate::endpoint::may_connect_to(a.ip(), allow_loopback))
            {
                let refusal = WebhookError::ForbiddenHost(format!("{host} ({})", refused.ip()));
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sends webhooks. Cheap to clone; share one for its connection pool.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: Client,
}

impl Deliverer {
    /// A deliverer whose client follows no redirects (a receiver answering 3xx has not
    /// taken the webhook, and following it could lead to an address the endpoint check
    /// never saw) and connects to public addresses only (loopback too when
    /// `allow_loopback`, for development and tests).
    pub fn new(allow_loopback: bool) -> Result<Self, WebhookError> {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(PublicOnly { allow_loopback }))
            .build()
            .map_err(|e| WebhookError::HttpClient(e.without_url().to_string()))?;
        Ok(Self { client })
    }

    /// Makes one attempt: POSTs the signed message and reads at most
    /// [`RESPONSE_EXCERPT_LIMIT`] bytes of the answer, all within `timeout`.
    ///
    /// Never fails: every failure is described in the outcome. The URL is not checked
    /// here; see [`validate_endpoint_url`](crate::validate_endpoint_url).
    pub async fn deliver(
        &self,
        url: &Url,
        message: &WebhookMessage,
        secrets: &[&WebhookSecret],
        timeout: Duration,
    ) -> AttemptOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcome = AttemptOutcome::default();
        match timeout_at(deadline, self.send(url, message, secrets)).await {
            Err(_) => outcome.error = Some(timeout_text(timeout)),
            Ok(Err(err)) => outcome.error = Some(describe(err)),
            Ok(Ok(response)) => read_response(response, deadline, &mut outcome).await,
        }
        outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }

    async fn send(
        &self,
        url: &Url,
        message: &WebhookMessage,
        secrets: &[&WebhookSecret],
    ) -> Result<Response, reqwest::Error> {
        let mut request = self.client.post(url.clone()).body(message.body.clone());
        for (name, value) in message.headers(secrets) {
            request = request.header(name, value);
        }
        request.send().await
    }
}

/// Fills the outcome from a response whose headers arrived before `deadline`.
async fn read_response(
    mut response: Response,
    deadline: tokio::time::Instant,
    outcome: &mut AttemptOutcome,
) {
    let status = response.status();
    outcome.status = Some(status.as_u16());
    outcome.retry_after = retry_after(&response);
    if status.is_redirection() {
        outcome.error = Some("redirect not followed".to_owned());
    }
    let mut excerpt = Vec::new();
    match timeout_at(deadline, read_excerpt(&mut response, &mut excerpt)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => outcome.error = Some(describe(err)),
        Err(_) => outcome.error = Some("timeout while reading the response body".to_owned()),
    }
    outcome.response_excerpt = String::from_utf8_lossy(&excerpt).into_owned();
}

/// Reads the body into `excerpt` until it ends or the limit is reached; the rest is
/// never read. Writes into the caller's buffer so a timeout keeps what arrived.
async fn read_excerpt(response: &mut Response, excerpt: &mut Vec<u8>) -> reqwest::Result<()> {
    while excerpt.len() < RESPONSE_EXCERPT_LIMIT {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let take = chunk.len().min(RESPONSE_EXCERPT_LIMIT - excerpt.len());
        excerpt.extend_from_slice(&chunk[..take]);
    }
    Ok(())
}

fn retry_after(response: &Response) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Reads a `Retry-After` value: delta-seconds, or an HTTP-date (a date already past
/// gives zero). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn timeout_text(timeout: Duration) -> String {
    format!("timeout: no answer within {} ms", timeout.as_millis())
}

/// A short text for a failed request: its kind and the innermost cause (such as
/// "Connection refused"). The URL is left out since its query may hold a token.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect error"
    } else if err.is_body() || err.is_decode() {
        "error reading the response"
    } else {
        "request error"
    };
    let mut cause: &dyn std::error::Error = &err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = format!("{kind}: {cause}");
    text.chars().take(ERROR_TEXT_LIMIT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let parse = |v| parse_retry_after(v, now);
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:29:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        for junk in ["", "-5", "1.5", "soon", "+3"] {
            assert_eq!(parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn delivered_means_2xx() {
        let with = |status| AttemptOutcome {
            status,
            ..Default::default()
        };
        assert!(with(Some(200)).delivered());
        assert!(with(Some(204)).delivered());
        assert!(!with(Some(302)).delivered());
        assert!(!with(Some(500)).delivered());
        assert!(!with(None).delivered());
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(
            USER_AGENT,
            format!("Plugboard-Webhooks/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
