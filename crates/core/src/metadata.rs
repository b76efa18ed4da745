//! Connected-user metadata: a JSON object the SaaS attaches to each user.
//!
//! Updates are JSON Merge Patches (RFC 7396). Top-level `name`/`email` keys in any casing
//! are stored as `Name`/`Email`, the spelling Paragon's SDK and docs use. Every stored
//! value respects [`MetadataLimits`]; a violation stores nothing.

use serde::Serialize;
use serde_json::{Map, Value};

/// Explicit bounds on what one user's metadata may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataLimits {
    /// Size of the whole object serialized as compact JSON, in bytes.
    pub max_bytes: usize,
    /// Nesting depth of objects and arrays; the metadata object itself is depth 1.
    pub max_depth: usize,
    /// Length of any key at any depth, in characters.
    pub max_key_chars: usize,
    /// Number of top-level keys.
    pub max_top_level_keys: usize,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 8,
            max_key_chars: 128,
            max_top_level_keys: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata must be a JSON object")]
    NotAnObject,
    #[error("metadata is {size} bytes once serialized; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("metadata nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("metadata key `{key}…` is longer than {limit} characters")]
    KeyTooLong { key: String, limit: usize },
    #[error("metadata keys must not be empty")]
    EmptyKey,
    #[error("metadata keys and strings must not contain the NUL character (U+0000)")]
    NulCharacter,
    #[error("metadata has {count} top-level keys; the limit is {limit}")]
    TooManyKeys { count: usize, limit: usize },
}

impl MetadataError {
    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnObject => "metadata_not_object",
            Self::TooLarge { .. } => "metadata_too_large",
            Self::TooDeep { .. } => "metadata_too_deep",
            Self::KeyTooLong { .. } => "metadata_key_too_long",
            Self::EmptyKey => "metadata_key_empty",
            Self::NulCharacter => "metadata_nul_character",
            Self::TooManyKeys { .. } => "metadata_too_many_keys",
        }
    }
}

/// Longest top-level scalar value (in characters) that is indexed for `meta.<Key>=` search.
/// Longer values are stored but not searchable.
pub const MAX_INDEXED_VALUE_CHARS: usize = 256;

/// A validated, normalised metadata object.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Parses a whole metadata object (a replacement, not a patch).
    pub fn from_value(value: Value, limits: &MetadataLimits) -> Result<Self, MetadataError> {
        let Value::Object(map) = value else {
            return Err(MetadataError::NotAnObject);
        };
        let mut normalised = normalise_top_level(map);
        normalised.retain(|_, v| !v.is_null());
        let metadata = Self(normalised);
        metadata.check(limits)?;
        Ok(metadata)
    }

    /// Reads metadata as stored by this crate earlier; trusted, so not re-validated.
    pub fn from_stored(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// Applies a JSON Merge Patch: objects merge deeply, `null` deletes a key, anything
    /// else replaces. The result is validated as a whole.
    pub fn merge_patch(
        &self,
        patch: Value,
        limits: &MetadataLimits,
    ) -> Result<Self, MetadataError> {
        let Value::Object(patch) = patch else {
            return Err(MetadataError::NotAnObject);
        };
        let patch = normalise_top_level(patch);
        let mut merged = Value::Object(self.0.clone());
        merge_into(&mut merged, Value::Object(patch));
        let Value::Object(map) = merged else {
            unreachable!("merging an object patch always yields an object")
        };
        let metadata = Self(map);
        metadata.check(limits)?;
        Ok(metadata)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.0).expect("a JSON map always serializes")
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The `(key, value)` pairs that `meta.<Key>=<value>` search can find: top-level
    /// strings, numbers and booleans, in their query-string spelling.
    pub fn indexed_entries(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), indexable_text(value)?)))
            .collect()
    }

    fn check(&self, limits: &MetadataLimits) -> Result<(), MetadataError> {
        if self.0.len() > limits.max_top_level_keys {
            return Err(MetadataError::TooManyKeys {
                count: self.0.len(),
                limit: limits.max_top_level_keys,
            });
        }
        check_object(&self.0, 1, limits)?;
        let size = self.to_json_string().len();
        if size > limits.max_bytes {
            return Err(MetadataError::TooLarge {
                size,
                limit: limits.max_bytes,
            });
        }
        Ok(())
    }
}

/// The text a scalar is matched by in search, or `None` when it is not indexed.
pub fn indexable_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (text.chars().count() <= MAX_INDEXED_VALUE_CHARS).then_some(text)
}

/// Spells `name`/`email` in any casing as `Name`/`Email` and trims keys, as the SDK does.
pub fn normalise_key(key: &str) -> String {
    let trimmed = key.trim();
    if trimmed.eq_ignore_ascii_case("name") {
        "Name".to_owned()
    } else if trimmed.eq_ignore_ascii_case("email") {
        "Email".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn normalise_top_level(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(key, value)| (normalise_key(&key), value))
        .collect()
}

fn merge_into(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!()
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(&key);
        } else {
            merge_into(target.entry(key).or_insert(Value::Null), value);
        }
    }
}

fn check_object(
    map: &Map<String, Value>,
    depth: usize,
    limits: &MetadataLimits,
) -> Result<(), MetadataError> {
    if depth > limits.max_depth {
        return Err(MetadataError::TooDeep {
            limit: limits.max_depth,
        });
    }
    for (key, value) in map {
        if key.is_empty() {
            return Err(MetadataError::EmptyKey);
        }
        if key.contains('\0') {
            return Err(MetadataError::NulCharacter);
        }
        if key.chars().count() > limits.max_key_chars {
            return Err(MetadataError::KeyTooLong {
                key: key.chars().take(32).collect(),
                limit: limits.max_key_chars,
            });
        }
        check_value(value, depth, limits)?;
    }
    Ok(())
}

fn check_value(value: &Value, depth: usize, limits: &MetadataLimits) -> Result<(), MetadataError> {
    match value {
        Value::Object(map) => check_object(map, depth + 1, limits),
        Value::Array(items) => {
            if depth + 1 > limits.max_depth {
                return Err(MetadataError::TooDeep {
                    limit: limits.max_depth,
                });
            }
            items
                .iter()
                .try_for_each(|item| check_value(item, depth + 1, limits))
        }
        // PostgreSQL text cannot hold U+0000; refusing it keeps both backends alike.
        Value::String(s) if s.contains('\0') => Err(MetadataError::NulCharacter),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> MetadataLimits {
        MetadataLimits::default()
    }

    fn meta(value: Value) -> Metadata {
        Metadata::from_value(value, &limits()).unwrap()
    }

    #[test]
    fn merge_patch_follows_rfc7396() {
        let base = meta(json!({"a": {"b": 1, "c": 2}, "keep": true, "arr": [1, 2]}));
        let merged = base
            .merge_patch(
                json!({"a": {"b": null, "d": {"e": 1}}, "arr": [3], "new": "x"}),
                &limits(),
            )
            .unwrap();
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            json!({"a": {"c": 2, "d": {"e": 1}}, "keep": true, "arr": [3], "new": "x"})
        );
    }

    #[test]
    fn merge_patch_replaces_scalar_with_object_and_drops_nested_nulls() {
        let base = meta(json!({"a": 1}));
        let merged = base
            .merge_patch(json!({"a": {"x": null, "y": 2}}), &limits())
            .unwrap();
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            json!({"a": {"y": 2}})
        );
    }

    #[test]
    fn name_and_email_are_normalised_in_any_casing() {
        let m = meta(json!({"name": "Ada", " EMAIL ": "ada@x.io", "nAmE2": 1}));
        assert_eq!(m.get_str("Name"), Some("Ada"));
        assert_eq!(m.get_str("Email"), Some("ada@x.io"));
        assert!(m.as_map().contains_key("nAmE2"));
        let patched = m
            .merge_patch(json!({"EMAIL": "new@x.io"}), &limits())
            .unwrap();
        assert_eq!(patched.get_str("Email"), Some("new@x.io"));
        assert_eq!(patched.as_map().len(), 3);
    }

    #[test]
    fn limits_are_enforced() {
        let l = limits();
        assert_eq!(
            Metadata::from_value(json!([1]), &l),
            Err(MetadataError::NotAnObject)
        );
        let big = json!({"k": "x".repeat(70 * 1024)});
        assert!(matches!(
            Metadata::from_value(big, &l),
            Err(MetadataError::TooLarge { .. })
        ));
        let mut deep = json!(1);
        for _ in 0..9 {
            deep = json!({ "d": deep });
        }
        // The metadata object plus 8 nested objects: depth 9.
        assert_eq!(
            Metadata::from_value(deep.clone(), &l),
            Err(MetadataError::TooDeep { limit: 8 })
        );
        assert!(Metadata::from_value(deep["d"].clone(), &l).is_ok());
        let long_key = json!({ "k".repeat(129): 1 });
        assert!(matches!(
            Metadata::from_value(long_key, &l),
            Err(MetadataError::KeyTooLong { .. })
        ));
        let many: Map<String, Value> = (0..257).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(matches!(
            Metadata::from_value(Value::Object(many), &l),
            Err(MetadataError::TooManyKeys { count: 257, .. })
        ));
        assert_eq!(
            Metadata::from_value(json!({"": 1}), &l),
            Err(MetadataError::EmptyKey)
        );
    }

    #[test]
    fn nul_characters_are_refused() {
        for bad in [
            json!({"a\u{0}": 1}),
            json!({"a": "x\u{0}y"}),
            json!({"a": [{"b": "\u{0}"}]}),
        ] {
            assert_eq!(
                Metadata::from_value(bad, &limits()),
                Err(MetadataError::NulCharacter)
            );
        }
    }

    #[test]
    fn arrays_count_towards_depth() {
        let mut deep = json!(1);
        for _ in 0..8 {
            deep = json!([deep]);
        }
        assert!(matches!(
            Metadata::from_value(json!({ "a": deep }), &limits()),
            Err(MetadataError::TooDeep { .. })
        ));
    }

    #[test]
    fn patch_that_breaks_a_limit_is_refused_whole() {
        let base = meta(json!({"a": 1}));
        let err = base
            .merge_patch(json!({"b": "x".repeat(70 * 1024)}), &limits())
            .unwrap_err();
        assert_eq!(err.code(), "metadata_too_large");
    }

    #[test]
    fn indexed_entries_are_top_level_scalars() {
        let m = meta(json!({
            "Email": "a@b.c", "n": 42, "f": 1.5, "b": false,
            "obj": {"x": 1}, "arr": [1], "long": "x".repeat(300)
        }));
        let mut entries = m.indexed_entries();
        entries.sort();
        assert_eq!(
            entries,
            vec![
                ("Email".into(), "a@b.c".into()),
                ("b".into(), "false".into()),
                ("f".into(), "1.5".into()),
                ("n".into(), "42".into()),
            ]
        );
    }
}
