//! The MCP messages the virtual users send, and the little the client reads of the replies.
//!
//! Requests are formatted as text (not built as `serde_json::Value`s) and replies are
//! deserialized into a three-field struct: the client should cost far less than the server.

use bytes::Bytes;
use serde::Deserialize;

/// The 2025 revision the legacy-session scenarios negotiate.
pub const LEGACY_VERSION: &str = "2025-06-18";
/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";

pub fn initialize(id: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{LEGACY_VERSION}","capabilities":{{}},"clientInfo":{{"name":"gumcp-load","version":"0.1.0"}}}}}}"#
    ))
}

pub fn initialized() -> Bytes {
    Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
}

pub fn ping(id: u64) -> Bytes {
    Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#))
}

/// Which simple-tools-server call the `n`th request of a user is: stores and retrieves
/// alternate over a few keys, so the store stays small and every retrieve finds its key.
pub fn tool_for(n: u64) -> &'static str {
    if n.is_multiple_of(2) {
        "store-data"
    } else {
        "retrieve-data"
    }
}

/// A `tools/call` of `store-data` / `retrieve-data`; with `modern`, the `_meta` fields a
/// 2026-07-28 stateless request must carry.
pub fn tools_call(id: u64, n: u64, user: usize, modern: bool) -> Bytes {
    let key = format!("k{user}-{}", (n / 2) % 8);
    let arguments = match tool_for(n) {
        "store-data" => format!(r#"{{"key":"{key}","value":"value {n}"}}"#),
        _ => format!(r#"{{"key":"{key}"}}"#),
    };
    let meta = if modern {
        format!(
            r#","_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN_VERSION}","io.modelcontextprotocol/clientCapabilities":{{}}}}"#
        )
    } else {
        String::new()
    };
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{arguments}{meta}}}}}"#,
        tool_for(n)
    ))
}

#[derive(Deserialize)]
struct Reply {
    id: Option<serde_json::Value>,
    error: Option<serde::de::IgnoredAny>,
    result: Option<ReplyResult>,
}

#[derive(Deserialize)]
struct ReplyResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// What a message means to a user waiting for the reply to `id`.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not the reply (a notification, a priming event, another id).
    Other,
    /// The reply, a success.
    Ok,
    /// The reply, a JSON-RPC error or a tool error.
    Failed,
}

pub fn classify(data: &[u8], id: u64) -> Seen {
    let Ok(reply) = serde_json::from_slice::<Reply>(data) else {
        return Seen::Other;
    };
    if reply.id.as_ref().and_then(serde_json::Value::as_u64) != Some(id) {
        return Seen::Other;
    }
    match (reply.error, reply.result) {
        (None, Some(result)) if !result.is_error => Seen::Ok,
        _ => Seen::Failed,
    }
}
