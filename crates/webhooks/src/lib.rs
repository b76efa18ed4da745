//! Signing and delivering webhooks per the Standard Webhooks spec
//! (<https://www.standardwebhooks.com/>).
//!
//! This crate knows nothing about storage or the rest of Plugboard: it signs a message,
//! makes one delivery attempt and reports what happened, and says when to try again.
//! Queues, persistence and the attempt history belong to the caller.

mod deliver;
mod endpoint;
mod error;
mod message;
mod retry;
mod secret;
mod signature;

pub use deliver::{
    AttemptOutcome, Deliverer, RESPONSE_EXCERPT_LIMIT, USER_AGENT, parse_retry_after,
};
pub use endpoint::{MAX_URL_LENGTH, validate_endpoint_url};
pub use error::WebhookError;
pub use message::WebhookMessage;
pub use retry::RetryPolicy;
pub use secret::WebhookSecret;
pub use signature::{sign, verify};
