//! jq programs (`jaq`), compiled at deploy time and run over JSON values.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// A compiled jq program.
pub struct Transform {
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl Transform {
    pub fn compile(code: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errors| format!("cannot parse the jq program ({} error(s))", errors.len()))?;
        let filter = Compiler::default()
            .with_funs(
                jaq_core::funs()
                    .chain(jaq_std::funs())
                    .chain(jaq_json::funs()),
            )
            .compile(modules)
            .map_err(|errors| {
                format!("cannot compile the jq program ({} error(s))", errors.len())
            })?;
        Ok(Self { filter })
    }

    /// Runs over `input`: one output is returned as is, several as an array, none as
    /// `null`.
    pub fn run(&self, input: &Value) -> Result<Value, String> {
        // Values cross between serde_json and jaq as JSON text: simple, and workflow
        // data is small.
        let text = input.to_string();
        let input = jaq_json::read::parse_single(text.as_bytes()).map_err(|e| e.to_string())?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::new();
        for out in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let out = out.map_err(|e| e.to_string())?;
            outputs.push(serde_json::from_str(&out.to_string()).map_err(|e| e.to_string())?);
        }
        Ok(match outputs.len() {
            0 => Value::Null,
            1 => outputs.pop().unwrap_or_default(),
            _ => Value::Array(outputs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_jq() {
        let t = Transform::compile("[.items[] | select(.n > 1) | .n * 10]").unwrap();
        assert_eq!(
            t.run(&json!({"items": [{"n": 1}, {"n": 2}, {"n": 3}]}))
                .unwrap(),
            json!([20, 30])
        );
        let many = Transform::compile(".[]").unwrap();
        assert_eq!(many.run(&json!([1, 2])).unwrap(), json!([1, 2]));
        assert_eq!(many.run(&json!([])).unwrap(), Value::Null);
        assert!(Transform::compile(".[").is_err());
        assert!(
            Transform::compile("error(\"boom\")")
                .unwrap()
                .run(&json!(1))
                .is_err()
        );
    }
}
