//! Each project's policy (entitlement rules and secret metadata keys), compiled once and
//! cached, and the sealing of users' secret metadata values.

use std::sync::Arc;

use plugboard_connect::vault::Vault;
use plugboard_core::{
    Access, CompiledPolicy, ConnectedUser, Metadata, ProjectId, ProjectPolicy, UserId,
};
use plugboard_store::Store;
use serde_json::{Map, Value};

use crate::error::{ServiceError, ServiceResult};

/// How a secret metadata value is shown: this prefix, then its last 4 characters when it
/// is long enough to keep the rest hidden.
pub const SECRET_MASK: &str = "••••";

pub fn mask(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::masked_tail(&text, SECRET_MASK)
}

pub(crate) fn secrets_context(project: ProjectId, user: &UserId) -> Vec<u8> {
    format!("plugboard:user-secrets:{project}:{}", user.as_str()).into_bytes()
}

pub struct PolicyService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    /// Read by every connect, run and metadata change; a change on another node shows
    /// within the cache's lifetime.
    cache: moka::sync::Cache<ProjectId, Arc<CompiledPolicy>>,
}

impl PolicyService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>, ttl: std::time::Duration) -> Self {
        Self {
            store,
            vault,
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Parses and compiles a policy document.
    pub fn compile(document: Value) -> ServiceResult<CompiledPolicy> {
        let policy: ProjectPolicy = serde_json::from_value(document)
            .map_err(|e| ServiceError::InvalidPolicy(e.to_string()))?;
        CompiledPolicy::compile(policy).map_err(|e| ServiceError::InvalidPolicy(e.to_string()))
    }

    pub async fn compiled(&self, project: ProjectId) -> ServiceResult<Arc<CompiledPolicy>> {
        if let Some(hit) = self.cache.get(&project) {
            return Ok(hit);
        }
        let compiled = match self.store.get_project_policy(project).await? {
            Some(document) => Self::compile(document)?,
            None => CompiledPolicy::compile(ProjectPolicy::default())
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        };
        let compiled = Arc::new(compiled);
        self.cache.insert(project, compiled.clone());
        Ok(compiled)
    }

    pub(crate) fn remember(&self, project: ProjectId, compiled: Arc<CompiledPolicy>) {
        self.cache.insert(project, compiled);
    }

    /// What the user may not use.
    pub async fn access(&self, user: &ConnectedUser) -> ServiceResult<Access> {
        let compiled = self.compiled(user.project_id).await?;
        Ok(compiled.access(&user.user_id, &user.meta))
    }

    /// The user's secret metadata values, in clear (an empty map when it has none).
    pub async fn secrets(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> ServiceResult<Map<String, Value>> {
        match self.store.get_user_secrets(project, user).await? {
            None => Ok(Map::new()),
            Some(sealed) => {
                let opened = self
                    .vault
                    .open(&sealed, &secrets_context(project, user))
                    .map_err(|e| ServiceError::Internal(format!("user secrets: {e}")))?;
                serde_json::from_slice(opened.as_bytes())
                    .map_err(|e| ServiceError::Internal(format!("user secrets: {e}")))
            }
        }
    }

    pub(crate) fn seal_secrets(
        &self,
        project: ProjectId,
        user: &UserId,
        secrets: &Map<String, Value>,
    ) -> ServiceResult<String> {
        let json =
            serde_json::to_vec(secrets).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.vault
            .seal(&json, &secrets_context(project, user))
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The metadata a workflow sees: masked secret values replaced by the real ones.
    pub async fn revealed_meta(&self, user: &ConnectedUser) -> ServiceResult<(Value, Vec<String>)> {
        let compiled = self.compiled(user.project_id).await?;
        let mut meta = user.meta.as_map().clone();
        let mut values = Vec::new();
        let has_secrets = compiled
            .policy
            .secret_metadata_keys
            .iter()
            .any(|key| meta.get(key).is_some_and(is_mask));
        if !has_secrets {
            return Ok((Value::Object(meta), values));
        }
        let secrets = self.secrets(user.project_id, &user.user_id).await?;
        for (key, value) in secrets {
            if compiled.is_secret_key(&key) && meta.get(&key).is_some_and(is_mask) {
                collect_strings(&value, &mut values);
                meta.insert(key, value);
            }
        }
        Ok((Value::Object(meta), values))
    }
}

pub(crate) fn is_mask(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(SECRET_MASK))
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        other => out.push(other.to_string()),
    }
}

/// Moves the values of secret keys out of `meta` (leaving their masks) into `secrets`.
/// A value equal to the mask already shown keeps the stored secret, so a client may send
/// back what it read; a removed key drops its secret. Returns whether `secrets` changed.
pub(crate) fn split_secrets(
    policy: &CompiledPolicy,
    meta: &Metadata,
    secrets: &mut Map<String, Value>,
) -> (Metadata, bool) {
    let mut shown = meta.as_map().clone();
    let mut changed = false;
    for key in &policy.policy.secret_metadata_keys {
        match shown.get(key).cloned() {
            None => changed |= secrets.remove(key).is_some(),
            Some(value) => {
                let unchanged = secrets
                    .get(key)
                    .is_some_and(|stored| Value::String(mask(stored)) == value);
                if !unchanged {
                    shown.insert(key.clone(), Value::String(mask(&value)));
                    secrets.insert(key.clone(), value);
                    changed = true;
                }
            }
        }
    }
    (Metadata::from_stored(shown), changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_leave_masks_and_masks_keep_secrets() {
        let policy = CompiledPolicy::compile(ProjectPolicy {
            secret_metadata_keys: vec!["apiKey".into()],
            ..Default::default()
        })
        .unwrap();
        let meta = Metadata::from_value(
            json!({ "apiKey": "sk_live_0123456789abcd", "plan": "pro" }),
            &Default::default(),
        )
        .unwrap();
        let mut secrets = Map::new();
        let (shown, changed) = split_secrets(&policy, &meta, &mut secrets);
        assert!(changed);
        assert_eq!(shown.as_map()["apiKey"], "••••abcd");
        assert_eq!(secrets["apiKey"], "sk_live_0123456789abcd");
        let (again, changed) = split_secrets(&policy, &shown, &mut secrets);
        assert!(!changed);
        assert_eq!(again, shown);
        let gone = Metadata::from_value(json!({ "plan": "pro" }), &Default::default()).unwrap();
        let (_, changed) = split_secrets(&policy, &gone, &mut secrets);
        assert!(changed && secrets.is_empty());
        assert_eq!(mask(&json!("short")), SECRET_MASK);
    }
}
