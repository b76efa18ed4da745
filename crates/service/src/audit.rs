//! The audit log: who did what to which target of a project, when, with digests of the
//! target's state before and after and the status it was answered with. Only digests are
//! kept, never bodies, so secrets cannot leak into the log.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_core::{AuditEntry, AuditFilter, ProjectId, UnixMillis, now_millis};
use plugboard_store::Store;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

/// Entries per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest `limit` accepted.
pub const MAX_LIMIT: u32 = 200;

/// SHA-256 of `bytes`, lowercase hex: what the log keeps of a state.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One action to record; the service adds the id and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub status: u16,
}

/// A listing request as the caller typed it; [`AuditService::list`] validates it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Inclusive lower bound: RFC 3339 or Unix milliseconds.
    pub since: Option<String>,
    /// Exclusive upper bound: RFC 3339 or Unix milliseconds.
    pub until: Option<String>,
    /// Exact actor, e.g. `admin` or `key:<id>`.
    pub actor: Option<String>,
    /// Target prefix, e.g. `users/u-1`.
    pub target: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub limit: Option<String>,
}

/// One page of entries, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass back as the cursor for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

pub struct AuditService {
    store: Arc<dyn Store>,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records `entry` for `project`, now.
    pub async fn record(
        &self,
        project: ProjectId,
        entry: NewAuditEntry,
    ) -> ServiceResult<AuditEntry> {
        let entry = AuditEntry {
            id: Uuid::now_v7(),
            project_id: project,
            at: now_millis(),
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            before_digest: entry.before_digest,
            after_digest: entry.after_digest,
            status: i32::from(entry.status),
        };
        self.store.insert_audit_entry(&entry).await?;
        Ok(entry)
    }

    /// The entries of `project` matching `query`, newest first.
    pub async fn list(&self, project: ProjectId, query: &AuditQuery) -> ServiceResult<AuditPage> {
        let mut filter = parse_query(query)?;
        let limit = filter.limit;
        // One more than asked, to know whether another page follows.
        filter.limit = limit + 1;
        let mut entries = self.store.list_audit_entries(project, &filter).await?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_cursor = more
            .then(|| entries.last().map(|e| encode_cursor(e.id)))
            .flatten();
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}

fn invalid(msg: String) -> ServiceError {
    ServiceError::InvalidFilter(msg)
}

fn parse_query(query: &AuditQuery) -> ServiceResult<AuditFilter> {
    let given = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let since = given(&query.since)
        .map(|v| parse_time("since", &v))
        .transpose()?;
    let until = given(&query.until)
        .map(|v| parse_time("until", &v))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(invalid("since must not be after until".into()));
    }
    let limit = match given(&query.limit) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not `{raw}`"
                ))
            })?,
    };
    let before = given(&query.cursor)
        .map(|c| decode_cursor(&c))
        .transpose()?;
    Ok(AuditFilter {
        since,
        until,
        actor: given(&query.actor),
        target: given(&query.target),
        before,
        limit,
    })
}

/// RFC 3339 (`2026-01-01T00:00:00Z`) or Unix milliseconds (`1767225600000`).
fn parse_time(name: &str, raw: &str) -> ServiceResult<UnixMillis> {
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            invalid(format!(
                "{name} must be RFC 3339 or Unix milliseconds, not `{raw}`"
            ))
        })
}

const CURSOR_VERSION: &str = "a1:";

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{id}"))
}

fn decode_cursor(cursor: &str) -> ServiceResult<Uuid> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ServiceError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ServiceError::InvalidCursor)?;
    text.strip_prefix(CURSOR_VERSION)
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or(ServiceError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(f: impl FnOnce(&mut AuditQuery)) -> AuditQuery {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn filters_parse_and_validate() {
        let f = parse_query(&AuditQuery::default()).unwrap();
        assert_eq!(f.limit, DEFAULT_LIMIT);
        assert_eq!(
            f,
            AuditFilter {
                limit: 50,
                ..AuditFilter::default()
            }
        );

        let f = parse_query(&query(|q| {
            q.since = Some("2026-01-01T00:00:00Z".into());
            q.until = Some("1767225601000".into());
            q.actor = Some("admin".into());
            q.target = Some(String::new());
            q.limit = Some("200".into());
        }))
        .unwrap();
        assert_eq!(f.since, Some(1_767_225_600_000));
        assert_eq!(f.until, Some(1_767_225_601_000));
        assert_eq!(f.actor.as_deref(), Some("admin"));
        assert_eq!(f.target, None);
        assert_eq!(f.limit, 200);

        for bad in [
            query(|q| q.limit = Some("0".into())),
            query(|q| q.limit = Some("201".into())),
            query(|q| q.limit = Some("ten".into())),
            query(|q| q.since = Some("yesterday".into())),
            query(|q| {
                q.since = Some("2".into());
                q.until = Some("1".into());
            }),
        ] {
            assert!(
                matches!(parse_query(&bad), Err(ServiceError::InvalidFilter(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for junk in ["!!", "YTE6", &URL_SAFE_NO_PAD.encode(format!("u1:{id}"))] {
            assert!(
                matches!(decode_cursor(junk), Err(ServiceError::InvalidCursor)),
                "{junk}"
            );
        }
    }
}
