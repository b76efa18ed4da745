//! The rules every provider spec must pass beyond its shape, each reported with the field
//! it concerns.

use std::collections::BTreeSet;

use super::spec::{
    AccountIdSpec, AuthSpec, CredentialInput, HttpMethod, IdentityRequest, ProviderSpec,
};
use super::template::{
    Placeholder, Position, RenderError, UrlTemplate, encode_value, is_input_key,
};

/// A rule a provider spec breaks: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The prefix that marks a project's own integration.
pub const CUSTOM_PREFIX: &str = "custom.";

/// Placeholder namespaces; no user input may take one of these names.
const RESERVED_INPUT_KEYS: [&str; 3] = ["token", "callback", "identity"];

/// Query parameters Plugboard sets itself on the authorization URL.
const RESERVED_AUTH_PARAMS: [&str; 7] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Which placeholders a template may use, by where it is used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Authorization, token and revocation endpoints: only user inputs are known then.
    AuthEndpoint,
    /// `api_base_url`: everything known once connected.
    ApiBase,
    /// `account_id.request.path`: everything but the identity response itself.
    Identity,
}

impl ProviderSpec {
    /// Checks every rule but those tied to where the spec came from (file name, custom
    /// prefix): key syntax, colors, https URLs, declared placeholders, auth consistency.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_key(&self.key)?;
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        check_color(&self.brand_color)?;
        self.check_user_inputs()?;
        self.check_auth()?;
        self.check_account_id()?;

        for (field, template, context) in self.templates() {
            self.check_template(&field, &template, context)?;
        }
        self.check_inputs_used()
    }

    /// [`validate`](Self::validate), and the key is `custom.<slug>`.
    pub fn validate_custom(&self) -> Result<(), ValidationError> {
        let slug = self.key.strip_prefix(CUSTOM_PREFIX).unwrap_or_default();
        if slug.is_empty() || slug.contains('.') {
            return Err(invalid(
                "key",
                format!(
                    "`{}` must be `custom.<slug>` for a custom integration",
                    self.key
                ),
            ));
        }
        self.validate()
    }

    /// Whether any of its URLs is plain `http` (allowed only to loopback, for tests and
    /// the development sandbox).
    pub fn uses_plain_http(&self) -> bool {
        self.templates()
            .iter()
            .any(|(_, template, _)| template.as_str().starts_with("http://"))
    }

    /// The template behind `account_id.request`: its path joined to `api_base_url` when
    /// relative, as written when absolute.
    pub fn identity_url_template(&self) -> Option<UrlTemplate> {
        let AccountIdSpec::Request(request) = &self.account_id else {
            return None;
        };
        if request.is_absolute() {
            return Some(request.path.clone());
        }
        let base = self.api_base_url.as_str().trim_end_matches('/');
        UrlTemplate::parse(&format!("{base}{}", request.path)).ok()
    }

    /// Every URL template with its field name and the placeholders it may use.
    fn templates(&self) -> Vec<(String, UrlTemplate, Context)> {
        let mut out = Vec::new();
        match &self.auth {
            AuthSpec::Oauth2(oauth) => {
                out.push((
                    "auth.authorization_url".into(),
                    oauth.authorization_url.clone(),
                    Context::AuthEndpoint,
                ));
                out.push((
                    "auth.token_url".into(),
                    oauth.token_url.clone(),
                    Context::AuthEndpoint,
                ));
                if let Some(url) = &oauth.revocation_url {
                    out.push((
                        "auth.revocation_url".into(),
                        url.clone(),
                        Context::AuthEndpoint,
                    ));
                }
            }
            AuthSpec::Oauth2ClientCredentials(cc) => {
                out.push((
                    "auth.token_url".into(),
                    cc.token_url.clone(),
                    Context::AuthEndpoint,
                ));
                if let Some(url) = &cc.revocation_url {
                    out.push((
                        "auth.revocation_url".into(),
                        url.clone(),
                        Context::AuthEndpoint,
                    ));
                }
            }
            AuthSpec::ApiKey(_) | AuthSpec::Basic(_) => {}
        }
        out.push((
            "api_base_url".into(),
            self.api_base_url.clone(),
            Context::ApiBase,
        ));
        if let Some(template) = self.identity_url_template() {
            out.push((
                "account_id.request.path".into(),
                template,
                Context::Identity,
            ));
        }
        out
    }

    fn check_template(
        &self,
        field: &str,
        template: &UrlTemplate,
        context: Context,
    ) -> Result<(), ValidationError> {
        for (placeholder, position) in template.placeholders() {
            self.check_placeholder(field, placeholder, position, context)?;
        }
        // Fill every placeholder with a harmless sample to check that the result is a
        // valid https URL whatever the values turn out to be.
        template
            .fill(|placeholder, position| {
                let sample = match position {
                    Position::Base => "https://placeholder.invalid",
                    Position::Host | Position::Component => "x",
                };
                encode_value(placeholder, position, sample)
            })
            .map_err(|e| match e {
                RenderError::NotHttps { .. } => invalid(field, "only https URLs are allowed"),
                other => invalid(field, other.to_string()),
            })?;
        Ok(())
    }

    fn check_placeholder(
        &self,
        field: &str,
        placeholder: &Placeholder,
        position: Position,
        context: Context,
    ) -> Result<(), ValidationError> {
        match placeholder {
            Placeholder::Input(key) => {
                let Some(input) = self.user_input(key) else {
                    return Err(invalid(
                        field,
                        format!("uses {placeholder} but no user input `{key}` is declared"),
                    ));
                };
                if position == Position::Host && input.pattern.is_none() {
                    return Err(invalid(
                        field,
                        format!(
                            "uses {placeholder} in the host, so user input `{key}` must declare a pattern"
                        ),
                    ));
                }
            }
            Placeholder::Token(_) => {
                if context == Context::AuthEndpoint {
                    return Err(invalid(
                        field,
                        format!("uses {placeholder}, but no token exists yet at this step"),
                    ));
                }
                if !self.auth.issues_tokens() {
                    return Err(invalid(
                        field,
                        format!(
                            "uses {placeholder}, but auth type `{}` issues no token",
                            self.auth.type_name()
                        ),
                    ));
                }
            }
            Placeholder::Callback(_) => {
                if context == Context::AuthEndpoint {
                    return Err(invalid(
                        field,
                        format!(
                            "uses {placeholder}, but the redirect has not happened at this step"
                        ),
                    ));
                }
                if !matches!(self.auth, AuthSpec::Oauth2(_)) {
                    return Err(invalid(
                        field,
                        format!(
                            "uses {placeholder}, but auth type `{}` has no redirect",
                            self.auth.type_name()
                        ),
                    ));
                }
            }
            Placeholder::Identity(_) => {
                if context != Context::ApiBase {
                    return Err(invalid(
                        field,
                        format!("uses {placeholder}, which only api_base_url may use"),
                    ));
                }
                match &self.account_id {
                    AccountIdSpec::Request(request) if request.is_absolute() => {}
                    AccountIdSpec::Request(_) => {
                        return Err(invalid(
                            "account_id.request.path",
                            format!(
                                "is relative to api_base_url, which needs {placeholder} from this very request; use an absolute URL"
                            ),
                        ));
                    }
                    _ => {
                        return Err(invalid(
                            field,
                            format!("uses {placeholder} but account_id declares no request"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_user_inputs(&self) -> Result<(), ValidationError> {
        let mut seen = BTreeSet::new();
        for (i, input) in self.user_inputs.iter().enumerate() {
            let field = format!("user_inputs[{i}]");
            if !is_input_key(&input.key) {
                return Err(invalid(
                    format!("{field}.key"),
                    format!(
                        "`{}` must be lowercase letters, digits and `_`, starting with a letter",
                        input.key
                    ),
                ));
            }
            if RESERVED_INPUT_KEYS.contains(&input.key.as_str()) {
                return Err(invalid(
                    format!("{field}.key"),
                    format!("`{}` is reserved for placeholders", input.key),
                ));
            }
            if !seen.insert(&input.key) {
                return Err(invalid(
                    format!("{field}.key"),
                    format!("`{}` is declared twice", input.key),
                ));
            }
            if input.label.trim().is_empty() {
                return Err(invalid(format!("{field}.label"), "must not be empty"));
            }
        }
        Ok(())
    }

    fn check_inputs_used(&self) -> Result<(), ValidationError> {
        let used: BTreeSet<String> = self
            .templates()
            .iter()
            .flat_map(|(_, template, _)| {
                template
                    .placeholders()
                    .filter_map(|(p, _)| match p {
                        Placeholder::Input(key) => Some(key.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (i, input) in self.user_inputs.iter().enumerate() {
            if !used.contains(&input.key) {
                return Err(invalid(
                    format!("user_inputs[{i}]"),
                    format!("`{}` is declared but no URL uses it", input.key),
                ));
            }
        }
        Ok(())
    }

    fn check_auth(&self) -> Result<(), ValidationError> {
        match &self.auth {
            AuthSpec::Oauth2(oauth) => {
                check_scopes(&oauth.default_scopes, oauth.scope_separator.as_str())?;
                for name in oauth.extra_authorization_params.keys() {
                    if name.trim().is_empty() {
                        return Err(invalid(
                            "auth.extra_authorization_params",
                            "a parameter name is empty",
                        ));
                    }
                    if RESERVED_AUTH_PARAMS.contains(&name.as_str()) {
                        return Err(invalid(
                            "auth.extra_authorization_params",
                            format!("`{name}` is set by Plugboard itself"),
                        ));
                    }
                }
            }
            AuthSpec::Oauth2ClientCredentials(cc) => {
                check_scopes(&cc.default_scopes, cc.scope_separator.as_str())?;
            }
            AuthSpec::ApiKey(api_key) => {
                if api_key.inputs.is_empty() {
                    return Err(invalid(
                        "auth.inputs",
                        "an api_key provider needs at least one input",
                    ));
                }
                check_credential_inputs(&api_key.inputs)?;
                if !is_header_name(&api_key.header) {
                    return Err(invalid(
                        "auth.header",
                        format!("`{}` is not a valid header name", api_key.header),
                    ));
                }
                if api_key.key_input().is_none() {
                    let reason = match &api_key.key_input {
                        Some(key) => format!("`{key}` is not one of auth.inputs"),
                        None => "name the input holding the key when there are several".into(),
                    };
                    return Err(invalid("auth.key_input", reason));
                }
            }
            AuthSpec::Basic(basic) => {
                if basic.inputs.is_empty() {
                    return Err(invalid(
                        "auth.inputs",
                        "a basic provider needs at least one input",
                    ));
                }
                check_credential_inputs(&basic.inputs)?;
                let declared = |key: &str| basic.inputs.iter().any(|input| input.key == key);
                if !declared(&basic.username_input) {
                    return Err(invalid(
                        "auth.username_input",
                        format!("`{}` is not one of auth.inputs", basic.username_input),
                    ));
                }
                if let Some(password) = &basic.password_input
                    && !declared(password)
                {
                    return Err(invalid(
                        "auth.password_input",
                        format!("`{password}` is not one of auth.inputs"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_account_id(&self) -> Result<(), ValidationError> {
        match &self.account_id {
            AccountIdSpec::FromToken(path) => {
                if !self.auth.issues_tokens() {
                    return Err(invalid(
                        "account_id.from_token",
                        format!(
                            "`{path}`: auth type `{}` issues no token",
                            self.auth.type_name()
                        ),
                    ));
                }
            }
            AccountIdSpec::FromCallback(param) => {
                if !matches!(self.auth, AuthSpec::Oauth2(_)) {
                    return Err(invalid(
                        "account_id.from_callback",
                        format!(
                            "`{param}`: auth type `{}` has no redirect",
                            self.auth.type_name()
                        ),
                    ));
                }
                if param.is_empty()
                    || !param
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(invalid(
                        "account_id.from_callback",
                        format!("`{param}` is not a query parameter name"),
                    ));
                }
            }
            AccountIdSpec::Request(request) => self.check_identity_request(request)?,
        }
        Ok(())
    }

    fn check_identity_request(&self, request: &IdentityRequest) -> Result<(), ValidationError> {
        let path = request.path.as_str();
        if !path.starts_with('/') && !path.starts_with("https://") && !path.starts_with('{') {
            return Err(invalid(
                "account_id.request.path",
                format!("`{path}` must start with `/` or be an absolute https URL"),
            ));
        }
        if request.body.is_some() && request.method == HttpMethod::Get {
            return Err(invalid(
                "account_id.request.body",
                "a GET request has no body",
            ));
        }
        if let Some(body) = &request.body
            && serde_json::from_str::<serde_json::Value>(body).is_err()
        {
            return Err(invalid("account_id.request.body", "must be JSON"));
        }
        if let Some(scheme) = &request.auth_scheme {
            if !self.auth.issues_tokens() {
                return Err(invalid(
                    "account_id.request.auth_scheme",
                    format!(
                        "auth type `{}` sends no access token",
                        self.auth.type_name()
                    ),
                ));
            }
            if !is_header_name(scheme) {
                return Err(invalid(
                    "account_id.request.auth_scheme",
                    format!("`{scheme}` is not a valid authorization scheme"),
                ));
            }
        }
        Ok(())
    }
}

/// Keys: `[a-z0-9_.-]+`, so they are safe in URLs, file names and logs.
pub(crate) fn check_key(key: &str) -> Result<(), ValidationError> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(invalid("key", format!("`{key}` must match [a-z0-9_.-]+")));
    }
    Ok(())
}

fn check_color(color: &str) -> Result<(), ValidationError> {
    let hex = color.strip_prefix('#').unwrap_or_default();
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(
            "brand_color",
            format!("`{color}` is not a #RRGGBB color"),
        ));
    }
    Ok(())
}

fn check_scopes(scopes: &[String], separator: &str) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for scope in scopes {
        if scope.is_empty() || scope.contains(char::is_whitespace) || scope.contains(separator) {
            return Err(invalid(
                "auth.default_scopes",
                format!("{scope:?} is empty or contains whitespace or the separator {separator:?}"),
            ));
        }
        if !seen.insert(scope) {
            return Err(invalid(
                "auth.default_scopes",
                format!("`{scope}` is listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_credential_inputs(inputs: &[CredentialInput]) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for (i, input) in inputs.iter().enumerate() {
        if !is_input_key(&input.key) {
            return Err(invalid(
                format!("auth.inputs[{i}].key"),
                format!(
                    "`{}` must be lowercase letters, digits and `_`, starting with a letter",
                    input.key
                ),
            ));
        }
        if !seen.insert(&input.key) {
            return Err(invalid(
                format!("auth.inputs[{i}].key"),
                format!("`{}` is declared twice", input.key),
            ));
        }
        if input.label.trim().is_empty() {
            return Err(invalid(
                format!("auth.inputs[{i}].label"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// An HTTP token (RFC 9110 §5.6.2), as header names and auth schemes must be.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
