use uuid::Uuid;

use crate::{ProjectId, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub created_at: UnixMillis,
}

/// A public key that verifies this project's user tokens. Several may be active at once
/// so the SaaS can rotate keys without downtime; a token's `kid` picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub public_key_pem: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

/// A project secret key as stored: only a hash of the key and a short displayable prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRecord {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub name: String,
    pub prefix: String,
    pub hash: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}
