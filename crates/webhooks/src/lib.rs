//! Signing and delivering webhooks per the Standard Webhooks spec
//! (<https://www.standardwebhooks.com/>).
//!
//! This crate knows nothing about storage or the rest of Plugboard: it signs a message,
//! makes one delivery attempt and reports what happened, and says when to try again.
//! Queues, persistence and the attempt history belong to the caller.
//!
//! ```
//! use std::time::Duration;
//! use plugboard_webhooks::{WebhookMessage, WebhookSecret, verify};
//!
//! let secret = WebhookSecret::generate();
//! let message = WebhookMessage::new("msg_1", 1_700_000_000, &br#"{"ok":true}"#[..]);
//! let headers = message.headers(&[&secret]);
//! let (_, signature) = &headers[2];
//! let tolerance = Duration::from_secs(300);
//! verify(&secret, "msg_1", 1_700_000_000, &message.body, signature, 1_700_000_010, tolerance)
//!     .unwrap();
//! ```

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
