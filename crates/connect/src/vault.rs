//! Encryption of credentials at rest: AES-256-GCM (AWS-LC) under the server's master key.
//!
//! A sealed value reads `v1.<keyId>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id
//! names which master key sealed it, so `plugboard keys rotate` can add a new key, keep
//! the old ones for opening, and re-seal rows to the new key. The caller passes
//! associated data (for example the project and credential ids) that must match when
//! opening, so a sealed value copied onto another row does not open there.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const FORMAT: &str = "v1";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("a master key must be 32 bytes")]
    BadKeyLength,
    #[error("sealed value is not in the expected format")]
    Malformed,
    #[error("sealed with master key `{0}`, which this server does not have")]
    UnknownKey(String),
    #[error("sealed value does not open: wrong key, wrong context, or tampered")]
    Unsealable,
    #[error("the system random number generator failed")]
    Random,
}

/// An opened secret. Its `Debug` never shows the contents.
pub struct Opened(Vec<u8>);

impl Opened {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_string(self) -> Result<String, VaultError> {
        String::from_utf8(self.0).map_err(|_| VaultError::Malformed)
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opened(<redacted>)")
    }
}

/// The master keys: one that seals, any number that still open.
pub struct Vault {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    random: SystemRandom,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A short public id for a master key: the start of its SHA-256, so the same key always
/// gets the same id and the id reveals nothing usable.
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest(key);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, VaultError> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| VaultError::BadKeyLength)?;
    Ok(LessSafeKey::new(unbound))
}

impl Vault {
    /// A vault sealing with `current`, able to open values sealed with it or `previous`.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Result<Self, VaultError> {
        let mut keys = HashMap::new();
        for key in previous.iter().chain(std::iter::once(current)) {
            keys.insert(key_id(key), aead_key(key)?);
        }
        Ok(Self {
            current: key_id(current),
            keys,
            random: SystemRandom::new(),
        })
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext`, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, VaultError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| VaultError::Random)?;
        let mut buffer = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buffer,
        )
        .map_err(|_| VaultError::Unsealable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(format!(
            "{FORMAT}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// Decrypts a value sealed by [`Vault::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Opened, VaultError> {
        let (key_id, payload) = split_sealed(sealed)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VaultError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Malformed)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| VaultError::Unsealable)?;
        Ok(Opened(plaintext.to_vec()))
    }

    /// Whether `sealed` names a key this vault holds (`UnknownKey` if not), without
    /// opening it.
    pub fn check_key_of(&self, sealed: &str) -> Result<(), VaultError> {
        let (key_id, _) = split_sealed(sealed)?;
        if self.keys.contains_key(key_id) {
            Ok(())
        } else {
            Err(VaultError::UnknownKey(key_id.to_owned()))
        }
    }

    /// Whether `sealed` was made with an older master key and should be re-sealed.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        split_sealed(sealed).is_ok_and(|(key_id, _)| key_id != self.current)
    }

    /// Opens with whichever key sealed it and seals again with the current key.
    pub fn reseal(&self, sealed: &str, context: &[u8]) -> Result<String, VaultError> {
        let opened = self.open(sealed, context)?;
        self.seal(opened.as_bytes(), context)
    }
}

fn split_sealed(sealed: &str) -> Result<(&str, &str), VaultError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(FORMAT), Some(key_id), Some(payload)) if !key_id.is_empty() => Ok((key_id, payload)),
        _ => Err(VaultError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [u8; 32] = [7; 32];
    const NEW: [u8; 32] = [9; 32];

    #[test]
    fn seals_and_opens_with_its_context() {
        let vault = Vault::new(&NEW, &[]).unwrap();
        let sealed = vault.seal(b"access-token-123", b"project/cred").unwrap();
        assert!(!sealed.contains("access-token-123"));
        assert!(sealed.starts_with(&format!("v1.{}.", key_id(&NEW))));
        let opened = vault.open(&sealed, b"project/cred").unwrap();
        assert_eq!(opened.as_bytes(), b"access-token-123");
        assert_eq!(format!("{opened:?}"), "Opened(<redacted>)");
        assert_eq!(
            vault.open(&sealed, b"project/other").map(|_| ()),
            Err(VaultError::Unsealable)
        );
    }

    #[test]
    fn same_plaintext_seals_differently() {
        let vault = Vault::new(&NEW, &[]).unwrap();
        assert_ne!(
            vault.seal(b"x", b"c").unwrap(),
            vault.seal(b"x", b"c").unwrap()
        );
    }

    #[test]
    fn tampering_and_junk_are_refused() {
        let vault = Vault::new(&NEW, &[]).unwrap();
        let sealed = vault.seal(b"secret", b"c").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            vault.open(&tampered, b"c"),
            Err(VaultError::Unsealable | VaultError::Malformed)
        ));
        for junk in ["", "v1", "v1..", "v2.abc.def", "v1.abc.!!", "v1.abc.AAAA"] {
            assert!(vault.open(junk, b"c").is_err(), "{junk}");
        }
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_reseals_them() {
        let old = Vault::new(&OLD, &[]).unwrap();
        let sealed = old.seal(b"refresh-token", b"c").unwrap();
        let rotated = Vault::new(&NEW, &[OLD]).unwrap();
        assert!(rotated.needs_reseal(&sealed));
        assert_eq!(
            rotated.open(&sealed, b"c").unwrap().as_bytes(),
            b"refresh-token"
        );
        let resealed = rotated.reseal(&sealed, b"c").unwrap();
        assert!(!rotated.needs_reseal(&resealed));
        let new_only = Vault::new(&NEW, &[]).unwrap();
        assert_eq!(
            new_only.open(&resealed, b"c").unwrap().as_bytes(),
            b"refresh-token"
        );
        assert_eq!(
            new_only.open(&sealed, b"c").map(|_| ()),
            Err(VaultError::UnknownKey(key_id(&OLD)))
        );
    }
}
