use bytes::Bytes;

use crate::{WebhookSecret, sign};

/// One webhook as sent: the same id and timestamp on every attempt, so a receiver can
/// drop duplicates by id. The body is JSON, already serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMessage {
    pub id: String,
    pub timestamp_secs: i64,
    pub body: Bytes,
}

impl WebhookMessage {
    pub fn new(id: impl Into<String>, timestamp_secs: i64, body: impl Into<Bytes>) -> Self {
        Self {
            id: id.into(),
            timestamp_secs,
            body: body.into(),
        }
    }

    /// The request headers, signed with every secret given (see [`sign`]).
    pub fn headers(&self, secrets: &[&WebhookSecret]) -> [(&'static str, String); 4] {
        let signature = sign(secrets, &self.id, self.timestamp_secs, &self.body);
        [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", self.timestamp_secs.to_string()),
            ("webhook-signature", signature),
            ("content-type", "application/json".to_owned()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_id_timestamp_signature_and_type() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let message = WebhookMessage::new(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            &br#"{"test": 2432232314}"#[..],
        );
        let headers = message.headers(&[&secret]);
        assert_eq!(
            headers,
            [
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".to_owned()),
                ("webhook-timestamp", "1614265330".to_owned()),
                (
                    "webhook-signature",
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned()
                ),
                ("content-type", "application/json".to_owned()),
            ]
        );
    }
}
