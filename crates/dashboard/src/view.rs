//! Formatting shared by the pages: dates, links, and redaction of anything secret-looking.

use plugboard_core::{UnixMillis, millis_to_datetime};
use serde_json::Value;

/// What replaces a secret value on screen.
pub const MASK: &str = "••••••••";
/// Longest JSON document shown in full; longer ones are cut.
const MAX_SHOWN_BYTES: usize = 16 * 1024;

pub fn when(ms: UnixMillis) -> String {
    millis_to_datetime(ms)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

pub fn when_opt(ms: Option<UnixMillis>) -> String {
    ms.map(when).unwrap_or_else(|| "—".to_owned())
}

/// Percent-encodes one path segment.
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string (`a=1&b=2`) from pairs, empty values left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Whether a key names something that must not be shown (`apiKey`, `access_token`,
/// `Authorization`, `password`, …).
pub fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "apikey",
        "authorization",
        "cookie",
        "credential",
        "privatekey",
        "signature",
        "session",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// A copy of `value` with the values of secret-looking keys masked and bearer
/// credentials in strings cut.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if is_secret_key(k) && !v.is_null() {
                        Value::String(MASK.to_owned())
                    } else {
                        redact(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_text(s)),
        other => other.clone(),
    }
}

/// Cuts what follows `Bearer `/`Basic ` in free text (errors quote headers at times).
pub fn redact_text(text: &str) -> String {
    let mut out = text.to_owned();
    for scheme in ["Bearer ", "bearer ", "Basic ", "basic "] {
        let mut from = 0;
        while let Some(at) = out[from..].find(scheme) {
            let start = from + at + scheme.len();
            let end = out[start..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
                .map_or(out.len(), |i| start + i);
            if end > start {
                out.replace_range(start..end, MASK);
            }
            from = start + MASK.len().min(out.len() - start);
        }
    }
    out
}

/// Pretty JSON of a redacted value, cut when very long.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&redact(value)).unwrap_or_default();
    if text.len() > MAX_SHOWN_BYTES {
        let mut cut = MAX_SHOWN_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut)");
    }
    text
}

/// A metadata value as shown in a table cell.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_wherever_they_are() {
        let shown = redact(&json!({
            "apiKey": "k_123", "nested": {"access_token": "t", "ok": 1},
            "list": [{"Authorization": "Bearer abc"}], "note": "sent Bearer xyz, then",
            "Email": "john@bookface.com"
        }));
        assert_eq!(shown["apiKey"], MASK);
        assert_eq!(shown["nested"]["access_token"], MASK);
        assert_eq!(shown["nested"]["ok"], 1);
        assert_eq!(shown["list"][0]["Authorization"], MASK);
        assert_eq!(shown["note"], format!("sent Bearer {MASK}, then"));
        assert_eq!(shown["Email"], "john@bookface.com");
    }

    #[test]
    fn segments_and_queries_are_encoded() {
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(query(&[("q", "a&b"), ("x", "")]), "q=a%26b");
    }
}
