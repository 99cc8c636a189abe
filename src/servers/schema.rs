//! Tool input validation against each tool's JSON schema, compiled once per schema.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use jsonschema::Validator;
use rmcp::model::JsonObject;
use serde_json::Value;

/// Compiled validators by tool name, rebuilt only when a tool's schema object changes. Shared
/// by every call of an instance: lookups take a read lock, compiling a new schema the write lock.
#[derive(Default)]
pub struct SchemaCache {
    compiled: RwLock<HashMap<String, Compiled>>,
}

/// A tool's schema (its identity tells whether the tool changed) and its validator.
type Compiled = (Arc<JsonObject>, Arc<Validator>);

impl SchemaCache {
    /// Checks `arguments` against `schema` and hands them back (checked in place, not copied);
    /// the error lists every violation with its path.
    pub fn validate(
        &self,
        tool: &str,
        schema: &Arc<JsonObject>,
        arguments: JsonObject,
    ) -> Result<JsonObject, String> {
        let validator = self.validator(tool, schema)?;
        let instance = Value::Object(arguments);
        if validator.is_valid(&instance) {
            return match instance {
                Value::Object(arguments) => Ok(arguments),
                _ => Err("the arguments must be an object".to_owned()),
            };
        }
        let problems: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("{path}: {error}")
                }
            })
            .collect();
        Err(problems.join("; "))
    }

    fn validator(&self, tool: &str, schema: &Arc<JsonObject>) -> Result<Arc<Validator>, String> {
        if let Some((known, validator)) = self
            .compiled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tool)
        {
            if Arc::ptr_eq(known, schema) {
                return Ok(validator.clone());
            }
        }
        let mut compiled = self
            .compiled
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((known, validator)) = compiled.get_mut(tool) {
            if known == schema {
                // Same schema, new allocation (the tool list was re-read): remember the new
                // one so the next call takes the pointer comparison.
                *known = schema.clone();
                return Ok(validator.clone());
            }
        }
        let validator = jsonschema::validator_for(&Value::Object((**schema).clone()))
            .map(Arc::new)
            .map_err(|err| format!("the tool's input schema is invalid: {err}"))?;
        compiled.insert(tool.to_owned(), (schema.clone(), validator.clone()));
        Ok(validator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let schema = Arc::new(object(json!({
            "type": "object",
            "properties": {"key": {"type": "string"}, "n": {"type": "integer", "minimum": 0}},
            "required": ["key"]
        })));
        let cache = SchemaCache::default();
        assert!(cache
            .validate("t", &schema, object(json!({"key": "a", "n": 1})))
            .is_ok());
        let err = cache
            .validate("t", &schema, object(json!({"n": -1})))
            .unwrap_err();
        assert!(err.contains("key"), "{err}");
        assert!(err.contains("/n"), "{err}");
    }

    #[test]
    fn a_changed_schema_is_recompiled() {
        let cache = SchemaCache::default();
        let loose = Arc::new(object(json!({"type": "object"})));
        let strict = Arc::new(object(json!({"type": "object", "required": ["x"]})));
        assert!(cache.validate("t", &loose, JsonObject::new()).is_ok());
        assert!(cache.validate("t", &strict, JsonObject::new()).is_err());
    }

    #[test]
    fn an_invalid_schema_is_reported_not_panicked() {
        let cache = SchemaCache::default();
        let broken = Arc::new(object(json!({"type": 12})));
        let err = cache.validate("t", &broken, JsonObject::new()).unwrap_err();
        assert!(err.contains("schema"), "{err}");
    }
}
