//! The 2026-07-28 Streamable HTTP request headers that mirror body fields (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`), and the rule that they must match the body: a gateway may route
//! on the headers while the server acts on the body, so any difference is refused (-32020).

use base64::Engine;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::error::McpError;
use super::meta::PROTOCOL_VERSION;

/// The mirrored headers of one POST, as received (values still encoded).
#[derive(Debug, Clone, Default)]
pub struct MirroredHeaders {
    pub protocol_version: Option<String>,
    pub method: Option<String>,
    pub name: Option<String>,
}

/// Methods whose target (`params.name` or `params.uri`) must be mirrored in `Mcp-Name`.
const NAMED_METHODS: &[(&str, &str)] = &[
    ("tools/call", "name"),
    ("prompts/get", "name"),
    ("resources/read", "uri"),
];

impl MirroredHeaders {
    /// Checks the headers against a request's body.
    pub fn check(&self, method: &str, params: Option<&JsonObject>) -> Result<(), McpError> {
        let body_version = params
            .and_then(|p| p.get("_meta"))
            .and_then(|meta| meta.get(PROTOCOL_VERSION))
            .and_then(Value::as_str);
        match (&self.protocol_version, body_version) {
            (None, _) => return Err(missing("MCP-Protocol-Version")),
            (Some(header), Some(body)) if header != body => {
                return Err(McpError::header_mismatch(format!(
                    "Header mismatch: MCP-Protocol-Version header value '{header}' does not \
                     match body value '{body}'"
                )))
            }
            (Some(header), None) => {
                return Err(McpError::header_mismatch(format!(
                    "Header mismatch: MCP-Protocol-Version header is '{header}' but the body \
                     has no `_meta.{PROTOCOL_VERSION}`"
                )))
            }
            _ => {}
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
        let Some((_, field)) = NAMED_METHODS.iter().find(|(named, _)| *named == method) else {
            return Ok(());
        };
        let body_name = params.and_then(|p| p.get(*field)).and_then(Value::as_str);
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

fn missing(header: &str) -> McpError {
    McpError::header_mismatch(format!(
        "Header mismatch: required header {header} is missing"
    ))
}

/// A header value as text: plain, or the `=?base64?…?=` sentinel form decoded.
pub fn decode(value: &str) -> Option<String> {
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
        }
    }

    fn call(name: &str) -> JsonObject {
        params(json!({
            "name": name,
            "_meta": { PROTOCOL_VERSION: "2026-07-28" }
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
        let body = params(json!({ "_meta": { PROTOCOL_VERSION: "2026-07-28" } }));
        assert_eq!(h.check("tools/list", Some(&body)).unwrap_err().code, -32020);
    }
}
