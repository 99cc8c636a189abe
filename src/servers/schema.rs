//! Tool input validation against each tool's JSON schema, compiled once per schema — and once
//! per server, not per user, where the users' instances report the same tools.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use jsonschema::Validator;
use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

/// The tool list the instances of one server report, kept once for all of them with its
/// compiled validators: a server's instances are per user, its tools almost never are, and a
/// list with its schemas (compiled or not) would otherwise cost every live instance kilobytes.
#[derive(Default)]
pub struct SharedTools {
    list: OnceLock<Arc<Vec<Tool>>>,
    schemas: SchemaCache,
}

impl SharedTools {
    /// `tools` as one instance reported them: the shared list when they are the same, else a
    /// list of that instance's own (the first list reported becomes the shared one).
    pub fn adopt(&self, tools: Vec<Tool>) -> Arc<Vec<Tool>> {
        let shared = self.list.get_or_init(|| Arc::new(tools.clone()));
        if **shared == tools {
            shared.clone()
        } else {
            Arc::new(tools)
        }
    }

    /// The compiled validators of `tools`, if it is the shared list.
    pub fn schemas_of(&self, tools: &Arc<Vec<Tool>>) -> Option<&SchemaCache> {
        self.list
            .get()
            .is_some_and(|shared| Arc::ptr_eq(shared, tools))
            .then_some(&self.schemas)
    }
}

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
    use rmcp::model::Tool;

    fn tool(name: &str, schema: Value) -> Tool {
        Tool::new(
            name.to_owned(),
            "",
            Arc::new(schema.as_object().cloned().unwrap()),
        )
    }

    #[test]
    fn instances_reporting_the_same_tools_share_one_list_and_its_validators() {
        let shared = SharedTools::default();
        let schema = serde_json::json!({"type": "object", "required": ["key"]});
        let first = shared.adopt(vec![tool("get", schema.clone())]);
        let second = shared.adopt(vec![tool("get", schema.clone())]);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(shared.schemas_of(&second).is_some());
        let own = shared.adopt(vec![
            tool("get", schema),
            tool("extra", serde_json::json!({})),
        ]);
        assert!(!Arc::ptr_eq(&first, &own));
        assert!(shared.schemas_of(&own).is_none());
    }
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
