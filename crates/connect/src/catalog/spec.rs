//! The typed form of one provider file. `providers/README.md` documents every field.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::template::{FieldPath, UrlTemplate};

/// One provider: who it is, how a user authorizes Plugboard, where its API lives and how
/// to tell which account was connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// `salesforce`, or `custom.<slug>` for a project's own integration.
    pub key: String,
    /// The name shown to users.
    pub name: String,
    /// `#RRGGBB`.
    pub brand_color: String,
    pub category: Category,
    pub auth: AuthSpec,
    /// Where API requests go; may hold placeholders.
    pub api_base_url: UrlTemplate,
    /// What the user types in before connecting (a subdomain, a shop name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_inputs: Vec<UserInput>,
    /// How to learn the provider's id for the connected account.
    pub account_id: AccountIdSpec,
    /// Caveats a maintainer should know: regional hosts, unconfirmed facts, quirks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl ProviderSpec {
    /// The declared user input with this key.
    pub fn user_input(&self, key: &str) -> Option<&UserInput> {
        self.user_inputs.iter().find(|input| input.key == key)
    }

    /// The keys of its declared user inputs.
    pub fn user_inputs_keys(&self) -> Vec<&str> {
        self.user_inputs.iter().map(|i| i.key.as_str()).collect()
    }
}

/// What kind of product a provider is; used to group the catalog for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Accounting,
    Calendar,
    Communication,
    Crm,
    CustomerSupport,
    Database,
    Documents,
    Ecommerce,
    Email,
    Engineering,
    ESignature,
    FileStorage,
    Marketing,
    Meetings,
    Payments,
    ProjectManagement,
    Spreadsheets,
}

/// How Plugboard obtains credentials for a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthSpec {
    /// OAuth 2.0 authorization code grant: the user is sent to the provider and back.
    Oauth2(OAuth2Spec),
    /// OAuth 2.0 client credentials grant: no user redirect, the app's own credentials.
    Oauth2ClientCredentials(ClientCredentialsSpec),
    /// A key the user pastes, sent in a header.
    ApiKey(ApiKeySpec),
    /// A username and password (or token) sent with HTTP Basic authentication.
    Basic(BasicSpec),
}

impl AuthSpec {
    /// The `type` value as written in a provider file.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Oauth2(_) => "oauth2",
            Self::Oauth2ClientCredentials(_) => "oauth2_client_credentials",
            Self::ApiKey(_) => "api_key",
            Self::Basic(_) => "basic",
        }
    }

    /// Whether connecting yields an OAuth token response (so `{token.*}` means something).
    pub fn issues_tokens(&self) -> bool {
        matches!(self, Self::Oauth2(_) | Self::Oauth2ClientCredentials(_))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Spec {
    pub authorization_url: UrlTemplate,
    pub token_url: UrlTemplate,
    /// An RFC 7009 revocation endpoint, where the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<UrlTemplate>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub scope_separator: ScopeSeparator,
    /// Added to the authorization URL's query (`access_type = "offline"` for Google).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_authorization_params: BTreeMap<String, String>,
    pub token_endpoint_auth: TokenEndpointAuth,
    /// The provider accepts PKCE with `S256`.
    pub pkce: bool,
    /// The provider issues refresh tokens (with the scopes and parameters above).
    pub refresh: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsSpec {
    pub token_url: UrlTemplate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<UrlTemplate>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub scope_separator: ScopeSeparator,
    pub token_endpoint_auth: TokenEndpointAuth,
}

/// How scopes are joined in the `scope` parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeSeparator {
    #[default]
    #[serde(rename = " ")]
    Space,
    #[serde(rename = ",")]
    Comma,
}

impl ScopeSeparator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Space => " ",
            Self::Comma => ",",
        }
    }

    /// The `scope` parameter for these scopes.
    pub fn join(self, scopes: &[String]) -> String {
        scopes.join(self.as_str())
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// `Authorization: Basic base64(client_id:client_secret)`.
    ClientSecretBasic,
}

/// A credential the user types in (an API key, a username).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    pub key: String,
    pub label: String,
    /// Hidden while typed, never shown again, stored encrypted.
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    pub inputs: Vec<CredentialInput>,
    /// The request header the key is sent in.
    pub header: String,
    /// Written before the key in that header (`"Bearer "`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Which input is the key; may be left out when there is only one input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_input: Option<String>,
}

impl ApiKeySpec {
    /// The input whose value is sent in the header.
    pub fn key_input(&self) -> Option<&CredentialInput> {
        match &self.key_input {
            Some(key) => self.inputs.iter().find(|input| &input.key == key),
            None if self.inputs.len() == 1 => self.inputs.first(),
            None => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSpec {
    pub inputs: Vec<CredentialInput>,
    /// The input sent as the Basic username.
    pub username_input: String,
    /// The input sent as the Basic password; an empty password when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_input: Option<String>,
}

/// A value the user supplies before connecting, used in URL templates as `{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub key: String,
    pub label: String,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<InputPattern>,
    /// A hint shown under the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// A compiled `pattern`. It must match the whole value: `^…$` is implied.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InputPattern {
    source: String,
    whole: Regex,
}

impl InputPattern {
    pub fn parse(source: &str) -> Result<Self, String> {
        let whole = Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            // regex's message draws a caret under the error on several lines; keep the
            // last line, which says what is wrong.
            let message = e.to_string();
            let reason = message
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned();
            format!("`{source}` is not a valid regular expression: {reason}")
        })?;
        Ok(Self {
            source: source.to_owned(),
            whole,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.whole.is_match(value)
    }
}

impl PartialEq for InputPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for InputPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for InputPattern {
    type Error = String;
    fn try_from(source: String) -> Result<Self, String> {
        Self::parse(&source)
    }
}

impl From<InputPattern> for String {
    fn from(pattern: InputPattern) -> String {
        pattern.source
    }
}

/// How to learn the provider's own id for what was connected (a user, a workspace, a
/// company): exactly one of the three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAccountId", into = "RawAccountId")]
pub enum AccountIdSpec {
    /// A field of the token response: `from_token = "team.id"`.
    FromToken(FieldPath),
    /// A query parameter of the OAuth redirect: `from_callback = "realmId"`.
    FromCallback(String),
    /// A field of the response to a request made with the new credentials.
    Request(IdentityRequest),
}

/// `account_id` as written: three optional keys, of which exactly one must be present
/// (an enum would report a second key as "wanted exactly 1 element").
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccountId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_token: Option<FieldPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<IdentityRequest>,
}

impl TryFrom<RawAccountId> for AccountIdSpec {
    type Error = &'static str;
    fn try_from(raw: RawAccountId) -> Result<Self, Self::Error> {
        match (raw.from_token, raw.from_callback, raw.request) {
            (Some(path), None, None) => Ok(Self::FromToken(path)),
            (None, Some(param), None) => Ok(Self::FromCallback(param)),
            (None, None, Some(request)) => Ok(Self::Request(request)),
            _ => Err("account_id takes exactly one of from_token, from_callback and request"),
        }
    }
}

impl From<AccountIdSpec> for RawAccountId {
    fn from(spec: AccountIdSpec) -> Self {
        let mut raw = RawAccountId {
            from_token: None,
            from_callback: None,
            request: None,
        };
        match spec {
            AccountIdSpec::FromToken(path) => raw.from_token = Some(path),
            AccountIdSpec::FromCallback(param) => raw.from_callback = Some(param),
            AccountIdSpec::Request(request) => raw.request = Some(request),
        }
        raw
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    /// `/me` (under `api_base_url`) or an absolute `https` URL; may hold placeholders.
    pub path: UrlTemplate,
    /// Where the id is in the JSON response.
    pub field: FieldPath,
    #[serde(default)]
    pub method: HttpMethod,
    /// A JSON body, for APIs (GraphQL) that answer only POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The scheme written before the access token in `Authorization` (OAuth providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<String>,
}

impl IdentityRequest {
    /// Whether `path` is a full URL rather than a path under `api_base_url`.
    pub fn is_absolute(&self) -> bool {
        !self.path.as_str().starts_with('/')
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}
