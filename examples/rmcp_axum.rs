//! The rmcp + axum baseline: rmcp's Streamable HTTP server with guMCP's simple store/retrieve
//! tools, as an rmcp user would write it (the handler by hand rather than with rmcp's macros,
//! to keep the bench build lean). Prints `listening on http://…` like `gumcp-actors serve`.
//!
//! `--tuned` turns on what rmcp leaves off: TCP_NODELAY on accepted sockets (without it small
//! chunked SSE writes wait ~40 ms for delayed ACKs) and JSON replies to stateless requests
//! (`json_response`; rmcp still answers session requests as SSE). Without the flag: rmcp's
//! defaults. Served on `/mcp`, with `/health_check` for the startup preset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};

/// guMCP's key-value example: one store for everyone, as guMCP has it.
#[derive(Clone, Default)]
struct SimpleTools {
    store: Arc<Mutex<HashMap<String, String>>>,
}

fn schema(value: Value) -> Arc<JsonObject> {
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

fn text_argument(arguments: &Option<JsonObject>, key: &str) -> String {
    match arguments.as_ref().and_then(|a| a.get(key)) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

impl ServerHandler for SimpleTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let object = json!({"type": "object", "properties": {"key": {"type": "string"}}});
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "store-data",
                "Store a key-value pair in the server",
                schema(json!({
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["key", "value"]
                })),
            ),
            Tool::new(
                "retrieve-data",
                "Retrieve a value by its key",
                schema(object),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let key = text_argument(&request.arguments, "key");
        let text = match request.name.as_ref() {
            "store-data" => {
                let value = text_argument(&request.arguments, "value");
                let reply = format!("Stored '{key}' with value: {value}");
                if let Ok(mut store) = self.store.lock() {
                    store.insert(key, value);
                }
                reply
            }
            "retrieve-data" => match self.store.lock().ok().and_then(|s| s.get(&key).cloned()) {
                Some(value) => format!("Value for '{key}': {value}"),
                None => format!("Key '{key}' not found"),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!("Unknown tool: {other}"),
                    None,
                ))
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn port_arg(args: &[String]) -> u16 {
    args.iter()
        .position(|arg| arg == "--port")
        .and_then(|at| args.get(at + 1))
        .and_then(|port| port.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let tuned = args.iter().any(|arg| arg == "--tuned");
    let config = StreamableHttpServerConfig::default().with_json_response(tuned);
    let tools = SimpleTools::default();
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new()
        .route("/health_check", axum::routing::get(|| async { "ok" }))
        .nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_arg(&args))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    if tuned {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            // Best effort: a socket that refuses it is served anyway.
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router).await
    } else {
        axum::serve(listener, router).await
    }
}
