//! Rules for Paragon-compatible user tokens: RS256 JWTs that the SaaS backend signs.
//!
//! Signature checking needs a crypto library and lives in the service crate; this module
//! holds the claim rules, so they can be tested without keys.

use serde::Deserialize;
use serde_json::Value;

use crate::ids::{ProjectId, UserId};

/// How far in the future `iat` may be before a token is refused (clock skew allowance).
pub const MAX_IAT_SKEW_SECS: i64 = 60;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "RS256";

/// Every way a user token can be refused. Each has its own stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("an `Authorization: Bearer <user token>` header is required")]
    Missing,
    #[error("the user token is not a well-formed JWT")]
    Malformed,
    #[error("user tokens must be signed with RS256, not {0}")]
    AlgorithmNotAllowed(String),
    #[error("no active signing key of this project matches the token")]
    UnknownKey,
    #[error("the user token's signature does not verify against this project's keys")]
    SignatureInvalid,
    #[error("the user token has no `sub` claim naming the user")]
    SubjectMissing,
    #[error("the user token's `sub` is not a valid user id: {0}")]
    SubjectInvalid(String),
    #[error("the user token has no `exp` claim")]
    ExpiryMissing,
    #[error("the user token has expired")]
    Expired,
    #[error("the user token's `iat` is more than {MAX_IAT_SKEW_SECS} s in the future")]
    IssuedInFuture,
    #[error("the user token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error(
        "the user token's `aud` names neither `useparagon.com/{{projectId}}` nor `plugboard:{{projectId}}` for this project"
    )]
    AudienceInvalid,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::AlgorithmNotAllowed(_) => "token_algorithm_not_allowed",
            Self::UnknownKey => "token_key_unknown",
            Self::SignatureInvalid => "token_signature_invalid",
            Self::SubjectMissing => "token_subject_missing",
            Self::SubjectInvalid(_) => "token_subject_invalid",
            Self::ExpiryMissing => "token_expiry_missing",
            Self::Expired => "token_expired",
            Self::IssuedInFuture => "token_issued_in_future",
            Self::NotYetValid => "token_not_yet_valid",
            Self::AudienceInvalid => "token_audience_invalid",
        }
    }
}

/// The claims Plugboard reads. Numeric dates may be integers or decimals (RFC 7519).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenClaims {
    #[serde(default)]
    pub sub: Option<Value>,
    #[serde(default)]
    pub exp: Option<f64>,
    #[serde(default)]
    pub iat: Option<f64>,
    #[serde(default)]
    pub nbf: Option<f64>,
    #[serde(default)]
    pub aud: Option<Value>,
}

/// A token whose claims passed every rule: who it names and until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub user_id: UserId,
    pub expires_at_secs: i64,
}

impl TokenClaims {
    /// Checks the claims for use against `project` at `now_secs` (Unix seconds).
    pub fn validate(
        &self,
        project: ProjectId,
        now_secs: i64,
    ) -> Result<VerifiedClaims, TokenError> {
        let user_id = self.subject()?;
        let exp = self.exp.ok_or(TokenError::ExpiryMissing)?;
        if exp <= now_secs as f64 {
            return Err(TokenError::Expired);
        }
        if self
            .iat
            .is_some_and(|iat| iat > (now_secs + MAX_IAT_SKEW_SECS) as f64)
        {
            return Err(TokenError::IssuedInFuture);
        }
        if self.nbf.is_some_and(|nbf| nbf > now_secs as f64) {
            return Err(TokenError::NotYetValid);
        }
        if let Some(aud) = &self.aud
            && !audience_matches(aud, project)
        {
            return Err(TokenError::AudienceInvalid);
        }
        Ok(VerifiedClaims {
            user_id,
            expires_at_secs: exp.floor() as i64,
        })
    }

    fn subject(&self) -> Result<UserId, TokenError> {
        match &self.sub {
            Some(Value::String(s)) if !s.is_empty() => {
                UserId::parse(s).map_err(|e| TokenError::SubjectInvalid(e.to_string()))
            }
            Some(Value::String(_)) | None | Some(Value::Null) => Err(TokenError::SubjectMissing),
            Some(_) => Err(TokenError::SubjectInvalid("`sub` must be a string".into())),
        }
    }
}

/// The audiences accepted for `project`: Paragon's spelling and Plugboard's own.
pub fn accepted_audiences(project: ProjectId) -> [String; 2] {
    [
        format!("useparagon.com/{project}"),
        format!("plugboard:{project}"),
    ]
}

fn audience_matches(aud: &Value, project: ProjectId) -> bool {
    let accepted = accepted_audiences(project);
    let is_accepted = |v: &Value| v.as_str().is_some_and(|s| accepted.iter().any(|a| a == s));
    match aud {
        Value::Array(items) => items.iter().any(is_accepted),
        single => is_accepted(single),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn claims(v: Value) -> TokenClaims {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_plain_token_passes() {
        let p = ProjectId::new_random();
        let ok = claims(json!({"sub": "u1", "iat": NOW, "exp": NOW + 60}))
            .validate(p, NOW)
            .unwrap();
        assert_eq!(ok.user_id.as_str(), "u1");
        assert_eq!(ok.expires_at_secs, NOW + 60);
    }

    #[test]
    fn each_rule_has_its_own_error() {
        let p = ProjectId::new_random();
        let check = |v: Value| claims(v).validate(p, NOW).unwrap_err().code();
        assert_eq!(check(json!({"exp": NOW + 60})), "token_subject_missing");
        assert_eq!(
            check(json!({"sub": "", "exp": NOW + 60})),
            "token_subject_missing"
        );
        assert_eq!(
            check(json!({"sub": "x".repeat(257), "exp": NOW + 60})),
            "token_subject_invalid"
        );
        assert_eq!(
            check(json!({"sub": 5, "exp": NOW + 60})),
            "token_subject_invalid"
        );
        assert_eq!(check(json!({"sub": "u"})), "token_expiry_missing");
        assert_eq!(check(json!({"sub": "u", "exp": NOW})), "token_expired");
        assert_eq!(
            check(json!({"sub": "u", "exp": NOW + 600, "iat": NOW + 61})),
            "token_issued_in_future"
        );
        assert_eq!(
            check(json!({"sub": "u", "exp": NOW + 600, "nbf": NOW + 1})),
            "token_not_yet_valid"
        );
        assert_eq!(
            check(json!({"sub": "u", "exp": NOW + 600, "aud": "useparagon.com/other"})),
            "token_audience_invalid"
        );
    }

    #[test]
    fn audience_may_be_either_spelling_or_a_list() {
        let p = ProjectId::new_random();
        for aud in [
            json!(format!("useparagon.com/{p}")),
            json!(format!("plugboard:{p}")),
            json!(["someone-else", format!("plugboard:{p}")]),
        ] {
            claims(json!({"sub": "u", "exp": NOW + 60, "aud": aud}))
                .validate(p, NOW)
                .unwrap();
        }
        let other = ProjectId::new_random();
        let err = claims(json!({"sub": "u", "exp": NOW + 60, "aud": format!("plugboard:{other}")}))
            .validate(p, NOW)
            .unwrap_err();
        assert_eq!(err, TokenError::AudienceInvalid);
    }

    #[test]
    fn small_iat_skew_is_tolerated() {
        let p = ProjectId::new_random();
        claims(json!({"sub": "u", "exp": NOW + 600, "iat": NOW + 60}))
            .validate(p, NOW)
            .unwrap();
    }
}
