//! A workflow as written: YAML (or JSON) tied to one integration, with a trigger, the
//! settings users fill in, and steps. Parsed and validated once, at deploy time, so a
//! running execution never meets a malformed step.

use std::collections::HashSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::template::Templates;
use crate::transform::Transform;

/// Longest workflow or step id.
pub const MAX_ID_CHARS: usize = 64;
/// Most steps in one workflow, nested ones included.
pub const MAX_STEPS: usize = 200;
/// Highest `concurrency` a `map` step may ask for.
pub const MAX_MAP_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// `[a-z0-9_-]`, unique in the project; the SDK's workflow id.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The integration key it belongs to (`salesforce`, `custom.crm`).
    pub integration: String,
    pub trigger: Trigger,
    /// Turned on for every user who connects the integration (users can still turn it
    /// off). An `integration_enabled` workflow so marked runs at the connection.
    #[serde(default)]
    pub enabled_by_default: bool,
    /// What each user fills in when enabling it, read as `settings.<key>`.
    #[serde(default)]
    pub settings: Vec<SettingInput>,
    pub steps: Vec<Step>,
}

/// What starts an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An app event with this name, sent by the SaaS for a user.
    Event { event: String },
    /// A request to `/sdk/triggers/{workflowId}`; the `respond` step answers it.
    Request {
        /// How long the caller waits for the answer before getting 202 and the id.
        #[serde(default = "default_request_timeout_ms")]
        timeout_ms: u64,
    },
    /// A cron schedule, for every user who enabled the workflow.
    Schedule {
        cron: String,
        #[serde(default = "default_timezone")]
        timezone: String,
    },
    /// Once, when a user connects the integration.
    IntegrationEnabled,
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_timezone() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingInput {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Unique among its siblings' and ancestors' ids; outputs are `steps.<id>.output`.
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    /// Tries before the step (and the execution) fails; transient errors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A request to any URL.
    Http(HttpAction),
    /// A request to the integration's API with the user's credential (through the same
    /// refresh gate as the proxy); `path` is under the integration's API base URL.
    IntegrationRequest(HttpAction),
    /// Runs `then` when `if` (a template) renders truthy, else `else`.
    Condition {
        #[serde(rename = "if")]
        condition: String,
        #[serde(default)]
        then: Vec<Step>,
        #[serde(default, rename = "else")]
        otherwise: Vec<Step>,
    },
    /// Runs `steps` once per item of the array `items` (a jq expression over the context),
    /// at most `concurrency` at a time; `item` and `index` name the current one.
    Map {
        items: String,
        #[serde(default = "default_concurrency")]
        concurrency: usize,
        steps: Vec<Step>,
    },
    /// A jq program over the context (`.trigger`, `.steps`, `.user`, `.settings`).
    Transform { jq: String },
    /// Waits, without holding a worker.
    Delay { seconds: u64 },
    /// The answer to a request trigger.
    Respond {
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default)]
        body: Value,
    },
}

impl Action {
    /// The `type` the definition gave the step.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Http(_) => "http",
            Action::IntegrationRequest(_) => "integration_request",
            Action::Condition { .. } => "condition",
            Action::Map { .. } => "map",
            Action::Transform { .. } => "transform",
            Action::Delay { .. } => "delay",
            Action::Respond { .. } => "respond",
        }
    }
}

/// By hand, as `flatten` cannot refuse unknown fields: `id` and `max_attempts` are the
/// step's own, every other field belongs to its action (which refuses unknown ones).
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            _ => return Err(D::Error::custom("every step needs a string `id`")),
        };
        let max_attempts = match fields.remove("max_attempts") {
            None | Some(Value::Null) => None,
            Some(value) => Some(serde_json::from_value(value).map_err(D::Error::custom)?),
        };
        let action = serde_json::from_value(Value::Object(fields))
            .map_err(|e| D::Error::custom(format!("step `{id}`: {e}")))?;
        Ok(Step {
            id,
            action,
            max_attempts,
        })
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    #[serde(default = "default_method")]
    pub method: String,
    /// `url` for `http` steps, `path` for `integration_request` ones.
    #[serde(alias = "path")]
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
}

fn default_method() -> String {
    "GET".into()
}

/// Why a definition was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DefinitionError {
    /// A path such as `steps[2].then[0].url`.
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DefinitionError {
    DefinitionError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl WorkflowDefinition {
    /// Parses YAML (JSON is YAML too) and validates.
    pub fn parse(source: &str) -> Result<Self, DefinitionError> {
        let definition: WorkflowDefinition = serde_norway::from_str(source).map_err(|e| {
            let field = e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "document".into());
            invalid(field, e.to_string())
        })?;
        definition.validate()?;
        Ok(definition)
    }

    /// Checks ids, the trigger, and that every template and jq program compiles.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        check_id("id", &self.id)?;
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.integration.is_empty() {
            return Err(invalid("integration", "must name an integration key"));
        }
        self.validate_trigger()?;
        let mut keys = HashSet::new();
        for (i, setting) in self.settings.iter().enumerate() {
            check_id(&format!("settings[{i}].key"), &setting.key)?;
            if !keys.insert(&setting.key) {
                return Err(invalid(format!("settings[{i}].key"), "duplicate key"));
            }
        }
        if self.steps.is_empty() {
            return Err(invalid("steps", "a workflow needs at least one step"));
        }
        let mut seen = HashSet::new();
        let mut count = 0;
        validate_steps(
            "steps",
            &self.steps,
            &Templates::new(),
            &mut seen,
            &mut count,
        )?;
        if count > MAX_STEPS {
            return Err(invalid("steps", format!("at most {MAX_STEPS} steps")));
        }
        let responds = count_responds(&self.steps);
        match (&self.trigger, responds) {
            (Trigger::Request { .. }, _) => {}
            (_, 0) => {}
            _ => {
                return Err(invalid(
                    "steps",
                    "only request-triggered workflows may `respond`",
                ));
            }
        }
        Ok(())
    }

    fn validate_trigger(&self) -> Result<(), DefinitionError> {
        match &self.trigger {
            Trigger::Event { event } if event.trim().is_empty() || event.len() > 128 => {
                Err(invalid("trigger.event", "1 to 128 characters"))
            }
            Trigger::Request { timeout_ms } if *timeout_ms == 0 || *timeout_ms > 30_000 => {
                Err(invalid("trigger.timeout_ms", "1 to 30000"))
            }
            Trigger::Schedule { cron, timezone } => {
                croner::Cron::from_str(cron).map_err(|e| invalid("trigger.cron", e.to_string()))?;
                chrono_tz::Tz::from_str(timezone).map_err(|_| {
                    invalid(
                        "trigger.timezone",
                        format!("`{timezone}` is not an IANA time zone"),
                    )
                })?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// How many steps it has, nested ones included.
    pub fn step_count(&self) -> usize {
        fn count(steps: &[Step]) -> usize {
            steps
                .iter()
                .map(|step| {
                    1 + match &step.action {
                        Action::Condition {
                            then, otherwise, ..
                        } => count(then) + count(otherwise),
                        Action::Map { steps, .. } => count(steps),
                        _ => 0,
                    }
                })
                .sum()
        }
        count(&self.steps)
    }
}

fn check_id(field: &str, id: &str) -> Result<(), DefinitionError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && id.starts_with(|c: char| c.is_ascii_lowercase());
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("`{id}`: 1 to {MAX_ID_CHARS} of a-z, 0-9, `_`, `-`, starting with a letter"),
        ))
    }
}

fn validate_steps(
    path: &str,
    steps: &[Step],
    templates: &Templates,
    seen: &mut HashSet<String>,
    count: &mut usize,
) -> Result<(), DefinitionError> {
    for (i, step) in steps.iter().enumerate() {
        *count += 1;
        let here = format!("{path}[{i}]");
        check_id(&format!("{here}.id"), &step.id)?;
        if !seen.insert(step.id.clone()) {
            return Err(invalid(
                format!("{here}.id"),
                format!("duplicate step id `{}`", step.id),
            ));
        }
        if step.max_attempts.is_some_and(|n| n == 0 || n > 20) {
            return Err(invalid(format!("{here}.max_attempts"), "1 to 20"));
        }
        validate_action(&here, &step.action, templates, seen, count)?;
    }
    Ok(())
}

fn validate_action(
    here: &str,
    action: &Action,
    templates: &Templates,
    seen: &mut HashSet<String>,
    count: &mut usize,
) -> Result<(), DefinitionError> {
    let check = |field: &str, text: &str| {
        templates
            .check(text)
            .map_err(|e| invalid(format!("{here}.{field}"), e))
    };
    match action {
        Action::Http(http) | Action::IntegrationRequest(http) => {
            check("url", &http.url)?;
            check("method", &http.method)?;
            for (name, value) in &http.headers {
                check(&format!("headers.{name}"), value)?;
            }
            if let Some(body) = &http.body {
                check_value(here, "body", body, templates)?;
            }
            if matches!(action, Action::IntegrationRequest(_)) && !http.url.starts_with('/') {
                return Err(invalid(format!("{here}.path"), "must start with `/`"));
            }
        }
        Action::Condition {
            condition,
            then,
            otherwise,
        } => {
            check("if", condition)?;
            validate_steps(&format!("{here}.then"), then, templates, seen, count)?;
            validate_steps(&format!("{here}.else"), otherwise, templates, seen, count)?;
        }
        Action::Map {
            items,
            concurrency,
            steps,
        } => {
            Transform::compile(items).map_err(|e| invalid(format!("{here}.items"), e))?;
            if *concurrency == 0 || *concurrency > MAX_MAP_CONCURRENCY {
                return Err(invalid(
                    format!("{here}.concurrency"),
                    format!("1 to {MAX_MAP_CONCURRENCY}"),
                ));
            }
            if steps.is_empty() {
                return Err(invalid(format!("{here}.steps"), "needs at least one step"));
            }
            validate_steps(&format!("{here}.steps"), steps, templates, seen, count)?;
        }
        Action::Transform { jq } => {
            Transform::compile(jq).map_err(|e| invalid(format!("{here}.jq"), e))?;
        }
        Action::Delay { seconds } if *seconds > 30 * 24 * 3600 => {
            return Err(invalid(format!("{here}.seconds"), "at most 30 days"));
        }
        Action::Respond { status, body } => {
            if !(100..=599).contains(status) {
                return Err(invalid(format!("{here}.status"), "an HTTP status"));
            }
            check_value(here, "body", body, templates)?;
        }
        Action::Delay { .. } => {}
    }
    Ok(())
}

fn check_value(
    here: &str,
    field: &str,
    value: &Value,
    templates: &Templates,
) -> Result<(), DefinitionError> {
    match value {
        Value::String(text) => templates
            .check(text)
            .map_err(|e| invalid(format!("{here}.{field}"), e)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(here, &format!("{field}[{i}]"), v, templates)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_value(here, &format!("{field}.{k}"), v, templates)),
        _ => Ok(()),
    }
}

fn count_responds(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|step| match &step.action {
            Action::Respond { .. } => 1,
            Action::Condition {
                then, otherwise, ..
            } => count_responds(then) + count_responds(otherwise),
            Action::Map { steps, .. } => count_responds(steps),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAUNCH: &str = r#"
id: sync-contacts
name: Sync contacts
integration: custom.crm
trigger: { type: event, event: contact.created }
settings:
  - { key: list, label: Mailing list, required: true }
steps:
  - id: fetch
    type: integration_request
    method: GET
    path: /contacts
  - id: pick
    type: transform
    jq: '[.steps.fetch.output.contacts[] | select(.email != null)]'
  - id: each
    type: map
    items: .steps.pick.output
    concurrency: 2
    steps:
      - id: push
        type: http
        method: POST
        url: "https://api.saas.example/contacts"
        headers: { Authorization: "Bearer {{ user.meta.apiKey }}" }
        body: { email: "{{ item.email }}", list: "{{ settings.list }}" }
"#;

    #[test]
    fn the_launch_example_parses() {
        let definition = WorkflowDefinition::parse(LAUNCH).unwrap();
        assert_eq!(definition.id, "sync-contacts");
        assert_eq!(definition.step_count(), 4);
        assert!(
            matches!(definition.trigger, Trigger::Event { ref event } if event == "contact.created")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (LAUNCH.replace("id: pick", "id: fetch"), "steps[1].id"),
            (
                LAUNCH.replace("select(.email != null)", "select(.email !="),
                "steps[1].jq",
            ),
            (
                LAUNCH.replace("{{ item.email }}", "{{ item.email "),
                "steps[2].steps[0].body.email",
            ),
            (
                LAUNCH.replace("concurrency: 2", "concurrency: 0"),
                "steps[2].concurrency",
            ),
            (
                LAUNCH.replace("path: /contacts", "path: contacts"),
                "steps[0].path",
            ),
            (LAUNCH.replace("id: sync-contacts", "id: Sync"), "id"),
            (
                LAUNCH.replace(
                    "{ type: event, event: contact.created }",
                    "{ type: schedule, cron: '61 * * * *' }",
                ),
                "trigger.cron",
            ),
            (
                LAUNCH.replace(
                    "{ type: event, event: contact.created }",
                    "{ type: schedule, cron: '0 9 * * *', timezone: Mars/Olympus }",
                ),
                "trigger.timezone",
            ),
        ];
        for (source, field) in cases {
            let error = WorkflowDefinition::parse(&source).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        let unknown = WorkflowDefinition::parse(
            &LAUNCH.replace("concurrency: 2", "concurrency: 2\n    parallel: true"),
        );
        assert!(unknown.unwrap_err().reason.contains("parallel"));
    }

    #[test]
    fn stored_definitions_read_back() {
        let definition = WorkflowDefinition::parse(LAUNCH).unwrap();
        let stored = serde_json::to_value(&definition).unwrap();
        let back: WorkflowDefinition = serde_json::from_value(stored).unwrap();
        assert_eq!(back, definition);
    }

    #[test]
    fn respond_only_in_request_workflows() {
        let source = LAUNCH.replace(
            "  - id: pick",
            "  - id: answer\n    type: respond\n    body: { ok: true }\n  - id: pick",
        );
        assert_eq!(
            WorkflowDefinition::parse(&source).unwrap_err().field,
            "steps"
        );
        let request = source.replace(
            "{ type: event, event: contact.created }",
            "{ type: request }",
        );
        WorkflowDefinition::parse(&request).unwrap();
    }
}
