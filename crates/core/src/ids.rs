use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("project id must be a UUID")]
    InvalidProjectId,
    #[error("user id must not be empty")]
    EmptyUserId,
    #[error("user id is longer than {max} characters")]
    UserIdTooLong { max: usize },
    #[error("user id must not contain control characters")]
    UserIdControlChars,
}

/// A project's id: a UUID, as Paragon's are (the browser SDK treats it as opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectId(Uuid);

impl ProjectId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| IdError::InvalidProjectId)
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The SaaS's own id for a connected user (the token's `sub`): 1 to 256 characters,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::EmptyUserId);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(IdError::UserIdTooLong {
                max: Self::MAX_CHARS,
            });
        }
        if raw.chars().any(char::is_control) {
            return Err(IdError::UserIdControlChars);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_bounds() {
        assert_eq!(UserId::parse(""), Err(IdError::EmptyUserId));
        assert!(UserId::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            UserId::parse(&"a".repeat(257)),
            Err(IdError::UserIdTooLong { max: 256 })
        );
        assert_eq!(UserId::parse("a\nb"), Err(IdError::UserIdControlChars));
        assert_eq!(UserId::parse("ünïcode-✓").unwrap().as_str(), "ünïcode-✓");
    }

    #[test]
    fn project_id_must_be_uuid() {
        assert!(ProjectId::parse("demo").is_err());
        let id = ProjectId::new_random();
        assert_eq!(ProjectId::parse(&id.to_string()).unwrap(), id);
    }
}
