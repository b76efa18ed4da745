//! A project's environment variables (`env.NAME` in workflow templates): API base URLs,
//! shared tokens. Sealed together under the master key, write-only through the API (shown
//! as a preview), and scrubbed by value from what the task history records.

use std::sync::Arc;

use plugboard_connect::vault::Vault;
use plugboard_core::{ProjectId, now_millis};
use plugboard_store::{Store, StoreError};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

pub const MAX_VARIABLES: usize = 100;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_VALUE_CHARS: usize = 4096;
/// Values at least this long are scrubbed from execution records; shorter ones would
/// mangle unrelated text.
pub const MIN_SCRUBBED_CHARS: usize = 6;

pub fn env_context(project: ProjectId) -> Vec<u8> {
    format!("plugboard:project-env:{project}").into_bytes()
}

/// A variable as the API shows it: its name and the last characters of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub name: String,
    pub preview: String,
}

pub struct ProjectEnv {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    /// Read by every execution; a change on another node shows within the cache's lifetime.
    cache: moka::sync::Cache<ProjectId, Arc<Map<String, Value>>>,
}

impl ProjectEnv {
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

    /// The project's variables (an empty map when it has none).
    pub async fn variables(&self, project: ProjectId) -> ServiceResult<Arc<Map<String, Value>>> {
        if let Some(hit) = self.cache.get(&project) {
            return Ok(hit);
        }
        let variables = match self.store.get_project_env(project).await? {
            Some((_, sealed)) => {
                let opened = self
                    .vault
                    .open(&sealed, &env_context(project))
                    .map_err(|e| ServiceError::Internal(format!("project env: {e}")))?;
                serde_json::from_slice(opened.as_bytes())
                    .map_err(|e| ServiceError::Internal(format!("project env: {e}")))?
            }
            None => Map::new(),
        };
        let variables = Arc::new(variables);
        self.cache.insert(project, variables.clone());
        Ok(variables)
    }

    /// Replaces all of the project's variables.
    pub async fn replace(
        &self,
        project: ProjectId,
        variables: Map<String, Value>,
    ) -> ServiceResult<Vec<EnvEntry>> {
        validate(&variables)?;
        let json =
            serde_json::to_vec(&variables).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sealed = self
            .vault
            .seal(&json, &env_context(project))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .put_project_env(project, Uuid::new_v4(), &sealed, now_millis())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ServiceError::ProjectNotFound,
                other => other.into(),
            })?;
        self.cache.insert(project, Arc::new(variables.clone()));
        Ok(entries(&variables))
    }

    pub async fn describe(&self, project: ProjectId) -> ServiceResult<Vec<EnvEntry>> {
        Ok(entries(&*self.variables(project).await?))
    }
}

/// By name.
fn entries(variables: &Map<String, Value>) -> Vec<EnvEntry> {
    let mut entries: Vec<EnvEntry> = variables
        .iter()
        .map(|(name, value)| EnvEntry {
            name: name.clone(),
            preview: preview(value.as_str().unwrap_or_default()),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// `…` and the last 4 characters of values long enough to keep the rest hidden.
fn preview(value: &str) -> String {
    crate::masked_tail(value, "…")
}

fn validate(variables: &Map<String, Value>) -> ServiceResult<()> {
    let invalid = |msg: String| Err(ServiceError::InvalidInput(msg));
    if variables.len() > MAX_VARIABLES {
        return invalid(format!("at most {MAX_VARIABLES} variables"));
    }
    for (name, value) in variables {
        let well_formed = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return invalid(format!(
                "`{name}`: a name is 1 to {MAX_NAME_CHARS} of A-Z, 0-9 and _, not starting with a digit"
            ));
        }
        match value.as_str() {
            Some(text) if text.chars().count() <= MAX_VALUE_CHARS && !text.contains('\0') => {}
            Some(_) => {
                return invalid(format!(
                    "{name}: a value is a string of at most {MAX_VALUE_CHARS} characters, without U+0000"
                ));
            }
            None => return invalid(format!("{name}: a value is a string")),
        }
    }
    Ok(())
}

/// The values to scrub from what an execution records.
pub fn secrets_of(variables: &Map<String, Value>) -> Vec<String> {
    variables
        .values()
        .filter_map(Value::as_str)
        .filter(|v| v.chars().count() >= MIN_SCRUBBED_CHARS)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_and_values_are_checked() {
        assert!(validate(&map(json!({"SAAS_URL": "https://x", "TOKEN_2": ""}))).is_ok());
        for bad in [
            json!({"lower": "x"}),
            json!({"2X": "x"}),
            json!({"": "x"}),
            json!({"A": 1}),
            json!({"A": "a\u{0}"}),
        ] {
            assert!(validate(&map(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn previews_hide_short_values_entirely() {
        assert_eq!(preview("short"), "…");
        assert_eq!(preview("sk_live_0123456789"), "…6789");
    }
}
