//! String templates (`minijinja`) over an execution's context: `user` (`id`, `meta`),
//! `trigger`, `steps.<id>.output`, `settings`, `env`, and in `map` steps `item` and
//! `index`. Undefined names are errors, so a typo fails the step instead of sending an
//! empty value.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Values are sent as they are, not HTML-escaped.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Self { env }
    }

    /// Whether `text` is a valid template (checked at deploy time).
    pub fn check(&self, text: &str) -> Result<(), String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(());
        }
        self.env
            .template_from_str(text)
            .map(|_| ())
            .map_err(|e| describe(&e))
    }

    /// Renders one string.
    pub fn render(&self, text: &str, context: &Value) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_owned());
        }
        self.env.render_str(text, context).map_err(|e| describe(&e))
    }

    /// Renders every string inside `value`. A string that is exactly one `{{ expr }}`
    /// keeps the expression's JSON type (a number stays a number, an object an object).
    pub fn render_value(&self, value: &Value, context: &Value) -> Result<Value, String> {
        match value {
            Value::String(text) => {
                if let Some(expr) = whole_expression(text) {
                    let expression = self
                        .env
                        .compile_expression(expr)
                        .map_err(|e| describe(&e))?;
                    let out = expression.eval(context).map_err(|e| describe(&e))?;
                    return serde_json::to_value(&out).map_err(|e| e.to_string());
                }
                self.render(text, context).map(Value::String)
            }
            Value::Array(items) => items
                .iter()
                .map(|v| self.render_value(v, context))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render_value(v, context)?)))
                .collect::<Result<Map<_, _>, String>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// Whether `text` renders to something truthy (not empty, `false`, `0`, `none`).
    pub fn truthy(&self, text: &str, context: &Value) -> Result<bool, String> {
        if let Some(expr) = whole_expression(text) {
            let expression = self
                .env
                .compile_expression(expr)
                .map_err(|e| describe(&e))?;
            return Ok(expression
                .eval(context)
                .map_err(|e| describe(&e))?
                .is_true());
        }
        let rendered = self.render(text, context)?;
        let t = rendered.trim();
        Ok(!(t.is_empty() || t == "false" || t == "0" || t.eq_ignore_ascii_case("none")))
    }
}

/// The expression of a string that is exactly `{{ expr }}`.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_keeps_types() {
        let t = Templates::new();
        let ctx = json!({"user": {"meta": {"apiKey": "k_1", "seats": 5}}, "item": {"tags": ["a"]}});
        assert_eq!(
            t.render("Bearer {{ user.meta.apiKey }}", &ctx).unwrap(),
            "Bearer k_1"
        );
        assert_eq!(
            t.render_value(&json!("{{ user.meta.seats }}"), &ctx)
                .unwrap(),
            json!(5)
        );
        assert_eq!(
            t.render_value(&json!({"t": "{{ item.tags }}"}), &ctx)
                .unwrap(),
            json!({"t": ["a"]})
        );
        assert_eq!(
            t.render("<{{ user.meta.apiKey }}>", &ctx).unwrap(),
            "<k_1>",
            "no HTML escaping"
        );
        assert!(
            t.render("{{ user.meta.missing }}", &ctx).is_err(),
            "undefined is an error"
        );
        assert!(t.truthy("{{ user.meta.seats > 3 }}", &ctx).unwrap());
        assert!(!t.truthy("{{ user.meta.seats > 9 }}", &ctx).unwrap());
        assert!(t.check("{{ unclosed").is_err());
    }
}
