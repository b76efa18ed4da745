use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{WebhookError, WebhookSecret};

type HmacSha256 = Hmac<Sha256>;

/// The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated.
///
/// Several secrets serve rotation: during a grace period the caller signs with the new
/// and the old secret, so a receiver that knows either one accepts the message.
/// No secrets give an empty value, which no receiver accepts.
pub fn sign(secrets: &[&WebhookSecret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let tag = mac(secret, msg_id, timestamp_secs, body)
                .finalize()
                .into_bytes();
            format!("v1,{}", STANDARD.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a `webhook-signature` header the way a receiver would: the timestamp must be
/// within `tolerance` of `now_secs` and one `v1` signature must match (compared in
/// constant time). Entries of other versions are skipped.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    header: &str,
    now_secs: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let skew = now_secs.abs_diff(timestamp_secs);
    if skew > tolerance.as_secs() {
        return Err(WebhookError::TimestampOutOfTolerance);
    }
    for entry in header.split_ascii_whitespace() {
        let (version, encoded) = entry
            .split_once(',')
            .ok_or(WebhookError::MalformedSignature)?;
        if version != "v1" {
            continue;
        }
        let tag = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::MalformedSignature)?;
        if mac(secret, msg_id, timestamp_secs, body)
            .verify_slice(&tag)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(WebhookError::SignatureMismatch)
}

/// The HMAC over `{id}.{timestamp}.{body}`, fed in pieces so the body is not copied.
fn mac(secret: &WebhookSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.key()).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks reference libraries' test suites.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn matches_the_published_test_vector() {
        assert_eq!(sign(&[&secret()], MSG_ID, TIMESTAMP, PAYLOAD), EXPECTED);
    }

    #[test]
    fn signs_once_per_secret_in_order() {
        let old = secret();
        let new = WebhookSecret::generate();
        let header = sign(&[&new, &old], MSG_ID, TIMESTAMP, PAYLOAD);
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], EXPECTED);
        for s in [&old, &new] {
            assert_eq!(
                verify(s, MSG_ID, TIMESTAMP, PAYLOAD, &header, TIMESTAMP, TOLERANCE),
                Ok(())
            );
        }
    }

    #[test]
    fn verify_refuses_tampering_and_other_secrets() {
        let s = secret();
        let other = WebhookSecret::generate();
        let check = |secret: &WebhookSecret, id: &str, body: &[u8], header: &str| {
            verify(secret, id, TIMESTAMP, body, header, TIMESTAMP, TOLERANCE)
        };
        let mismatch = Err(WebhookError::SignatureMismatch);
        assert_eq!(check(&other, MSG_ID, PAYLOAD, EXPECTED), mismatch);
        assert_eq!(check(&s, "msg_other", PAYLOAD, EXPECTED), mismatch);
        assert_eq!(check(&s, MSG_ID, b"{}", EXPECTED), mismatch);
        assert_eq!(check(&s, MSG_ID, PAYLOAD, "v2,abc"), mismatch);
        assert_eq!(check(&s, MSG_ID, PAYLOAD, ""), mismatch);
        assert_eq!(
            check(&s, MSG_ID, PAYLOAD, "v1"),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check(&s, MSG_ID, PAYLOAD, "v1,!!"),
            Err(WebhookError::MalformedSignature)
        );
        let both = format!("v2,xyz {EXPECTED}");
        assert_eq!(check(&s, MSG_ID, PAYLOAD, &both), Ok(()));
    }

    #[test]
    fn verify_enforces_the_tolerance() {
        let s = secret();
        let at = |now| verify(&s, MSG_ID, TIMESTAMP, PAYLOAD, EXPECTED, now, TOLERANCE);
        assert_eq!(at(TIMESTAMP + 300), Ok(()));
        assert_eq!(at(TIMESTAMP - 300), Ok(()));
        assert_eq!(
            at(TIMESTAMP + 301),
            Err(WebhookError::TimestampOutOfTolerance)
        );
        assert_eq!(
            at(TIMESTAMP - 301),
            Err(WebhookError::TimestampOutOfTolerance)
        );
    }
}
