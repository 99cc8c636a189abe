//! simple-tools-server: guMCP's example server — a key-value store per user, with guMCP's tool
//! and argument names so existing prompts keep working.

use std::sync::Arc;

use futures::FutureExt;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
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

impl McpServer for SimpleTools {
    fn tools(&self) -> Vec<Tool> {
        vec![
            Tool::new(
                "store-data",
                "Store a value under a key",
                json_object(json!({
                    "type": "object",
                    "properties": {
                        "key": {"type": "string", "description": "Key to store the value under"},
                        "value": {"type": "string", "description": "Value to store"}
                    },
                    "required": ["key", "value"]
                })),
            ),
            Tool::new(
                "retrieve-data",
                "Retrieve the value stored under a key",
                json_object(json!({
                    "type": "object",
                    "properties": {
                        "key": {"type": "string", "description": "Key to retrieve"}
                    },
                    "required": ["key"]
                })),
            ),
            Tool::new(
                "list-data",
                "List every stored key and its value",
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
                    let reply = format!("Stored {key} = {value}");
                    self.store.insert(key, value);
                    reply
                }
                "retrieve-data" => {
                    let key = text_argument(&arguments, "key");
                    match self.store.get(&key) {
                        Some(value) => format!("Value for {key}: {value}"),
                        None => {
                            let missing = format!("No data found for key: {key}");
                            return Ok(CallToolResult::error(vec![ContentBlock::text(missing)]));
                        }
                    }
                }
                "list-data" => {
                    let entries = self.store.entries();
                    if entries.is_empty() {
                        "No data stored".to_owned()
                    } else {
                        let lines: Vec<String> =
                            entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
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
