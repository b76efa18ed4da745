//! Key material: RSA signing keys for user tokens and project secret keys.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicEncryptingKey};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ServiceError, ServiceResult};

/// Smallest RSA modulus accepted for a registered public key.
pub const MIN_RSA_BITS: usize = 2048;

/// Prefix of every project secret key, so leaked keys are easy to recognise and scan for.
pub const SECRET_KEY_PREFIX: &str = "pb_sk_";

/// A freshly generated RSA key pair, PEM-encoded (PKCS#8 private, SPKI public).
pub struct GeneratedKeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("private_pem", &"<redacted>")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

pub fn generate_signing_key() -> ServiceResult<GeneratedKeyPair> {
    let internal =
        |what: &str| ServiceError::Internal(format!("RSA key generation failed: {what}"));
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| internal("generate"))?;
    let private = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| internal("encode private key"))?;
    let public = AsDer::<PublicKeyX509Der>::as_der(pair.public_key())
        .map_err(|_| internal("encode public key"))?;
    Ok(GeneratedKeyPair {
        private_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", private.as_ref())),
        public_pem: pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref())),
    })
}

/// Checks that `pem_text` is one RSA public key of at least [`MIN_RSA_BITS`] and returns it
/// normalised.
pub fn parse_public_key(pem_text: &str) -> ServiceResult<String> {
    let invalid = |why: &str| ServiceError::InvalidPublicKey(why.to_owned());
    let parsed = pem::parse(pem_text.trim()).map_err(|_| invalid("not a PEM document"))?;
    match parsed.tag() {
        "PUBLIC KEY" => {
            let key = PublicEncryptingKey::from_der(parsed.contents())
                .map_err(|_| invalid("not an RSA public key"))?;
            if key.key_size_bits() < MIN_RSA_BITS {
                return Err(invalid("RSA keys must be at least 2048 bits"));
            }
        }
        "RSA PUBLIC KEY" => {
            DecodingKey::from_rsa_pem(pem_text.trim().as_bytes())
                .map_err(|_| invalid("not an RSA public key"))?;
        }
        tag if tag.contains("PRIVATE") => {
            return Err(invalid(
                "this is a private key; register the public key only",
            ));
        }
        _ => return Err(invalid("expected a `PUBLIC KEY` PEM block")),
    }
    Ok(pem::encode(&parsed))
}

/// Signs a user token with RS256, as the SaaS backend does; `kid` names the signing key.
pub fn mint_user_token(
    private_pem: &str,
    kid: Option<&str>,
    claims: &serde_json::Value,
) -> ServiceResult<String> {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes())
        .map_err(|e| ServiceError::InvalidInput(format!("not an RSA private key in PEM: {e}")))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| ServiceError::Internal(format!("signing failed: {e}")))
}

/// A new project secret key: the full key (shown once), its display prefix and its hash.
pub struct NewSecretKey {
    pub plain: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate_secret_key() -> NewSecretKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plain = format!("{SECRET_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewSecretKey {
        prefix: plain[..SECRET_KEY_PREFIX.len() + 6].to_owned(),
        hash: hash_secret(&plain),
        plain,
    }
}

/// Secret keys carry 256 random bits, so a plain SHA-256 is enough to store them safely
/// (no password-style stretching needed).
pub fn hash_secret(plain: &str) -> String {
    hex_encode(&Sha256::digest(plain.as_bytes()))
}

/// Compares two secrets without leaking where they differ: compares their digests.
pub fn secrets_match(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_parse() {
        let pair = generate_signing_key().unwrap();
        assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let normalised = parse_public_key(&pair.public_pem).unwrap();
        assert!(normalised.starts_with("-----BEGIN PUBLIC KEY-----"));
        let token = mint_user_token(
            &pair.private_pem,
            Some("k1"),
            &serde_json::json!({"sub": "u"}),
        )
        .unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert!(!format!("{pair:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_public_keys_are_refused() {
        let pair = generate_signing_key().unwrap();
        assert!(parse_public_key("hello").is_err());
        assert!(parse_public_key(&pair.private_pem).is_err());
        let junk = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
        assert!(parse_public_key(&junk).is_err());
    }

    #[test]
    fn secret_keys_are_random_and_hashed() {
        let a = generate_secret_key();
        let b = generate_secret_key();
        assert_ne!(a.plain, b.plain);
        assert!(a.plain.starts_with(SECRET_KEY_PREFIX));
        assert_eq!(a.hash, hash_secret(&a.plain));
        assert_eq!(a.hash.len(), 64);
        assert!(a.plain.starts_with(&a.prefix));
        assert!(secrets_match(&a.plain, &a.plain.clone()));
        assert!(!secrets_match(&a.plain, &b.plain));
    }
}
