//! Protocol errors: the JSON-RPC error object, with one constructor per situation so each code is
//! used with the meaning the spec gives it, and every message tells a person what to do.

use serde::Serialize;
use serde_json::{json, Value};

/// Error codes of JSON-RPC 2.0 and MCP.
pub mod codes {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Resource not found, protocol revisions up to 2025-11-25 (2026-07-28 uses -32602).
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
    /// Implementation-defined server error: a configured bound refused the request for now.
    pub const SERVER_BUSY: i32 = -32000;
    pub const HEADER_MISMATCH: i32 = -32020;
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct McpError {
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl McpError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        McpError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(codes::PARSE_ERROR, message)
    }

    /// A bound refused the request; retrying later may succeed.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(codes::SERVER_BUSY, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }

    /// Reads an error object sent by the peer; anything malformed becomes an internal error
    /// that says so, rather than being dropped.
    pub fn from_json(value: &Value) -> Self {
        let code = value
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|code| i32::try_from(code).ok());
        let message = value.get("message").and_then(Value::as_str);
        match (code, message) {
            (Some(code), Some(message)) => McpError {
                code,
                message: message.to_owned(),
                data: value.get("data").cloned(),
            },
            _ => McpError::internal("the client answered with a malformed error object"),
        }
    }

    /// An HTTP header that mirrors a body field is missing, malformed or different (2026-07-28).
    pub fn header_mismatch(message: impl Into<String>) -> Self {
        Self::new(codes::HEADER_MISMATCH, message)
    }

    pub fn unsupported_protocol_version(requested: &str, supported: &[&str]) -> Self {
        Self::new(
            codes::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
        )
        .with_data(json!({ "supported": supported, "requested": requested }))
    }

    /// The client did not declare a capability the request needs (`required` is a partial
    /// `ClientCapabilities` object, e.g. `{"elicitation": {}}`).
    pub fn missing_client_capability(required: Value) -> Self {
        let names: Vec<&str> = required
            .as_object()
            .map(|caps| caps.keys().map(String::as_str).collect())
            .unwrap_or_default();
        Self::new(
            codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!(
                "Server requires the {} capability for this request",
                names.join(", ")
            ),
        )
        .with_data(json!({ "requiredCapabilities": required }))
    }
}
