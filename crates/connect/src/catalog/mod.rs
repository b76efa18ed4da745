//! The provider catalog: one TOML file per provider under `providers/`, loaded into typed
//! [`ProviderSpec`]s and checked before anything uses them.
//!
//! The files are compiled into the binary ([`Catalog::embedded`]) with one `include_str!`
//! per file, listed in [`EMBEDDED_FILES`]. That needs no build script and no dependency;
//! a test fails when the list and the folder disagree, so a new file cannot be forgotten.
//! [`Catalog::load_dir`] reads a folder at run time instead, for development and tests.

mod render;
mod spec;
mod template;
mod validate;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

pub use render::TemplateValues;
pub use spec::{
    AccountIdSpec, ApiKeySpec, AuthSpec, BasicSpec, Category, ClientCredentialsSpec,
    CredentialInput, HttpMethod, IdentityRequest, InputPattern, OAuth2Spec, ProviderSpec,
    ScopeSeparator, TokenEndpointAuth, UserInput,
};
pub use template::{FieldPath, Placeholder, Position, RenderError, UrlTemplate};
pub use validate::{CUSTOM_PREFIX, ValidationError};

/// Why a catalog could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {reason}")]
    Invalid {
        file: String,
        field: String,
        reason: String,
    },
    #[error("{file}: key: `{key}` is already defined in {other}")]
    DuplicateKey {
        file: String,
        key: String,
        other: String,
    },
}

/// Why a custom integration's spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Parse(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("key: `{0}` is already in the catalog")]
    DuplicateKey(String),
}

/// The providers Plugboard knows, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    providers: BTreeMap<String, ProviderSpec>,
}

/// Expands to `(file name, contents)` for one file of the top-level `providers/` folder.
macro_rules! provider_file {
    ($name:literal) => {
        (
            concat!($name, ".toml"),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../providers/",
                $name,
                ".toml"
            )),
        )
    };
}

/// Every provider file compiled into the binary, as `(file name, contents)`.
pub const EMBEDDED_FILES: &[(&str, &str)] = &[
    provider_file!("airtable"),
    provider_file!("asana"),
    provider_file!("box"),
    provider_file!("confluence"),
    provider_file!("docusign"),
    provider_file!("dropbox"),
    provider_file!("github"),
    provider_file!("gitlab"),
    provider_file!("gmail"),
    provider_file!("googlecalendar"),
    provider_file!("googledrive"),
    provider_file!("googlesheets"),
    provider_file!("hubspot"),
    provider_file!("intercom"),
    provider_file!("jira"),
    provider_file!("linear"),
    provider_file!("mailchimp"),
    provider_file!("microsoftteams"),
    provider_file!("notion"),
    provider_file!("outlook"),
    provider_file!("pipedrive"),
    provider_file!("quickbooks"),
    provider_file!("salesforce"),
    provider_file!("sharepoint"),
    provider_file!("shopify"),
    provider_file!("slack"),
    provider_file!("stripe"),
    provider_file!("xero"),
    provider_file!("zendesk"),
    provider_file!("zoom"),
];

static EMBEDDED: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::try_embedded()
        .unwrap_or_else(|e| panic!("the embedded provider catalog is invalid: {e}"))
});

impl Catalog {
    /// The catalog compiled into this binary. Its validity is checked by this crate's
    /// tests, so this does not fail in a released build.
    pub fn embedded() -> Catalog {
        EMBEDDED.clone()
    }

    /// [`embedded`](Self::embedded), reporting a broken file instead of panicking.
    pub fn try_embedded() -> Result<Catalog, CatalogError> {
        Self::from_files(
            EMBEDDED_FILES
                .iter()
                .map(|(name, contents)| (format!("providers/{name}"), *contents)),
        )
    }

    /// Reads every `*.toml` file in `dir` (other files, such as a README, are ignored).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let dir = dir.as_ref();
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CatalogError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let contents = fs::read_to_string(&path).map_err(io_error(&path))?;
            files.push((path.display().to_string(), contents));
        }
        Self::from_files(
            files
                .iter()
                .map(|(file, contents)| (file.clone(), contents.as_str())),
        )
    }

    /// Builds a catalog from `(file path, contents)` pairs; each key must equal its file's
    /// name without `.toml`.
    fn from_files<'a>(
        files: impl IntoIterator<Item = (String, &'a str)>,
    ) -> Result<Catalog, CatalogError> {
        let mut providers = BTreeMap::new();
        let mut origin: BTreeMap<String, String> = BTreeMap::new();
        for (file, contents) in files {
            let spec = parse_builtin(&file, contents)?;
            if let Some(other) = origin.get(&spec.key) {
                return Err(CatalogError::DuplicateKey {
                    file,
                    key: spec.key,
                    other: other.clone(),
                });
            }
            origin.insert(spec.key.clone(), file);
            providers.insert(spec.key.clone(), spec);
        }
        Ok(Catalog { providers })
    }

    pub fn get(&self, key: &str) -> Option<&ProviderSpec> {
        self.providers.get(key)
    }

    /// Every provider, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = &ProviderSpec> {
        self.providers.values()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Adds a project's own integration, already parsed with
    /// [`ProviderSpec::from_custom_toml`] or [`ProviderSpec::from_custom_json`].
    pub fn add_custom(&mut self, spec: ProviderSpec) -> Result<(), SpecError> {
        spec.validate_custom()?;
        if self.providers.contains_key(&spec.key) {
            return Err(SpecError::DuplicateKey(spec.key));
        }
        self.providers.insert(spec.key.clone(), spec);
        Ok(())
    }
}

impl ProviderSpec {
    /// A custom integration written in TOML, with the same fields as a provider file and a
    /// key of the form `custom.<slug>`.
    pub fn from_custom_toml(source: &str) -> Result<ProviderSpec, SpecError> {
        let spec: ProviderSpec =
            toml::from_str(source).map_err(|e| SpecError::Parse(toml_message(source, &e)))?;
        spec.validate_custom()?;
        Ok(spec)
    }

    /// A custom integration as JSON (as a project would send it through an API).
    pub fn from_custom_json(value: serde_json::Value) -> Result<ProviderSpec, SpecError> {
        let spec: ProviderSpec =
            serde_json::from_value(value).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate_custom()?;
        Ok(spec)
    }
}

fn parse_builtin(file: &str, contents: &str) -> Result<ProviderSpec, CatalogError> {
    let spec: ProviderSpec = toml::from_str(contents).map_err(|e| CatalogError::Parse {
        file: file.to_owned(),
        message: toml_message(contents, &e),
    })?;
    let invalid = |e: ValidationError| CatalogError::Invalid {
        file: file.to_owned(),
        field: e.field,
        reason: e.reason,
    };
    let stem = Path::new(file)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    if spec.key != stem {
        return Err(invalid(ValidationError {
            field: "key".into(),
            reason: format!("`{}` does not match the file name `{stem}`", spec.key),
        }));
    }
    if spec.key.starts_with(CUSTOM_PREFIX) {
        return Err(invalid(ValidationError {
            field: "key".into(),
            reason: format!("`{CUSTOM_PREFIX}` keys are reserved for projects' own integrations"),
        }));
    }
    spec.validate().map_err(invalid)?;
    Ok(spec)
}

/// A TOML error on one line: `line 4: unknown field ...`.
fn toml_message(source: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let line = source[..span.start.min(source.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}
