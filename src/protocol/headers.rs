//! The 2026-07-28 Streamable HTTP request headers that mirror body fields (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`), and the rule that they must match the body: a gateway may route
//! on the headers while the server acts on the body, so any difference is refused (-32020).

use base64::Engine;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::error::McpError;
use super::meta::{CLIENT_CAPABILITIES, PROTOCOL_VERSION};

/// The mirrored headers of one POST, as received (values still encoded).
#[derive(Debug, Clone, Default)]
pub struct MirroredHeaders {
    pub protocol_version: Option<String>,
    pub method: Option<String>,
    pub name: Option<String>,
    /// `Mcp-Param-{Name}` headers: the name part lowercased, and the value; `None` for a value
    /// that is not visible ASCII (which the spec says to refuse).
    pub params: Vec<(String, Option<String>)>,
}

/// Methods whose target (`params.name` or `params.uri`) must be mirrored in `Mcp-Name`.
const NAMED_METHODS: &[(&str, &str)] = &[
    ("tools/call", "name"),
    ("prompts/get", "name"),
    ("resources/read", "uri"),
    ("tasks/get", "taskId"),
    ("tasks/update", "taskId"),
    ("tasks/cancel", "taskId"),
];

/// The body field `method`'s `Mcp-Name` header mirrors, if it has one (for clients of
/// 2026-07-28 servers too, such as the hosted `mcp` kind).
pub fn named_field(method: &str) -> Option<&'static str> {
    NAMED_METHODS
        .iter()
        .find(|(named, _)| *named == method)
        .map(|(_, field)| *field)
}

impl MirroredHeaders {
    /// Checks the headers against a request's body.
    pub fn check(&self, method: &str, params: Option<&JsonObject>) -> Result<(), McpError> {
        let Some(header_version) = &self.protocol_version else {
            return Err(missing("MCP-Protocol-Version"));
        };
        let meta = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object);
        let absent: Vec<&str> = [PROTOCOL_VERSION, CLIENT_CAPABILITIES]
            .into_iter()
            .filter(|key| !meta.is_some_and(|meta| meta.contains_key(*key)))
            .collect();
        if !absent.is_empty() {
            return Err(McpError::invalid_params(format!(
                "Invalid params: missing _meta keys: {}",
                absent.join(", ")
            )));
        }
        let body_version = meta.and_then(|meta| meta.get(PROTOCOL_VERSION));
        if body_version.and_then(Value::as_str) != Some(header_version.as_str()) {
            let shown = body_version.map_or_else(String::new, Value::to_string);
            return Err(McpError::header_mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{header_version}' does not \
                 match body value {shown}"
            )));
        }
        match &self.method {
            None => return Err(missing("Mcp-Method")),
            Some(header) if header != method => {
                return Err(McpError::header_mismatch(format!(
                    "Header mismatch: Mcp-Method header value '{header}' does not match body \
                     value '{method}'"
                )))
            }
            Some(_) => {}
        }
        let Some(field) = named_field(method) else {
            return Ok(());
        };
        let body_name = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        let Some(header) = &self.name else {
            return Err(missing("Mcp-Name"));
        };
        let header = decode(header).ok_or_else(|| {
            McpError::header_mismatch(
                "Header mismatch: Mcp-Name is not valid (=?base64?…?= must hold base64 of UTF-8)",
            )
        })?;
        match body_name {
            Some(body) if body == header => Ok(()),
            Some(body) => Err(McpError::header_mismatch(format!(
                "Header mismatch: Mcp-Name header value '{header}' does not match body value \
                 '{body}'"
            ))),
            None => Err(McpError::header_mismatch(format!(
                "Header mismatch: Mcp-Name is '{header}' but the body has no `params.{field}`"
            ))),
        }
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against the arguments, for every
/// property of the tool's input schema annotated with `x-mcp-header`: a value in the body must
/// be mirrored, and the header must say the same (after base64 decoding; numbers compared as
/// numbers).
pub fn check_param_headers(
    input_schema: &JsonObject,
    arguments: &JsonObject,
    headers: &[(String, Option<String>)],
) -> Result<(), McpError> {
    let mut annotated = Vec::new();
    collect_annotated(input_schema, &mut Vec::new(), &mut annotated);
    for (path, name) in annotated {
        let value = path
            .iter()
            .try_fold(None::<&Value>, |at, key| match at {
                None => Some(arguments.get(*key)),
                Some(Value::Object(object)) => Some(object.get(*key)),
                Some(_) => None,
            })
            .flatten()
            .filter(|value| !value.is_null());
        let Some(value) = value else { continue };
        let header = format!("Mcp-Param-{name}");
        let lower = header.to_ascii_lowercase();
        let received = headers
            .iter()
            .find(|(received, _)| format!("mcp-param-{received}") == lower)
            .map(|(_, value)| value);
        let text = match received {
            None => return Err(missing(&header)),
            Some(None) => {
                return Err(McpError::header_mismatch(format!(
                    "Header mismatch: {header} holds characters a header may not carry; use                      =?base64?…?="
                )))
            }
            Some(Some(text)) => decode(text).ok_or_else(|| {
                McpError::header_mismatch(format!(
                    "Header mismatch: {header} is not valid (=?base64?…?= must hold base64 of                      UTF-8)"
                ))
            })?,
        };
        let same = match value {
            Value::String(body) => *body == text,
            Value::Bool(body) => text == body.to_string(),
            Value::Number(body) => text
                .trim()
                .parse::<f64>()
                .ok()
                .zip(body.as_f64())
                .is_some_and(|(header, body)| header == body),
            _ => false,
        };
        if !same {
            return Err(McpError::header_mismatch(format!(
                "Header mismatch: {header} header value '{text}' does not match body value {value}"
            )));
        }
    }
    Ok(())
}

/// Every `properties` path whose schema carries `x-mcp-header`, with that header name
/// (borrowed from the schema: the walk runs on every `tools/call` and copies nothing).
fn collect_annotated<'s>(
    schema: &'s JsonObject,
    path: &mut Vec<&'s str>,
    found: &mut Vec<(Vec<&'s str>, &'s str)>,
) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        let Some(property) = property.as_object() else {
            continue;
        };
        path.push(key);
        if let Some(name) = property.get("x-mcp-header").and_then(Value::as_str) {
            found.push((path.clone(), name));
        }
        collect_annotated(property, path, found);
        path.pop();
    }
}

fn missing(header: &str) -> McpError {
    McpError::header_mismatch(format!(
        "Header mismatch: required header {header} is missing"
    ))
}

/// A header value as text: plain, or the `=?base64?…?=` sentinel form decoded (strictly:
/// bad padding or characters make it invalid).
pub fn decode(value: &str) -> Option<String> {
    let value = value.trim();
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    fn headers(version: &str, method: &str, name: Option<&str>) -> MirroredHeaders {
        MirroredHeaders {
            protocol_version: Some(version.to_owned()),
            method: Some(method.to_owned()),
            name: name.map(str::to_owned),
            params: Vec::new(),
        }
    }

    fn region_schema() -> JsonObject {
        params(json!({
            "type": "object",
            "properties": {
                "region": { "type": "string", "x-mcp-header": "Region" },
                "limit": { "type": "integer", "x-mcp-header": "Limit" },
                "query": { "type": "string" }
            }
        }))
    }

    fn param(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_ascii_lowercase(), Some(value.to_owned()))
    }

    #[test]
    fn mirrored_parameters_must_match_the_arguments() {
        let schema = region_schema();
        let args = params(json!({ "region": "us-west1", "limit": 42, "query": "q" }));
        let good = [param("Region", "us-west1"), param("limit", "42.0")];
        assert!(check_param_headers(&schema, &args, &good).is_ok());
        let encoded = [
            param("Region", "=?base64?dXMtd2VzdDE=?="),
            param("Limit", "42"),
        ];
        assert!(check_param_headers(&schema, &args, &encoded).is_ok());
        let wrong = [param("Region", "eu-west1"), param("Limit", "42")];
        assert_eq!(
            check_param_headers(&schema, &args, &wrong)
                .unwrap_err()
                .code,
            -32020
        );
    }

    #[test]
    fn a_value_in_the_body_without_its_header_is_refused() {
        let args = params(json!({ "region": "us-west1" }));
        let err = check_param_headers(&region_schema(), &args, &[]).unwrap_err();
        assert!(err.message.contains("Mcp-Param-Region"), "{}", err.message);
    }

    #[test]
    fn bad_base64_is_refused_and_an_absent_value_needs_no_header() {
        let args = params(json!({ "region": "us-west1" }));
        let bad = [param("Region", "=?base64?dXMtd2VzdDE?=")];
        assert!(check_param_headers(&region_schema(), &args, &bad).is_err());
        let none = params(json!({ "query": "q" }));
        assert!(check_param_headers(&region_schema(), &none, &[]).is_ok());
    }

    fn call(name: &str) -> JsonObject {
        params(json!({
            "name": name,
            "_meta": { PROTOCOL_VERSION: "2026-07-28", CLIENT_CAPABILITIES: {} }
        }))
    }

    #[test]
    fn matching_headers_pass() {
        let h = headers("2026-07-28", "tools/call", Some("add"));
        assert!(h.check("tools/call", Some(&call("add"))).is_ok());
    }

    #[test]
    fn a_different_name_is_a_header_mismatch() {
        let h = headers("2026-07-28", "tools/call", Some("foo"));
        let err = h.check("tools/call", Some(&call("bar"))).unwrap_err();
        assert_eq!(err.code, -32020);
        assert!(err.message.contains("'foo'") && err.message.contains("'bar'"));
    }

    #[test]
    fn base64_names_are_decoded_before_comparing() {
        let h = headers(
            "2026-07-28",
            "tools/call",
            Some("=?base64?SGVsbG8sIOS4lueVjA==?="),
        );
        assert!(h.check("tools/call", Some(&call("Hello, 世界"))).is_ok());
    }

    #[test]
    fn missing_method_or_name_is_refused() {
        let mut h = headers("2026-07-28", "tools/call", None);
        assert_eq!(
            h.check("tools/call", Some(&call("a"))).unwrap_err().code,
            -32020
        );
        h.method = None;
        assert_eq!(
            h.check("tools/call", Some(&call("a"))).unwrap_err().code,
            -32020
        );
    }

    #[test]
    fn the_version_must_match_the_body() {
        let h = headers("2025-11-25", "tools/list", None);
        let body =
            params(json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28", CLIENT_CAPABILITIES: {} } }));
        assert_eq!(h.check("tools/list", Some(&body)).unwrap_err().code, -32020);
    }

    #[test]
    fn missing_meta_keys_are_invalid_params_before_any_comparison() {
        let h = headers("2025-11-25", "tools/list", None);
        let body = params(json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28" } }));
        let err = h.check("tools/list", Some(&body)).unwrap_err();
        assert_eq!(err.code, -32602);
        assert!(err.message.contains(CLIENT_CAPABILITIES), "{}", err.message);
    }
}
