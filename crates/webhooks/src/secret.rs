use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

use crate::WebhookError;

const PREFIX: &str = "whsec_";
const GENERATED_LEN: usize = 24;
const MIN_LEN: usize = 16;
const MAX_LEN: usize = 64;

/// A signing key in the Standard Webhooks form `whsec_<base64 of the key bytes>`.
///
/// `Debug` never shows the key, so a secret inside a logged struct stays secret. There is
/// no `PartialEq`: comparing keys with `==` would not take constant time.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    text: String,
}

impl WebhookSecret {
    /// A new secret of 24 random bytes from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_LEN];
        rand::rng().fill_bytes(&mut key);
        Self::from_key(key)
    }

    /// Parses `whsec_...`; the key must be 16 to 64 bytes of standard base64.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(WebhookError::InvalidSecret("missing whsec_ prefix"))?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::InvalidSecret("not valid base64"))?;
        match key.len() {
            n if n < MIN_LEN => Err(WebhookError::InvalidSecret("shorter than 16 bytes")),
            n if n > MAX_LEN => Err(WebhookError::InvalidSecret("longer than 64 bytes")),
            _ => Ok(Self::from_key(key)),
        }
    }

    /// The `whsec_...` text, to show a user once or to store.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    fn from_key(key: Vec<u8>) -> Self {
        let text = format!("{PREFIX}{}", STANDARD.encode(&key));
        Self { key, text }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = WebhookError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_back_and_differ() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.key().len(), 24);
        assert_eq!(WebhookSecret::parse(a.expose()).unwrap().key(), a.key());
    }

    #[test]
    fn parse_accepts_the_spec_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(secret.key().len(), 24);
        assert_eq!(secret.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn parse_refuses_bad_secrets() {
        let cases = [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            &format!("whsec_{}", STANDARD.encode([1u8; 15])),
            &format!("whsec_{}", STANDARD.encode([1u8; 65])),
            "whsec_",
        ];
        for text in cases {
            let err = WebhookSecret::parse(text).unwrap_err();
            assert!(
                matches!(err, WebhookError::InvalidSecret(_)),
                "{text}: {err:?}"
            );
        }
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 16]))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 64]))).is_ok());
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("MfKQ9r8"), "{shown}");
        assert!(shown.contains("WebhookSecret(..)"));
    }
}
