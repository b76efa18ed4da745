//! URL templates: a URL with `{placeholder}`s filled in when a connection is made.
//!
//! Four kinds of placeholder exist, each naming where its value comes from:
//!
//! | placeholder | value |
//! |---|---|
//! | `{subdomain}` | a user input the provider file declares under `user_inputs` |
//! | `{token.instance_url}` | a field of the OAuth token response (dotted path) |
//! | `{callback.realmId}` | a query parameter of the OAuth redirect back to Plugboard |
//! | `{identity.accounts.0.base_uri}` | a field of the `account_id.request` response |
//!
//! A placeholder that opens the template (`{token.instance_url}/services/data`) stands for
//! a whole origin: its value must itself be an `https` URL without query or fragment.
//! Anywhere else a value is percent-encoded, so it can never add a path segment, a query,
//! a port or another host; empty values and the dot segments `.` and `..` are refused.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// A dotted path into a JSON document: `team.id`, `0.tenantId`, `accounts.0.base_uri`.
/// A segment made of digits also indexes arrays.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("a field path must not be empty".into());
        }
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        for segment in &segments {
            if segment.is_empty() {
                return Err(format!("`{raw}` has an empty segment"));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "`{raw}`: segments may hold only letters, digits, `_` and `-`"
                ));
            }
        }
        Ok(Self(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The value at this path, if every step exists.
    pub fn lookup<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(document, |current, segment| match current {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            })
    }

    /// The value at this path as text: strings as they are, numbers and booleans printed.
    /// `None` when the path is missing, `null`, an object or an array.
    pub fn lookup_scalar(&self, document: &Value) -> Option<String> {
        match self.lookup(document)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl TryFrom<String> for FieldPath {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<FieldPath> for String {
    fn from(path: FieldPath) -> String {
        path.to_string()
    }
}

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placeholder {
    /// `{key}`: a user input declared under `user_inputs`.
    Input(String),
    /// `{token.path}`: a field of the OAuth token response.
    Token(FieldPath),
    /// `{callback.param}`: a query parameter of the OAuth redirect.
    Callback(String),
    /// `{identity.path}`: a field of the `account_id.request` response.
    Identity(FieldPath),
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(key) => write!(f, "{{{key}}}"),
            Self::Token(path) => write!(f, "{{token.{path}}}"),
            Self::Callback(param) => write!(f, "{{callback.{param}}}"),
            Self::Identity(path) => write!(f, "{{identity.{path}}}"),
        }
    }
}

/// Where in the URL a placeholder sits, which decides how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Opens the template: the value is a whole `https` origin (and optional path).
    Base,
    /// Inside the host (`https://{subdomain}.zendesk.com`).
    Host,
    /// Anywhere after the host: path, query or fragment.
    Component,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder, Position),
}

/// A URL that may contain placeholders. Parsed when a provider file is read, so a
/// malformed placeholder is a load error, not a connect-time surprise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UrlTemplate {
    raw: String,
    parts: Vec<Part>,
}

impl UrlTemplate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = raw.char_indices();
        while let Some((start, c)) = chars.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '{' => return Err(format!("`{raw}`: nested `{{`")),
                            c => name.push(c),
                        }
                    }
                    if !closed {
                        return Err(format!("`{raw}`: `{{` is never closed"));
                    }
                    let placeholder =
                        parse_placeholder(&name).map_err(|e| format!("`{raw}`: {e}"))?;
                    let position = position_of(&raw[..start]);
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Placeholder(placeholder, position));
                }
                '}' => return Err(format!("`{raw}`: `}}` without an opening `{{`")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if parts.is_empty() {
            return Err("a URL must not be empty".into());
        }
        Ok(Self {
            raw: raw.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Every placeholder in order of appearance, with where it sits.
    pub fn placeholders(&self) -> impl Iterator<Item = (&Placeholder, Position)> {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder(p, pos) => Some((p, *pos)),
            Part::Literal(_) => None,
        })
    }

    /// Fills every placeholder with what `resolve` returns for it (already checked and
    /// encoded by [`encode_value`]), then parses the result and requires `https`.
    pub(crate) fn fill(
        &self,
        mut resolve: impl FnMut(&Placeholder, Position) -> Result<String, RenderError>,
    ) -> Result<Url, RenderError> {
        let mut out = String::with_capacity(self.raw.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(p, pos) => out.push_str(&resolve(p, *pos)?),
            }
        }
        let url = Url::parse(&out).map_err(|e| RenderError::InvalidUrl {
            url: out.clone(),
            reason: e.to_string(),
        })?;
        if url.scheme() != "https" && !is_loopback_http(&url) {
            return Err(RenderError::NotHttps { url: out });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(RenderError::InvalidUrl {
                url: out,
                reason: "it has no host".into(),
            });
        }
        Ok(url)
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for UrlTemplate {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<UrlTemplate> for String {
    fn from(template: UrlTemplate) -> String {
        template.raw
    }
}

/// Plain `http` to this machine, allowed so tests and the development sandbox can run a
/// provider on loopback. Whether a project may point an integration there is decided
/// by the server's settings (custom integrations are checked when saved).
pub fn is_loopback_http(url: &Url) -> bool {
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_placeholder(name: &str) -> Result<Placeholder, String> {
    match name.split_once('.') {
        None => {
            if is_input_key(name) {
                Ok(Placeholder::Input(name.to_owned()))
            } else {
                Err(format!(
                    "`{{{name}}}`: a user input key is lowercase letters, digits and `_`, starting with a letter"
                ))
            }
        }
        Some(("token", path)) => Ok(Placeholder::Token(FieldPath::parse(path)?)),
        Some(("identity", path)) => Ok(Placeholder::Identity(FieldPath::parse(path)?)),
        Some(("callback", param)) => {
            if !param.is_empty()
                && param
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                Ok(Placeholder::Callback(param.to_owned()))
            } else {
                Err(format!("`{{{name}}}`: not a query parameter name"))
            }
        }
        Some((namespace, _)) => Err(format!(
            "`{{{name}}}`: unknown namespace `{namespace}` (expected token, callback or identity)"
        )),
    }
}

/// The rule for user input keys: `[a-z][a-z0-9_]*`.
pub(crate) fn is_input_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Decides where a placeholder sits from the raw template text before it.
fn position_of(before: &str) -> Position {
    if before.is_empty() {
        return Position::Base;
    }
    match before.find("://") {
        Some(i) if !before[i + 3..].contains(['/', '?', '#']) => Position::Host,
        _ => Position::Component,
    }
}

/// Checks one value for its position and returns the text to put in the URL.
pub(crate) fn encode_value(
    placeholder: &Placeholder,
    position: Position,
    value: &str,
) -> Result<String, RenderError> {
    match position {
        Position::Base => {
            let invalid = |reason: &str| RenderError::InvalidBase {
                placeholder: placeholder.to_string(),
                reason: reason.to_owned(),
            };
            let url = Url::parse(value).map_err(|e| invalid(&e.to_string()))?;
            if url.scheme() != "https" {
                return Err(invalid("it does not use https"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid("it has a query or a fragment"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid("it carries credentials"));
            }
            Ok(url.as_str().trim_end_matches('/').to_owned())
        }
        Position::Host | Position::Component => {
            if value.is_empty() || value == "." || value == ".." {
                return Err(RenderError::Unsafe {
                    placeholder: placeholder.to_string(),
                    value: value.to_owned(),
                });
            }
            Ok(percent_encode(value))
        }
    }
}

/// Percent-encodes every byte but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Why a template could not be turned into a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{placeholder}: no value was supplied")]
    Missing { placeholder: String },
    #[error("{placeholder}: this provider declares no such user input")]
    Undeclared { placeholder: String },
    #[error("{placeholder}: {value:?} does not match the pattern `{pattern}`")]
    PatternMismatch {
        placeholder: String,
        value: String,
        pattern: String,
    },
    #[error("{placeholder}: the value is an object, an array or null, not text")]
    NotScalar { placeholder: String },
    #[error("{placeholder}: {value:?} is not allowed in a URL (empty, `.` or `..`)")]
    Unsafe { placeholder: String, value: String },
    #[error("{placeholder}: the value must be an https URL: {reason}")]
    InvalidBase { placeholder: String, reason: String },
    #[error("{url:?} is not a valid URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{url:?} does not use https")]
    NotHttps { url: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_positions() {
        let t = UrlTemplate::parse(
            "https://{shop}.myshopify.com/admin/{token.a.b}?x={callback.realmId}",
        )
        .unwrap();
        let found: Vec<_> = t
            .placeholders()
            .map(|(p, pos)| (p.to_string(), pos))
            .collect();
        assert_eq!(
            found,
            vec![
                ("{shop}".to_owned(), Position::Host),
                ("{token.a.b}".to_owned(), Position::Component),
                ("{callback.realmId}".to_owned(), Position::Component),
            ]
        );
        let base = UrlTemplate::parse("{identity.api_endpoint}/3.0").unwrap();
        assert_eq!(base.placeholders().next().unwrap().1, Position::Base);
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in [
            "https://{x.zendesk.com",
            "https://x}.zendesk.com",
            "https://{{x}}.zendesk.com",
            "https://{}.zendesk.com",
            "https://{Sub}.zendesk.com",
            "https://{secret.x}.zendesk.com",
            "https://a.com/{token.}",
            "",
        ] {
            assert!(UrlTemplate::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn field_paths_walk_objects_and_arrays() {
        let doc =
            serde_json::json!({"accounts": [{"id": 7, "uri": "https://a"}], "team": {"id": "T1"}});
        let get = |p: &str| FieldPath::parse(p).unwrap().lookup_scalar(&doc);
        assert_eq!(get("team.id").as_deref(), Some("T1"));
        assert_eq!(get("accounts.0.id").as_deref(), Some("7"));
        assert_eq!(get("accounts.1.id"), None);
        assert_eq!(get("accounts"), None);
    }

    #[test]
    fn component_values_are_encoded_and_dot_segments_refused() {
        let p = Placeholder::Input("x".into());
        assert_eq!(
            encode_value(&p, Position::Component, "a/b?c#d e").unwrap(),
            "a%2Fb%3Fc%23d%20e"
        );
        for bad in ["", ".", ".."] {
            assert!(encode_value(&p, Position::Component, bad).is_err());
        }
    }

    #[test]
    fn base_values_must_be_plain_https_origins() {
        let p = Placeholder::Token(FieldPath::parse("instance_url").unwrap());
        assert_eq!(
            encode_value(&p, Position::Base, "https://na1.salesforce.com/").unwrap(),
            "https://na1.salesforce.com"
        );
        for bad in [
            "http://na1.salesforce.com",
            "https://na1.salesforce.com/?a=b",
            "https://u:p@na1.salesforce.com",
            "na1.salesforce.com",
        ] {
            assert!(encode_value(&p, Position::Base, bad).is_err(), "{bad}");
        }
    }
}
