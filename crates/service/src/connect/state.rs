//! The OAuth `state` parameter: a connect session's id with an HMAC, so a forged or
//! altered state is refused before the database is asked. Single use and expiry are
//! enforced by the session row itself.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

pub(crate) struct StateKey(hmac::Key);

impl StateKey {
    /// A key of its own, derived from the master key, so the master key itself never
    /// signs anything.
    pub(crate) fn derive(master_key: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, master_key);
        let derived = hmac::sign(&root, b"plugboard/oauth-state/v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    pub(crate) fn sign(&self, session: Uuid) -> String {
        let tag = hmac::sign(&self.0, session.as_bytes());
        format!(
            "{}.{}",
            session.simple(),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The token a connect link's page puts in its form, so that only a confirmation
    /// sent from that page (which alone shows it) can spend the link.
    pub(crate) fn link_form_token(&self, link_hash: &str) -> String {
        let tag = hmac::sign(&self.0, &link_form_message(link_hash));
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    pub(crate) fn verify_link_form_token(&self, link_hash: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|tag| hmac::verify(&self.0, &link_form_message(link_hash), &tag).is_ok())
    }

    /// The session a state names, if its tag is genuine.
    pub(crate) fn verify(&self, state: &str) -> Option<Uuid> {
        let (id, tag) = state.split_once('.')?;
        let session = Uuid::try_parse(id).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, session.as_bytes(), &tag).ok()?;
        Some(session)
    }
}

/// Distinct from a state's message (a session's 16 bytes).
fn link_form_message(link_hash: &str) -> Vec<u8> {
    format!("connect-link-form/{link_hash}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_verify_only_unaltered() {
        let key = StateKey::derive(&[7; 32]);
        let session = Uuid::new_v4();
        let state = key.sign(session);
        assert_eq!(key.verify(&state), Some(session));
        let other = StateKey::derive(&[8; 32]);
        assert_eq!(other.verify(&state), None);
        let forged = format!(
            "{}.{}",
            Uuid::new_v4().simple(),
            state.split_once('.').unwrap().1
        );
        assert_eq!(key.verify(&forged), None);
        for junk in ["", ".", "abc", "x.y", &format!("{session}")] {
            assert_eq!(key.verify(junk), None, "{junk}");
        }
    }
}
