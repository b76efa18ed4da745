//! Verification of user tokens against a project's registered public keys.
//!
//! Each token is checked strictly once (RS256 only, signature, then the claim rules of
//! `plugboard_core::token`) and then remembered until it expires, keyed by a digest of the
//! project and the token, so repeated requests cost a hash and a map lookup. A cached
//! token still needs its key to be active: revoking a key stops its tokens at once on
//! this node and within the key-cache TTL on others.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::sync::Cache;
use plugboard_core::token::{ALGORITHM, VerifiedClaims};
use plugboard_core::{ProjectId, TokenClaims, TokenError};
use plugboard_store::Store;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ServiceSettings;
use crate::error::{ServiceError, ServiceResult};

struct ActiveKey {
    id: Uuid,
    decoding: DecodingKey,
}

/// The active keys of an existing project.
struct ProjectKeys {
    keys: Vec<ActiveKey>,
}

#[derive(Clone)]
struct CachedToken {
    claims: VerifiedClaims,
    key_id: Uuid,
}

pub struct TokenVerifier {
    store: Arc<dyn Store>,
    /// `None` caches "no such project" too, so junk project ids cannot hammer the database.
    keys: Cache<ProjectId, Option<Arc<ProjectKeys>>>,
    verified: Cache<[u8; 32], CachedToken>,
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    kid: Option<String>,
}

impl TokenVerifier {
    pub fn new(store: Arc<dyn Store>, settings: &ServiceSettings) -> Self {
        Self {
            store,
            keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(settings.signing_key_cache_ttl)
                .build(),
            verified: Cache::builder()
                .max_capacity(settings.token_cache_capacity)
                .time_to_live(std::time::Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    /// Verifies `token` for `project` at `now_secs`, returning who it names.
    pub async fn verify(
        &self,
        project: ProjectId,
        token: &str,
        now_secs: i64,
    ) -> ServiceResult<VerifiedClaims> {
        let keys = self
            .project_keys(project)
            .await?
            .ok_or(ServiceError::ProjectNotFound)?;
        let digest = token_digest(project, token);
        if let Some(cached) = self.verified.get(&digest)
            && keys.keys.iter().any(|k| k.id == cached.key_id)
        {
            if cached.claims.expires_at_secs <= now_secs {
                return Err(TokenError::Expired.into());
            }
            return Ok(cached.claims);
        }
        let (claims, key_id) = verify_signature(&keys, token)?;
        let verified = claims.validate(project, now_secs)?;
        self.verified.insert(
            digest,
            CachedToken {
                claims: verified.clone(),
                key_id,
            },
        );
        Ok(verified)
    }

    /// Forgets the cached keys of `project`, after a key was added or revoked here.
    pub async fn invalidate_project(&self, project: ProjectId) {
        self.keys.invalidate(&project);
    }

    async fn project_keys(&self, project: ProjectId) -> ServiceResult<Option<Arc<ProjectKeys>>> {
        if let Some(hit) = self.keys.get(&project) {
            return Ok(hit);
        }
        let loaded = load_keys(&*self.store, project).await?;
        self.keys.insert(project, loaded.clone());
        Ok(loaded)
    }
}

async fn load_keys(
    store: &dyn Store,
    project: ProjectId,
) -> ServiceResult<Option<Arc<ProjectKeys>>> {
    if store.get_project(project).await?.is_none() {
        return Ok(None);
    }
    let keys = store
        .list_signing_keys(project)
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .filter_map(|k| {
            // Keys are validated when registered; one that no longer parses is skipped, not fatal.
            let decoding = DecodingKey::from_rsa_pem(k.public_key_pem.as_bytes())
                .inspect_err(|e| tracing::warn!(key_id = %k.id, error = %e, "unusable signing key"))
                .ok()?;
            Some(ActiveKey { id: k.id, decoding })
        })
        .collect();
    Ok(Some(Arc::new(ProjectKeys { keys })))
}

fn token_digest(project: ProjectId, token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(project.as_uuid().as_bytes());
    hasher.update(token.as_bytes());
    hasher.finalize().into()
}

fn parse_header(token: &str) -> Result<JwtHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Checks the algorithm and signature; returns the (not yet validated) claims and the key
/// that verified them.
fn verify_signature(keys: &ProjectKeys, token: &str) -> Result<(TokenClaims, Uuid), TokenError> {
    let header = parse_header(token)?;
    match header.alg.as_deref() {
        Some(ALGORITHM) => {}
        other => {
            return Err(TokenError::AlgorithmNotAllowed(
                other.unwrap_or("none").to_owned(),
            ));
        }
    }
    let candidates: Vec<&ActiveKey> = match &header.kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(|k| k.id.to_string() == *kid)
            .collect(),
        None => keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    for key in candidates {
        match jsonwebtoken::decode::<TokenClaims>(token, &key.decoding, &validation) {
            Ok(data) => return Ok((data.claims, key.id)),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::InvalidAlgorithm) => {
                return Err(TokenError::AlgorithmNotAllowed(format!("{e}")));
            }
            Err(_) => return Err(TokenError::Malformed),
        }
    }
    Err(TokenError::SignatureInvalid)
}
