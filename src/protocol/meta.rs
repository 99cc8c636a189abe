//! `_meta`: the per-request fields of 2026-07-28 (protocol version, client capabilities, log
//! level) and the progress token every revision carries.

use rmcp::model::JsonObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::McpError;
use super::version::ProtocolVersion;

pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const RESERVED_PREFIX: &str = "io.modelcontextprotocol/";

/// Methods that exist only in 2026-07-28, so they are modern even without `_meta`.
const MODERN_ONLY_METHODS: [&str; 2] = ["server/discover", "subscriptions/listen"];

/// Syslog severities, lowest first, so `level >= threshold` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(value: &Value) -> Result<LogLevel, McpError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            McpError::invalid_params(format!(
                "invalid log level {value}: expected one of debug, info, notice, warning, error, \
                 critical, alert, emergency"
            ))
        })
    }
}

fn meta_of(params: Option<&JsonObject>) -> Option<&JsonObject> {
    params?.get("_meta")?.as_object()
}

/// Whether a request is to be served by 2026-07-28 rules: it names a modern-only method or
/// carries any of the reserved per-request fields.
pub fn is_modern_request(method: &str, params: Option<&JsonObject>) -> bool {
    MODERN_ONLY_METHODS.contains(&method)
        || meta_of(params).is_some_and(|meta| meta.keys().any(|k| k.starts_with(RESERVED_PREFIX)))
}

/// The progress token, if the client asked for progress on this request.
pub fn progress_token(params: Option<&JsonObject>) -> Option<Value> {
    meta_of(params)?
        .get("progressToken")
        .filter(|token| token.is_string() || token.is_i64() || token.is_u64())
        .cloned()
}

/// The 2026-07-28 per-request fields, checked.
#[derive(Debug, Clone)]
pub struct ModernMeta {
    pub version: ProtocolVersion,
    pub client_capabilities: JsonObject,
    pub log_level: Option<LogLevel>,
}

impl ModernMeta {
    /// Reads and checks the required fields: a missing one is -32602, an unknown version
    /// -32022 listing what is supported.
    pub fn parse(params: Option<&JsonObject>) -> Result<ModernMeta, McpError> {
        let Some(meta) = meta_of(params) else {
            return Err(McpError::invalid_params(format!(
                "this request needs `_meta` with `{PROTOCOL_VERSION}` and `{CLIENT_CAPABILITIES}` \
                 (protocol 2026-07-28), or an `initialize` handshake first (earlier protocols)"
            )));
        };
        let requested = match meta.get(PROTOCOL_VERSION) {
            Some(Value::String(version)) => version,
            Some(_) => {
                return Err(McpError::invalid_params(format!(
                    "`_meta.{PROTOCOL_VERSION}` must be a string such as \"2026-07-28\""
                )))
            }
            None => {
                return Err(McpError::invalid_params(format!(
                    "missing required `_meta.{PROTOCOL_VERSION}`"
                )))
            }
        };
        let version = ProtocolVersion::parse(requested)
            .filter(|version| version.is_modern())
            .ok_or_else(|| {
                McpError::unsupported_protocol_version(requested, &ProtocolVersion::all_names())
            })?;
        let client_capabilities = match meta.get(CLIENT_CAPABILITIES) {
            Some(Value::Object(caps)) => caps.clone(),
            Some(_) => {
                return Err(McpError::invalid_params(format!(
                    "`_meta.{CLIENT_CAPABILITIES}` must be an object"
                )))
            }
            None => {
                return Err(McpError::invalid_params(format!(
                    "missing required `_meta.{CLIENT_CAPABILITIES}`"
                )))
            }
        };
        let log_level = meta.get(LOG_LEVEL).map(LogLevel::parse).transpose()?;
        Ok(ModernMeta {
            version,
            client_capabilities,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::codes;
    use serde_json::json;

    fn params(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn modern_requests_are_recognised_by_meta_or_method() {
        let modern = params(json!({"_meta": {PROTOCOL_VERSION: "2026-07-28"}}));
        let legacy = params(json!({"_meta": {"progressToken": 1}}));
        assert!(is_modern_request("tools/list", Some(&modern)));
        assert!(!is_modern_request("tools/list", Some(&legacy)));
        assert!(!is_modern_request("tools/list", None));
        assert!(is_modern_request("server/discover", None));
    }

    #[test]
    fn complete_meta_parses() {
        let p = params(json!({"_meta": {
            PROTOCOL_VERSION: "2026-07-28",
            CLIENT_CAPABILITIES: {"elicitation": {}},
            LOG_LEVEL: "warning"
        }}));
        let meta = ModernMeta::parse(Some(&p)).unwrap();
        assert_eq!(meta.log_level, Some(LogLevel::Warning));
        assert!(meta.client_capabilities.contains_key("elicitation"));
    }

    #[test]
    fn missing_fields_are_invalid_params() {
        for p in [
            json!({}),
            json!({"_meta": {CLIENT_CAPABILITIES: {}}}),
            json!({"_meta": {PROTOCOL_VERSION: "2026-07-28"}}),
            json!({"_meta": {PROTOCOL_VERSION: "2026-07-28", CLIENT_CAPABILITIES: {}, LOG_LEVEL: "loud"}}),
        ] {
            let err = ModernMeta::parse(Some(&params(p.clone()))).unwrap_err();
            assert_eq!(err.code, codes::INVALID_PARAMS, "{p}");
        }
    }

    #[test]
    fn an_unknown_or_legacy_version_is_unsupported_with_the_list() {
        for requested in ["1900-01-01", "2025-11-25"] {
            let p =
                params(json!({"_meta": {PROTOCOL_VERSION: requested, CLIENT_CAPABILITIES: {}}}));
            let err = ModernMeta::parse(Some(&p)).unwrap_err();
            assert_eq!(err.code, codes::UNSUPPORTED_PROTOCOL_VERSION);
            let data = err.data.unwrap();
            assert_eq!(data["requested"], requested);
            assert_eq!(data["supported"][0], "2026-07-28");
        }
    }

    #[test]
    fn log_levels_are_ordered_by_severity() {
        assert!(LogLevel::Debug < LogLevel::Info);
        assert!(LogLevel::Error > LogLevel::Warning);
        assert!(LogLevel::Emergency > LogLevel::Alert);
    }
}
