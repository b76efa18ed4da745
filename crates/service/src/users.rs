use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_core::metadata::MAX_INDEXED_VALUE_CHARS;
use plugboard_core::{
    AccessChange, ConnectedUser, CredentialStatus, ErasedCounts, IntegrationKey, LossPolicy,
    Metadata, MetadataLimits, OutboxEvent, ProjectId, UserCount, UserFilter, UserId, now_millis,
};
use plugboard_store::{MetadataWrite, Store, StoreError};
use serde_json::Value;
use serde_json::json;

use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::ServiceSettings;
use crate::error::{ServiceError, ServiceResult};
use crate::last_seen::LastSeenTracker;
use crate::policy::{PolicyService, split_secrets};
use crate::projects::not_found_as;
use crate::tokens::TokenVerifier;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;
pub const MAX_META_FILTERS: usize = 8;
pub const MAX_QUERY_CHARS: usize = 256;
/// Attempts at a read-modify-write of metadata before giving up with `ConcurrentUpdate`.
const METADATA_WRITE_ATTEMPTS: usize = 8;

/// A request to list users, as received (cursor still opaque).
#[derive(Debug, Clone, Default)]
pub struct UserListQuery {
    pub q: Option<String>,
    pub meta: Vec<(String, String)>,
    pub suspended: Option<bool>,
    /// Only users who connected this integration (its key).
    pub integration: Option<String>,
    /// Only users holding a credential in this status (`VALID`, `INVALID`, `PENDING`),
    /// of `integration` when given.
    pub credential_status: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserList {
    pub users: Vec<ConnectedUser>,
    pub next_cursor: Option<String>,
}

type UserKey = (ProjectId, UserId);

/// What must follow when a user's entitlements change (stopping or disconnecting what
/// was lost); the workflows service provides it.
#[async_trait::async_trait]
pub trait AccessHooks: Send + Sync {
    async fn access_changed(
        &self,
        user: &ConnectedUser,
        change: &AccessChange,
        on_loss: LossPolicy,
    ) -> ServiceResult<()>;
}

/// The `data` of `entitlement.changed`.
pub fn entitlement_payload(user: &UserId, change: &AccessChange, on_loss: LossPolicy) -> Value {
    let mut data = serde_json::to_value(change).unwrap_or_default();
    data["userId"] = json!(user.as_str());
    data["onLoss"] = serde_json::to_value(on_loss).unwrap_or_default();
    data
}

pub struct UsersService {
    store: Arc<dyn Store>,
    tokens: Arc<TokenVerifier>,
    last_seen: Arc<LastSeenTracker>,
    limits: MetadataLimits,
    policy: Arc<PolicyService>,
    hooks: std::sync::OnceLock<std::sync::Weak<dyn AccessHooks>>,
    /// Users recently seen by SDK calls, so a busy user costs no database read per call.
    cache: Option<Cache<UserKey, Arc<ConnectedUser>>>,
}

impl UsersService {
    pub fn new(
        store: Arc<dyn Store>,
        tokens: Arc<TokenVerifier>,
        last_seen: Arc<LastSeenTracker>,
        policy: Arc<PolicyService>,
        settings: &ServiceSettings,
    ) -> Self {
        let cache = settings.user_cache_ttl.map(|ttl| {
            Cache::builder()
                .max_capacity(settings.user_cache_capacity)
                .time_to_live(ttl)
                .build()
        });
        Self {
            store,
            tokens,
            last_seen,
            limits: settings.metadata_limits,
            policy,
            hooks: std::sync::OnceLock::new(),
            cache,
        }
    }

    /// Connects the service that applies lost entitlements (set once, at startup).
    pub fn set_hooks(&self, hooks: std::sync::Weak<dyn AccessHooks>) {
        let _ = self.hooks.set(hooks);
    }

    pub fn limits(&self) -> &MetadataLimits {
        &self.limits
    }

    /// Resolves a user token to its (possibly new) user, as every SDK call does. A user
    /// exists from the first valid token that names it.
    pub async fn authenticate(
        &self,
        project: ProjectId,
        token: &str,
    ) -> ServiceResult<ConnectedUser> {
        let now = now_millis();
        let claims = self
            .tokens
            .verify(project, token, now.div_euclid(1000))
            .await?;
        let key = (project, claims.user_id);
        let user = match self.cache.as_ref().and_then(|c| c.get(&key)) {
            Some(user) => user,
            None => {
                let user = match self.store.get_user(project, &key.1).await? {
                    Some(user) => user,
                    None => {
                        let created = OutboxEvent::new(
                            project,
                            "user.created",
                            json!({ "userId": key.1.as_str(), "meta": {} }),
                            now,
                        );
                        self.store
                            .ensure_user(project, &key.1, now, Some(&created))
                            .await?
                    }
                };
                self.remember(&user)
            }
        };
        if user.suspended {
            return Err(ServiceError::UserSuspended);
        }
        self.last_seen.touch(project, &user.user_id, now);
        Ok(self.with_last_seen(ConnectedUser::clone(&user)))
    }

    /// Caches `user` unless the cache already holds a newer version of the same row
    /// (a slow read must not overwrite a later write).
    fn remember(&self, user: &ConnectedUser) -> Arc<ConnectedUser> {
        let user = Arc::new(user.clone());
        if let Some(cache) = &self.cache {
            let key = (user.project_id, user.user_id.clone());
            cache.entry(key).and_compute_with(|cached| match cached {
                Some(entry)
                    if entry.value().seq == user.seq && entry.value().version >= user.version =>
                {
                    Op::Nop
                }
                _ => Op::Put(user.clone()),
            });
        }
        user
    }

    fn forget(&self, project: ProjectId, user: &UserId) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&(project, user.clone()));
        }
    }

    pub async fn get(&self, project: ProjectId, user: &UserId) -> ServiceResult<ConnectedUser> {
        let user = self
            .store
            .get_user(project, user)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        Ok(self.with_last_seen(user))
    }

    /// Creates the user with `meta`, or replaces the metadata of an existing one.
    /// Returns the user and whether it was created.
    pub async fn put(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: Value,
    ) -> ServiceResult<(ConnectedUser, bool)> {
        let meta = Metadata::from_value(meta, &self.limits)?;
        let policy = self.policy.compiled(project).await?;
        let mut secrets = serde_json::Map::new();
        let (shown, has_secrets) = split_secrets(&policy, &meta, &mut secrets);
        let sealed = has_secrets
            .then(|| self.policy.seal_secrets(project, user, &secrets))
            .transpose()?;
        let now = now_millis();
        let created = OutboxEvent::new(
            project,
            "user.created",
            json!({ "userId": user.as_str(), "meta": shown.as_map() }),
            now,
        );
        match self
            .store
            .create_user(project, user, &shown, sealed.as_deref(), now, &[created])
            .await
        {
            Ok(created) => {
                self.remember(&created);
                Ok((created, true))
            }
            Err(StoreError::Conflict(_)) => {
                let replaced = self
                    .update_meta(project, user, |_| Ok(meta.clone()))
                    .await?;
                Ok((replaced, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a JSON Merge Patch to the user's metadata.
    pub async fn patch_meta(
        &self,
        project: ProjectId,
        user: &UserId,
        patch: Value,
    ) -> ServiceResult<ConnectedUser> {
        if !patch.is_object() {
            return Err(plugboard_core::MetadataError::NotAnObject.into());
        }
        let limits = self.limits;
        self.update_meta(project, user, |current| {
            Ok(current.merge_patch(patch.clone(), &limits)?)
        })
        .await
    }

    /// Replaces the user's metadata as a whole.
    pub async fn replace_meta(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: Value,
    ) -> ServiceResult<ConnectedUser> {
        let meta = Metadata::from_value(meta, &self.limits)?;
        self.update_meta(project, user, |_| Ok(meta.clone())).await
    }

    async fn update_meta(
        &self,
        project: ProjectId,
        user: &UserId,
        compute: impl Fn(&Metadata) -> ServiceResult<Metadata>,
    ) -> ServiceResult<ConnectedUser> {
        let policy = self.policy.compiled(project).await?;
        for _ in 0..METADATA_WRITE_ATTEMPTS {
            let current = self
                .store
                .get_user(project, user)
                .await?
                .ok_or(ServiceError::UserNotFound)?;
            let (meta, sealed) = self
                .hide_secrets(&policy, &current, compute(&current.meta)?)
                .await?;
            let now = now_millis();
            let before = policy.access(user, &current.meta);
            let change = before.change_to(&policy.access(user, &meta));
            let mut events = vec![OutboxEvent::new(
                project,
                "user.metadata_updated",
                json!({ "userId": user.as_str(), "meta": meta.as_map() }),
                now,
            )];
            if !change.is_empty() {
                events.push(OutboxEvent::new(
                    project,
                    "entitlement.changed",
                    entitlement_payload(user, &change, policy.on_loss()),
                    now,
                ));
            }
            let write = MetadataWrite {
                project_id: project,
                user_id: user,
                meta: &meta,
                expected_version: current.version,
                now,
                secrets_sealed: sealed.as_deref(),
                events: &events,
            };
            match self.store.write_metadata(write).await {
                Ok(updated) => {
                    self.remember(&updated);
                    if !change.is_empty() {
                        self.apply_access_change(&updated, &change, policy.on_loss())
                            .await?;
                    }
                    return Ok(self.with_last_seen(updated));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound) => return Err(ServiceError::UserNotFound),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::ConcurrentUpdate)
    }

    /// The metadata to store (secret values replaced by their masks) and, when the
    /// secret values changed, their new sealed form.
    async fn hide_secrets(
        &self,
        policy: &plugboard_core::CompiledPolicy,
        current: &ConnectedUser,
        meta: Metadata,
    ) -> ServiceResult<(Metadata, Option<String>)> {
        // Secret values left as their stored masks change nothing: no need to open them.
        let untouched = policy.policy.secret_metadata_keys.iter().all(|key| {
            let now = meta.as_map().get(key);
            now == current.meta.as_map().get(key) && now.is_none_or(crate::policy::is_mask)
        });
        if untouched {
            return Ok((meta, None));
        }
        let mut secrets = self
            .policy
            .secrets(current.project_id, &current.user_id)
            .await?;
        let (shown, changed) = split_secrets(policy, &meta, &mut secrets);
        let sealed = changed
            .then(|| {
                self.policy
                    .seal_secrets(current.project_id, &current.user_id, &secrets)
            })
            .transpose()?;
        Ok((shown, sealed))
    }

    /// Applies the project's policy to what the user just lost (and regained).
    pub(crate) async fn apply_access_change(
        &self,
        user: &ConnectedUser,
        change: &AccessChange,
        on_loss: LossPolicy,
    ) -> ServiceResult<()> {
        match self.hooks.get().and_then(std::sync::Weak::upgrade) {
            Some(hooks) => hooks.access_changed(user, change, on_loss).await,
            None => Ok(()),
        }
    }

    pub async fn set_suspended(
        &self,
        project: ProjectId,
        user: &UserId,
        suspended: bool,
    ) -> ServiceResult<ConnectedUser> {
        let now = now_millis();
        let kind = if suspended {
            "user.suspended"
        } else {
            "user.resumed"
        };
        let event = OutboxEvent::new(project, kind, json!({ "userId": user.as_str() }), now);
        let user = self
            .store
            .set_suspended(project, user, suspended, now, &[event])
            .await
            .map_err(not_found_as(ServiceError::UserNotFound))?;
        self.remember(&user);
        Ok(self.with_last_seen(user))
    }

    pub async fn erase(&self, project: ProjectId, user: &UserId) -> ServiceResult<ErasedCounts> {
        let event = OutboxEvent::new(
            project,
            "user.deleted",
            json!({ "userId": user.as_str() }),
            now_millis(),
        );
        let erased = self.store.delete_user(project, user, &[event]).await;
        self.forget(project, user);
        self.last_seen.forget(project, user);
        erased.map_err(not_found_as(ServiceError::UserNotFound))
    }

    pub async fn list(&self, project: ProjectId, query: UserListQuery) -> ServiceResult<UserList> {
        let filter = self.resolve_filter(project, query).await?;
        let page = self.store.list_users(project, &filter).await?;
        Ok(UserList {
            users: page
                .users
                .into_iter()
                .map(|u| self.with_last_seen(u))
                .collect(),
            next_cursor: page.next_before_seq.map(encode_cursor),
        })
    }

    /// How many users `query` matches (its `limit` and `cursor` are ignored), counted up
    /// to `cap`: counting is a scan of the matching index entries, so the cap bounds it.
    pub async fn count(
        &self,
        project: ProjectId,
        query: UserListQuery,
        cap: u64,
    ) -> ServiceResult<UserCount> {
        let query = UserListQuery {
            limit: None,
            cursor: None,
            ..query
        };
        let filter = self.resolve_filter(project, query).await?;
        Ok(self.store.count_users(project, &filter, cap).await?)
    }

    /// Parses the query and resolves its integration key to the project's integration.
    async fn resolve_filter(
        &self,
        project: ProjectId,
        mut query: UserListQuery,
    ) -> ServiceResult<UserFilter> {
        let integration = match query.integration.take().filter(|k| !k.is_empty()) {
            None => None,
            Some(key) => {
                let parsed = IntegrationKey::parse(&key).map_err(|_| {
                    ServiceError::InvalidFilter(format!("integration: `{key}` is not a key"))
                })?;
                let found = self
                    .store
                    .get_project_integration(project, &parsed)
                    .await?
                    .ok_or(ServiceError::IntegrationNotFound(key))?;
                Some(found.id)
            }
        };
        let credential_status = query
            .credential_status
            .take()
            .filter(|s| !s.is_empty())
            .map(|raw| {
                CredentialStatus::parse(&raw).ok_or_else(|| {
                    ServiceError::InvalidFilter(format!(
                        "credentialStatus must be VALID, INVALID or PENDING, not `{raw}`"
                    ))
                })
            })
            .transpose()?;
        Ok(UserFilter {
            integration,
            credential_status,
            ..parse_filter(query)?
        })
    }

    fn with_last_seen(&self, mut user: ConnectedUser) -> ConnectedUser {
        if let Some(pending) = self.last_seen.peek(user.project_id, &user.user_id) {
            user.last_seen_at = Some(user.last_seen_at.map_or(pending, |at| at.max(pending)));
        }
        user
    }
}

fn parse_filter(query: UserListQuery) -> ServiceResult<UserFilter> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ServiceError::InvalidFilter(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    if query.meta.len() > MAX_META_FILTERS {
        return Err(ServiceError::InvalidFilter(format!(
            "at most {MAX_META_FILTERS} meta.* filters"
        )));
    }
    if let Some((key, _)) = query
        .meta
        .iter()
        .find(|(_, v)| v.chars().count() > MAX_INDEXED_VALUE_CHARS)
    {
        return Err(ServiceError::InvalidFilter(format!(
            "meta.{key}: values longer than {MAX_INDEXED_VALUE_CHARS} characters are not searchable"
        )));
    }
    if query
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ServiceError::InvalidFilter(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let has_nul = |s: &str| s.contains('\0');
    if query.q.as_deref().is_some_and(has_nul)
        || query.meta.iter().any(|(k, v)| has_nul(k) || has_nul(v))
    {
        return Err(ServiceError::InvalidFilter(
            "filters must not contain the NUL character".into(),
        ));
    }
    let before_seq = query.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok(UserFilter {
        q: query.q.filter(|q| !q.is_empty()),
        meta: query.meta,
        suspended: query.suspended,
        integration: None,
        credential_status: None,
        limit,
        before_seq,
    })
}

const CURSOR_VERSION: &str = "u1:";

fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{seq}"))
}

fn decode_cursor(cursor: &str) -> ServiceResult<i64> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ServiceError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ServiceError::InvalidCursor)?;
    text.strip_prefix(CURSOR_VERSION)
        .and_then(|n| n.parse().ok())
        .ok_or(ServiceError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for junk in ["", "!!", "dTE6", "eDo1", &URL_SAFE_NO_PAD.encode("u1:abc")] {
            assert!(
                matches!(decode_cursor(junk), Err(ServiceError::InvalidCursor)),
                "{junk}"
            );
        }
    }

    #[test]
    fn filter_limits_are_explicit() {
        let bad = |q: UserListQuery| parse_filter(q).is_err();
        assert!(bad(UserListQuery {
            limit: Some(0),
            ..Default::default()
        }));
        assert!(bad(UserListQuery {
            limit: Some(501),
            ..Default::default()
        }));
        assert!(!bad(UserListQuery {
            limit: Some(500),
            ..Default::default()
        }));
        let many = (0..9).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(bad(UserListQuery {
            meta: many,
            ..Default::default()
        }));
        let long = vec![("k".into(), "v".repeat(257))];
        assert!(bad(UserListQuery {
            meta: long,
            ..Default::default()
        }));
    }
}
