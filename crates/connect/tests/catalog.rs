use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use plugboard_connect::catalog::{
    AccountIdSpec, AuthSpec, Catalog, CatalogError, EMBEDDED_FILES, ProviderSpec, RenderError,
    SpecError, TemplateValues, TokenEndpointAuth,
};
use serde_json::json;

const REQUIRED: [&str; 30] = [
    "salesforce",
    "hubspot",
    "slack",
    "googledrive",
    "googlesheets",
    "googlecalendar",
    "gmail",
    "outlook",
    "microsoftteams",
    "sharepoint",
    "notion",
    "jira",
    "confluence",
    "github",
    "gitlab",
    "zendesk",
    "intercom",
    "shopify",
    "quickbooks",
    "xero",
    "pipedrive",
    "asana",
    "linear",
    "airtable",
    "dropbox",
    "box",
    "zoom",
    "docusign",
    "stripe",
    "mailchimp",
];

fn providers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../providers")
}

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A valid provider file whose parts a test can replace.
fn minimal(key: &str, api_base_url: &str, extra: &str) -> String {
    format!(
        r##"key = "{key}"
name = "Example"
brand_color = "#123ABC"
category = "crm"
api_base_url = "{api_base_url}"
{extra}
[auth]
type = "oauth2"
authorization_url = "https://example.com/oauth/authorize"
token_url = "https://example.com/oauth/token"
default_scopes = ["read"]
token_endpoint_auth = "client_secret_post"
pkce = true
refresh = true

[account_id]
from_token = "account.id"
"##
    )
}

/// Loads a folder holding just `file` with `contents`.
fn load_one(file: &str, contents: &str) -> Result<Catalog, CatalogError> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(file), contents).unwrap();
    Catalog::load_dir(dir.path())
}

/// The error for one file, shown relative to its folder so the message is stable.
fn load_error(file: &str, contents: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(file), contents).unwrap();
    let err = Catalog::load_dir(dir.path()).unwrap_err().to_string();
    err.replace(&format!("{}/", dir.path().display()), "providers/")
}

#[test]
fn embedded_catalog_has_every_required_provider() {
    let catalog = Catalog::embedded();
    assert!(catalog.len() >= 25, "only {} providers", catalog.len());
    for key in REQUIRED {
        let spec = catalog
            .get(key)
            .unwrap_or_else(|| panic!("{key} is missing"));
        assert_eq!(spec.key, key);
        spec.validate()
            .unwrap_or_else(|e| panic!("{key} does not validate: {e}"));
    }
}

#[test]
fn embedded_list_matches_the_providers_folder() {
    let mut on_disk: Vec<String> = fs::read_dir(providers_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = EMBEDDED_FILES.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(
        embedded, on_disk,
        "add each provider file to EMBEDDED_FILES in src/catalog/mod.rs"
    );
    assert_eq!(
        Catalog::load_dir(providers_dir()).unwrap(),
        Catalog::embedded()
    );
}

#[test]
fn every_oauth_provider_states_its_facts() {
    for spec in Catalog::embedded().iter() {
        match &spec.auth {
            AuthSpec::Oauth2(oauth) => {
                assert!(oauth.authorization_url.as_str().starts_with("https://"));
                assert!(oauth.token_url.as_str().starts_with("https://"));
            }
            AuthSpec::ApiKey(api_key) => assert!(!api_key.inputs.is_empty()),
            other => panic!("{}: unexpected auth {}", spec.key, other.type_name()),
        }
    }
}

#[test]
fn provider_specific_facts_are_typed() {
    let catalog = Catalog::embedded();
    let AuthSpec::Oauth2(google) = &catalog.get("googledrive").unwrap().auth else {
        panic!("googledrive is oauth2");
    };
    assert_eq!(google.extra_authorization_params["access_type"], "offline");
    assert_eq!(google.extra_authorization_params["prompt"], "consent");
    let AuthSpec::Oauth2(dropbox) = &catalog.get("dropbox").unwrap().auth else {
        panic!("dropbox is oauth2");
    };
    assert_eq!(
        dropbox.extra_authorization_params["token_access_type"],
        "offline"
    );
    let slack = catalog.get("slack").unwrap();
    let AuthSpec::Oauth2(slack_auth) = &slack.auth else {
        panic!("slack is oauth2");
    };
    assert_eq!(
        slack_auth.scope_separator.join(&slack_auth.default_scopes),
        "channels:read,chat:write,users:read"
    );
    assert_eq!(
        slack_auth.token_endpoint_auth,
        TokenEndpointAuth::ClientSecretBasic
    );
    assert!(
        matches!(&slack.account_id, AccountIdSpec::FromToken(path) if path.to_string() == "team.id")
    );
    let stripe = catalog.get("stripe").unwrap();
    let AuthSpec::ApiKey(key) = &stripe.auth else {
        panic!("stripe uses an api key");
    };
    assert_eq!(
        (key.header.as_str(), key.prefix.as_str()),
        ("Authorization", "Bearer ")
    );
    assert!(key.key_input().unwrap().secret);
}

#[test]
fn the_readme_example_error_reads_as_documented() {
    let contents = minimal("zendesk", "https://{subdomain}.zendesk.com/api/v2", "");
    assert_eq!(
        load_error("zendesk.toml", &contents),
        "providers/zendesk.toml: api_base_url: uses {subdomain} but no user input `subdomain` is declared"
    );
}

#[test]
fn http_urls_are_refused() {
    let contents = minimal("example", "http://api.example.com", "");
    assert_eq!(
        load_error("example.toml", &contents),
        "providers/example.toml: api_base_url: only https URLs are allowed"
    );
    let contents = minimal("example", "https://api.example.com", "").replace(
        "https://example.com/oauth/token",
        "http://example.com/oauth/token",
    );
    assert_eq!(
        load_error("example.toml", &contents),
        "providers/example.toml: auth.token_url: only https URLs are allowed"
    );
}

#[test]
fn undeclared_and_misplaced_placeholders_are_refused() {
    let cases = [
        // A namespace that does not exist.
        (
            minimal("example", "https://api.example.com/{secret.x}", ""),
            "unknown namespace `secret`",
        ),
        // Token fields do not exist before the token does.
        (
            minimal("example", "https://api.example.com", "").replace(
                "https://example.com/oauth/authorize",
                "https://example.com/{token.x}/authorize",
            ),
            "auth.authorization_url: uses {token.x}, but no token exists yet at this step",
        ),
        // An identity field needs an identity request.
        (
            minimal("example", "{identity.api_endpoint}/3.0", ""),
            "api_base_url: uses {identity.api_endpoint} but account_id declares no request",
        ),
        // A user input in the host must be constrained.
        (
            minimal(
                "example",
                "https://{tenant}.example.com",
                "\n[[user_inputs]]\nkey = \"tenant\"\nlabel = \"Tenant\"\n",
            ),
            "api_base_url: uses {tenant} in the host, so user input `tenant` must declare a pattern",
        ),
        // A declared input nothing uses is probably a typo.
        (
            minimal(
                "example",
                "https://api.example.com",
                "\n[[user_inputs]]\nkey = \"tenant\"\nlabel = \"Tenant\"\npattern = \"[a-z]+\"\n",
            ),
            "user_inputs[0]: `tenant` is declared but no URL uses it",
        ),
    ];
    for (contents, expected) in cases {
        let err = load_error("example.toml", &contents);
        assert!(
            err.contains(expected),
            "{err:?} should contain {expected:?}"
        );
        assert!(err.starts_with("providers/example.toml: "), "{err}");
    }
}

#[test]
fn key_must_match_the_file_name() {
    let contents = minimal("example", "https://api.example.com", "");
    assert_eq!(
        load_error("other.toml", &contents),
        "providers/other.toml: key: `example` does not match the file name `other`"
    );
    let contents = minimal("Example", "https://api.example.com", "");
    assert!(
        load_error("Example.toml", &contents).contains("key: `Example` must match [a-z0-9_.-]+")
    );
    let contents = minimal("custom.acme", "https://api.example.com", "");
    assert!(load_error("custom.acme.toml", &contents).contains("reserved"));
}

#[test]
fn unknown_fields_are_refused() {
    let top = minimal("example", "https://api.example.com", "logo = \"x.png\"");
    let err = load_error("example.toml", &top);
    assert!(
        err.starts_with("providers/example.toml: line 6: unknown field `logo`"),
        "{err}"
    );

    let in_auth = minimal("example", "https://api.example.com", "")
        .replace("pkce = true", "pkce = true\nrefresh_url = \"https://x\"");
    let err = load_error("example.toml", &in_auth);
    assert!(err.contains("unknown field `refresh_url`"), "{err}");

    let bad_auth = minimal("example", "https://api.example.com", "")
        .replace("type = \"oauth2\"", "type = \"oauth1\"");
    let err = load_error("example.toml", &bad_auth);
    assert!(err.contains("unknown variant `oauth1`"), "{err}");
}

#[test]
fn oauth2_needs_both_endpoints_and_api_key_needs_an_input() {
    let no_token = minimal("example", "https://api.example.com", "")
        .replace("token_url = \"https://example.com/oauth/token\"\n", "");
    assert!(load_error("example.toml", &no_token).contains("missing field `token_url`"));

    let api_key = r##"key = "example"
name = "Example"
brand_color = "#123ABC"
category = "payments"
api_base_url = "https://api.example.com"

[auth]
type = "api_key"
header = "Authorization"
prefix = "Bearer "
inputs = []

[account_id.request]
path = "/me"
field = "id"
"##;
    assert_eq!(
        load_error("example.toml", api_key),
        "providers/example.toml: auth.inputs: an api_key provider needs at least one input"
    );
    let token_for_key = api_key
        .replace(
            "inputs = []",
            "inputs = [{ key = \"api_key\", label = \"Key\", secret = true }]",
        )
        .replace(
            "[account_id.request]\npath = \"/me\"\nfield = \"id\"",
            "[account_id]\nfrom_token = \"id\"",
        );
    assert!(
        load_error("example.toml", &token_for_key)
            .contains("account_id.from_token: `id`: auth type `api_key` issues no token")
    );
}

#[test]
fn a_valid_file_loads() {
    let catalog = load_one(
        "example.toml",
        &minimal("example", "https://api.example.com", ""),
    )
    .unwrap();
    assert_eq!(catalog.keys().collect::<Vec<_>>(), ["example"]);
}

#[test]
fn render_substitutes_user_inputs() {
    let catalog = Catalog::embedded();
    let zendesk = catalog.get("zendesk").unwrap();
    let AuthSpec::Oauth2(oauth) = &zendesk.auth else {
        panic!("zendesk is oauth2");
    };
    let url = zendesk
        .render_url(
            &oauth.authorization_url,
            &inputs(&[("subdomain", "acme")]),
            &json!({}),
        )
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://acme.zendesk.com/oauth/authorizations/new"
    );
    let api = zendesk
        .render_url(
            &zendesk.api_base_url,
            &inputs(&[("subdomain", "acme-eu")]),
            &json!({}),
        )
        .unwrap();
    assert_eq!(api.as_str(), "https://acme-eu.zendesk.com/api/v2");
}

#[test]
fn render_rejects_values_outside_the_pattern() {
    let catalog = Catalog::embedded();
    let shopify = catalog.get("shopify").unwrap();
    for hostile in ["evil.com/x", "evil.com#", "a@evil.com", "ACME", "", "-"] {
        let err = shopify
            .render_url(
                &shopify.api_base_url,
                &inputs(&[("shop", hostile)]),
                &json!({}),
            )
            .unwrap_err();
        assert!(
            matches!(err, RenderError::PatternMismatch { .. }),
            "{hostile:?} gave {err}"
        );
    }
    let missing = shopify
        .render_url(&shopify.api_base_url, &inputs(&[]), &json!({}))
        .unwrap_err();
    assert_eq!(missing.to_string(), "{shop}: no value was supplied");
}

#[test]
fn render_takes_whole_origins_from_the_token() {
    let catalog = Catalog::embedded();
    let salesforce = catalog.get("salesforce").unwrap();
    let token = json!({"instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/00D/005"});
    let url = salesforce
        .render_url(&salesforce.api_base_url, &inputs(&[]), &token)
        .unwrap();
    assert_eq!(url.as_str(), "https://acme.my.salesforce.com/");

    let pipedrive = catalog.get("pipedrive").unwrap();
    let url = pipedrive
        .render_url(
            &pipedrive.api_base_url,
            &inputs(&[]),
            &json!({"api_domain": "https://acme.pipedrive.com/"}),
        )
        .unwrap();
    assert_eq!(url.as_str(), "https://acme.pipedrive.com/api/v1");

    for bad in [
        json!({"instance_url": "http://acme.my.salesforce.com"}),
        json!({"instance_url": "https://x.com?q=1"}),
    ] {
        let err = salesforce
            .render_url(&salesforce.api_base_url, &inputs(&[]), &bad)
            .unwrap_err();
        assert!(matches!(err, RenderError::InvalidBase { .. }), "{err}");
    }
    let err = salesforce
        .render_url(
            &salesforce.api_base_url,
            &inputs(&[]),
            &json!({"instance_url": {"nested": 1}}),
        )
        .unwrap_err();
    assert!(matches!(err, RenderError::NotScalar { .. }), "{err}");
}

#[test]
fn render_percent_encodes_component_values() {
    let spec = ProviderSpec::from_custom_toml(&minimal(
        "custom.acme",
        "https://api.example.com/orgs/{token.org}/v1",
        "",
    ))
    .unwrap();
    let url = spec
        .render_url(
            &spec.api_base_url,
            &inputs(&[]),
            &json!({"org": "a/b?c=d#e f"}),
        )
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.example.com/orgs/a%2Fb%3Fc%3Dd%23e%20f/v1"
    );
    assert_eq!(url.path_segments().unwrap().count(), 3);

    for traversal in ["..", "."] {
        let err = spec
            .render_url(&spec.api_base_url, &inputs(&[]), &json!({"org": traversal}))
            .unwrap_err();
        assert!(matches!(err, RenderError::Unsafe { .. }), "{err}");
    }
    let url = spec
        .render_url(&spec.api_base_url, &inputs(&[]), &json!({"org": 42}))
        .unwrap();
    assert_eq!(url.path(), "/orgs/42/v1");
}

#[test]
fn render_uses_callback_and_identity_values() {
    let catalog = Catalog::embedded();
    let quickbooks = catalog.get("quickbooks").unwrap();
    let callback = inputs(&[("realmId", "9130350000000000")]);
    let url = quickbooks
        .render_url_with(
            &quickbooks.api_base_url,
            &TemplateValues {
                callback: Some(&callback),
                ..TemplateValues::default()
            },
        )
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://quickbooks.api.intuit.com/v3/company/9130350000000000"
    );

    let docusign = catalog.get("docusign").unwrap();
    let identity = json!({"sub": "u1", "accounts": [{"account_id": "a1", "base_uri": "https://na3.docusign.net"}]});
    let url = docusign
        .render_url_with(
            &docusign.api_base_url,
            &TemplateValues {
                identity: Some(&identity),
                ..TemplateValues::default()
            },
        )
        .unwrap();
    assert_eq!(url.as_str(), "https://na3.docusign.net/restapi");

    let jira = catalog.get("jira").unwrap();
    let resources = json!([{"id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "url": "https://acme.atlassian.net"}]);
    let url = jira
        .render_url_with(
            &jira.api_base_url,
            &TemplateValues {
                identity: Some(&resources),
                ..TemplateValues::default()
            },
        )
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.atlassian.com/ex/jira/1324a887-45db-1bf4-1e99-ef0ff456d421"
    );
}

#[test]
fn identity_requests_resolve_against_the_api_base() {
    let catalog = Catalog::embedded();
    let microsoft = catalog.get("outlook").unwrap();
    let url = microsoft
        .render_url(
            &microsoft.identity_url_template().unwrap(),
            &inputs(&[]),
            &json!({}),
        )
        .unwrap();
    assert_eq!(url.as_str(), "https://graph.microsoft.com/v1.0/me");

    let zendesk = catalog.get("zendesk").unwrap();
    let url = zendesk
        .render_url(
            &zendesk.identity_url_template().unwrap(),
            &inputs(&[("subdomain", "acme")]),
            &json!({}),
        )
        .unwrap();
    assert_eq!(url.as_str(), "https://acme.zendesk.com/api/v2/users/me");
}

#[test]
fn custom_integrations_parse_from_toml_and_json() {
    let source = minimal("custom.acme-crm", "https://api.acme.example/v2", "");
    let spec = ProviderSpec::from_custom_toml(&source).unwrap();
    assert_eq!(spec.key, "custom.acme-crm");

    // The JSON form is the same document; a round trip gives the same spec back.
    let as_json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        ProviderSpec::from_custom_json(as_json.clone()).unwrap(),
        spec
    );

    let mut catalog = Catalog::embedded();
    let before = catalog.len();
    catalog.add_custom(spec.clone()).unwrap();
    assert_eq!(catalog.len(), before + 1);
    assert_eq!(
        catalog.add_custom(spec),
        Err(SpecError::DuplicateKey("custom.acme-crm".into()))
    );

    let not_custom =
        ProviderSpec::from_custom_toml(&minimal("acme", "https://api.acme.example", ""))
            .unwrap_err();
    assert_eq!(
        not_custom.to_string(),
        "key: `acme` must be `custom.<slug>` for a custom integration"
    );

    let mut insecure = as_json;
    insecure["api_base_url"] = json!("http://api.acme.example");
    assert_eq!(
        ProviderSpec::from_custom_json(insecure)
            .unwrap_err()
            .to_string(),
        "api_base_url: only https URLs are allowed"
    );
    let unknown = json!({"key": "custom.x", "surprise": true});
    assert!(matches!(
        ProviderSpec::from_custom_json(unknown),
        Err(SpecError::Parse(_))
    ));
}

#[test]
fn every_embedded_spec_survives_a_json_round_trip() {
    for spec in Catalog::embedded().iter() {
        let value = serde_json::to_value(spec).unwrap();
        let back: ProviderSpec = serde_json::from_value(value).unwrap();
        assert_eq!(&back, spec, "{}", spec.key);
    }
}

#[test]
fn basic_and_client_credentials_specs_validate() {
    let basic = r##"key = "custom.ticketing"
name = "Ticketing"
brand_color = "#000000"
category = "customer_support"
api_base_url = "https://{host}.example.com/api"

[[user_inputs]]
key = "host"
label = "Host"
pattern = "[a-z]+"

[auth]
type = "basic"
username_input = "email"
password_input = "token"
inputs = [{ key = "email", label = "Email" }, { key = "token", label = "API token", secret = true }]

[account_id.request]
path = "/me"
field = "id"
"##;
    let spec = ProviderSpec::from_custom_toml(basic).unwrap();
    assert!(matches!(spec.auth, AuthSpec::Basic(_)));
    let wrong = basic.replace("username_input = \"email\"", "username_input = \"login\"");
    assert_eq!(
        ProviderSpec::from_custom_toml(&wrong)
            .unwrap_err()
            .to_string(),
        "auth.username_input: `login` is not one of auth.inputs"
    );

    let machine = r##"key = "custom.machine"
name = "Machine"
brand_color = "#FFFFFF"
category = "database"
api_base_url = "https://api.machine.example/{token.tenant}"

[auth]
type = "oauth2_client_credentials"
token_url = "https://auth.machine.example/token"
default_scopes = ["read"]
token_endpoint_auth = "client_secret_basic"

[account_id]
from_token = "tenant"
"##;
    let spec = ProviderSpec::from_custom_toml(machine).unwrap();
    assert!(spec.auth.issues_tokens());
    // A client credentials grant has no redirect, so no callback values exist.
    let with_callback = machine.replace("from_token = \"tenant\"", "from_callback = \"tenant\"");
    assert_eq!(
        ProviderSpec::from_custom_toml(&with_callback)
            .unwrap_err()
            .to_string(),
        "account_id.from_callback: `tenant`: auth type `oauth2_client_credentials` has no redirect"
    );
}
