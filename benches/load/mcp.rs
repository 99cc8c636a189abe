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

/// What a preset's `tools/call`s ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// simple-tools-server's `store-data` and `retrieve-data`, alternating over a few keys, so
    /// the store stays small and every retrieve finds its key.
    StoreRetrieve,
    /// simple-tools-server's `list-data`: it stores nothing, so after the call a user leaves
    /// only their server instance behind (what `tenants` measures).
    ListData,
    /// hackernews's `get_story_details`, a tool declared in its `server.toml`: one GET upstream
    /// per call (`upstream-calls`, `upstream-sse`).
    Story,
}

impl Call {
    /// The server whose tool this is, or `None` for the one named by `--server`.
    pub fn server(self) -> Option<&'static str> {
        match self {
            Call::StoreRetrieve | Call::ListData => None,
            Call::Story => Some("hackernews"),
        }
    }

    /// The tool the `n`th call of a user names.
    pub fn tool(self, n: u64) -> &'static str {
        match self {
            Call::StoreRetrieve if n.is_multiple_of(2) => "store-data",
            Call::StoreRetrieve => "retrieve-data",
            Call::ListData => "list-data",
            Call::Story => "get_story_details",
        }
    }

    /// A `tools/call` request; with `modern`, the `_meta` fields a 2026-07-28 stateless
    /// request must carry.
    pub fn request(self, id: u64, n: u64, user: usize, modern: bool) -> Bytes {
        let arguments = match (self, self.tool(n)) {
            (Call::StoreRetrieve, "store-data") => {
                format!(r#"{{"key":"k{user}-{}","value":"value {n}"}}"#, (n / 2) % 8)
            }
            (Call::StoreRetrieve, _) => format!(r#"{{"key":"k{user}-{}"}}"#, (n / 2) % 8),
            (Call::ListData, _) => "{}".to_owned(),
            (Call::Story, _) => format!(r#"{{"id":{}}}"#, story_id(n)),
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
            self.tool(n)
        ))
    }
}

/// The Hacker News item the `n`th story call asks for: a thousand ids from Dropbox's launch
/// post on, so requests differ as real ones do (the mock upstream echoes the id).
pub fn story_id(n: u64) -> u64 {
    8863 + n % 1000
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
