//! Form and query parameters.

use std::collections::HashMap;

/// Parameters of a query string or form body.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` input; RFC 6749 §3.1 forbids repeating a
    /// parameter, so a repeated name is an error naming it.
    pub fn parse(input: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(format!("parameter `{name}` is repeated"));
            }
        }
        Ok(Self(map))
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Decodes one form-encoded component, as RFC 6749 §2.3.1 asks for Basic credentials.
/// Clients often send them unencoded: a stray `%` is then kept as it is.
pub(crate) fn form_decode(component: &str) -> String {
    let escaped = component.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

/// Scopes separated by single spaces, in the order given.
pub(crate) fn normalize_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}
