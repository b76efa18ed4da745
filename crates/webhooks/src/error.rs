use thiserror::Error;

/// Everything this crate can refuse. Delivery failures are not errors: they are
/// recorded in an [`AttemptOutcome`](crate::AttemptOutcome).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// The text is not `whsec_` followed by base64 of 16 to 64 key bytes.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(&'static str),
    #[error("invalid endpoint URL: {0}")]
    InvalidUrl(String),
    #[error("endpoint URL is longer than {max} characters")]
    UrlTooLong { max: usize },
    /// Plain http is only for loopback hosts in development.
    #[error(
        "endpoint URL must use https (plain http only reaches loopback hosts, with the \
         setting `webhooks.allow_loopback` on, as `plugboard dev` has it)"
    )]
    InsecureScheme,
    #[error("endpoint URL must not contain a user name or password")]
    UserInfo,
    /// A private, link-local, loopback or otherwise non-public IP address or host.
    #[error(
        "endpoint host {0} is not a public address (loopback hosts need the setting \
         `webhooks.allow_loopback`, for development)"
    )]
    ForbiddenHost(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("malformed webhook signature header")]
    MalformedSignature,
    #[error("no webhook signature matches")]
    SignatureMismatch,
    #[error("webhook timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
}
