//! Turning a provider's URL templates into URLs for one connection.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::spec::ProviderSpec;
use super::template::{FieldPath, Placeholder, RenderError, UrlTemplate, encode_value};

/// The values known about one connection, each filling one kind of placeholder. A kind
/// left `None` makes its placeholders fail with [`RenderError::Missing`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateValues<'a> {
    /// User inputs, for `{key}`.
    pub inputs: Option<&'a BTreeMap<String, String>>,
    /// The token response, for `{token.*}`.
    pub token: Option<&'a Value>,
    /// The redirect's query parameters, for `{callback.*}`.
    pub callback: Option<&'a BTreeMap<String, String>>,
    /// The identity response, for `{identity.*}`.
    pub identity: Option<&'a Value>,
}

impl ProviderSpec {
    /// Fills `template` from user inputs and token response fields. Each user input must
    /// match its declared pattern; every value is percent-encoded where it lands.
    pub fn render_url(
        &self,
        template: &UrlTemplate,
        inputs: &BTreeMap<String, String>,
        token_fields: &Value,
    ) -> Result<Url, RenderError> {
        self.render_url_with(
            template,
            &TemplateValues {
                inputs: Some(inputs),
                token: Some(token_fields),
                ..TemplateValues::default()
            },
        )
    }

    /// [`render_url`](Self::render_url) with every kind of value available.
    pub fn render_url_with(
        &self,
        template: &UrlTemplate,
        values: &TemplateValues<'_>,
    ) -> Result<Url, RenderError> {
        template.fill(|placeholder, position| {
            let value = self.value_for(placeholder, values)?;
            encode_value(placeholder, position, &value)
        })
    }

    fn value_for(
        &self,
        placeholder: &Placeholder,
        values: &TemplateValues<'_>,
    ) -> Result<String, RenderError> {
        let missing = || RenderError::Missing {
            placeholder: placeholder.to_string(),
        };
        match placeholder {
            Placeholder::Input(key) => {
                let declared = self
                    .user_input(key)
                    .ok_or_else(|| RenderError::Undeclared {
                        placeholder: placeholder.to_string(),
                    })?;
                let value = values
                    .inputs
                    .and_then(|inputs| inputs.get(key))
                    .ok_or_else(missing)?;
                if let Some(pattern) = &declared.pattern
                    && !pattern.is_match(value)
                {
                    return Err(RenderError::PatternMismatch {
                        placeholder: placeholder.to_string(),
                        value: value.clone(),
                        pattern: pattern.to_string(),
                    });
                }
                Ok(value.clone())
            }
            Placeholder::Callback(param) => values
                .callback
                .and_then(|params| params.get(param))
                .cloned()
                .ok_or_else(missing),
            Placeholder::Token(path) => scalar(placeholder, values.token, path),
            Placeholder::Identity(path) => scalar(placeholder, values.identity, path),
        }
    }
}

fn scalar(
    placeholder: &Placeholder,
    document: Option<&Value>,
    path: &FieldPath,
) -> Result<String, RenderError> {
    match document.and_then(|doc| path.lookup(doc)) {
        None | Some(Value::Null) => Err(RenderError::Missing {
            placeholder: placeholder.to_string(),
        }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Object(_) | Value::Array(_)) => Err(RenderError::NotScalar {
            placeholder: placeholder.to_string(),
        }),
    }
}
