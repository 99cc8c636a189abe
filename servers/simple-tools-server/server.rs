//! simple-tools-server: guMCP's example server — a key-value store, with guMCP's tool names,
//! argument names and reply texts so existing prompts keep working. Unlike guMCP's (one store
//! shared by everyone), each user has their own, bounded by `runtime.max_store_bytes_per_user`.

use std::sync::Arc;

use futures::FutureExt;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::store::StoreError;
use crate::servers::{
    json_object, CallError, McpServer, RequestContext, ServerFuture, ServerInit, UserStore,
};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(SimpleTools { store: init.store })
}

struct SimpleTools {
    store: Arc<UserStore>,
}

fn text_argument(arguments: &JsonObject, key: &str) -> String {
    match arguments.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn tool_error(text: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Cluster mode: the store lives in Redis, which did not answer; nothing was changed.
fn unavailable() -> CallToolResult {
    tool_error(&StoreError::Unavailable.to_string())
}

impl McpServer for SimpleTools {
    fn tools(&self) -> Vec<Tool> {
        vec![
            Tool::new(
                "store-data",
                "Store a key-value pair in the server",
                json_object(json!({
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "value": {"type": "string"}
                    },
                    "required": ["key", "value"]
                })),
            ),
            Tool::new(
                "retrieve-data",
                "Retrieve a value by its key",
                json_object(json!({
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"}
                    },
                    "required": ["key"]
                })),
            ),
            Tool::new(
                "list-data",
                "List all stored key-value pairs",
                json_object(json!({"type": "object", "properties": {}})),
            ),
        ]
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        async move {
            let text = match name {
                "store-data" => {
                    let key = text_argument(&arguments, "key");
                    let value = text_argument(&arguments, "value");
                    if key.is_empty() || value.is_empty() {
                        return Ok(tool_error("Missing key or value"));
                    }
                    let reply = format!("Stored '{key}' with value: {value}");
                    match self.store.insert(key, value).await {
                        Ok(()) => {}
                        Err(StoreError::Unavailable) => return Ok(unavailable()),
                        Err(StoreError::Full(full)) => {
                            return Ok(tool_error(&format!(
                                "Not stored: the store for this user is full ({} of {} bytes \
                             of keys and values used; this entry needs {} bytes). The limit \
                             is the operator's setting runtime.max_store_bytes_per_user. \
                             Storing a shorter value under an existing key frees space; \
                             everything stored so far is kept.",
                                full.used, full.limit, full.needed
                            )))
                        }
                    }
                    reply
                }
                "retrieve-data" => {
                    let key = text_argument(&arguments, "key");
                    if key.is_empty() {
                        return Ok(tool_error("Missing key"));
                    }
                    // guMCP answers a missing key as an ordinary result; prompts rely on it.
                    match self.store.get(&key).await {
                        Ok(Some(value)) => format!("Value for '{key}': {value}"),
                        Ok(None) => format!("Key '{key}' not found"),
                        Err(_) => return Ok(unavailable()),
                    }
                }
                "list-data" => {
                    let Ok(entries) = self.store.entries().await else {
                        return Ok(unavailable());
                    };
                    if entries.is_empty() {
                        "No data stored".to_owned()
                    } else {
                        let lines: Vec<String> =
                            entries.iter().map(|(k, v)| format!("- {k}: {v}")).collect();
                        format!("Stored data:\n{}", lines.join("\n"))
                    }
                }
                other => {
                    return Err(McpError::invalid_params(format!("Unknown tool: {other}")).into())
                }
            };
            Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
        }
        .boxed()
    }
}
