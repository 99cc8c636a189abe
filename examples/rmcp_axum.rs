//! The rmcp + axum baseline: rmcp's Streamable HTTP server with guMCP's simple store/retrieve
//! tools, as an rmcp user would write it (the handler by hand rather than with rmcp's macros,
//! to keep the bench build lean). Prints `listening on http://…` like `gumcp-actors serve`.
//!
//! It also has hackernews's `get_story_details`, the tool `gumcp-actors` declares in
//! `servers/hackernews/server.toml`, written the way a careful rmcp user would: one GET of
//! `{upstream}/item/{id}.json` per call through one shared reqwest client (pooled keep-alive
//! connections, TCP_NODELAY, no proxy lookup, no redirects), the answer as pretty JSON text
//! plus structured content as gumcp shapes it. `--upstream URL` replaces the real API's base
//! URL (the load generator passes its mock's).
//!
//! `--tuned` turns on what rmcp leaves off: TCP_NODELAY on accepted sockets (without it small
//! chunked SSE writes wait ~40 ms for delayed ACKs) and JSON replies to stateless requests
//! (`json_response`; rmcp still answers session requests as SSE). Without the flag: rmcp's
//! defaults. Served on `/mcp`, with `/health_check` for the startup preset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};

/// guMCP's key-value example (one store for everyone, as guMCP has it) and the Hacker News
/// story tool.
#[derive(Clone)]
struct SimpleTools {
    store: Arc<Mutex<HashMap<String, String>>>,
    upstream: Upstream,
}

/// Where `get_story_details` sends its GET, and the client it sends it with.
#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    base_url: Arc<str>,
}

impl Upstream {
    /// The client tuned as it would be for production: one pool for every call (keep-alive
    /// connections reused, as many idle ones kept as were needed), TCP_NODELAY, HTTP/1.1 as
    /// the API speaks it, no proxy lookup and no redirects.
    fn new(base_url: &str) -> Result<Self, reqwest::Error> {
        // reqwest is built with rustls and no crypto provider, as in the runtime (src/upstream.rs).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').into(),
        })
    }

    /// The story as the tool answers it: pretty JSON text and the object as structured
    /// content, or a tool error saying what failed.
    async fn story(&self, id: u64) -> CallToolResult {
        let url = format!("{}/item/{id}.json", self.base_url);
        let outcome = async {
            let response = self.client.get(url).send().await?.error_for_status()?;
            response.bytes().await
        }
        .await;
        let story = match outcome {
            Ok(body) => serde_json::from_slice::<Value>(&body)
                .map_err(|err| format!("Hacker News answered with invalid JSON: {err}")),
            Err(err) => Err(format!("Hacker News request failed: {}", err.without_url())),
        };
        match story {
            Ok(Value::Object(story)) => {
                let text = serde_json::to_string_pretty(&story).unwrap_or_default();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(Value::Object(story));
                result
            }
            Ok(_) => CallToolResult::error(vec![ContentBlock::text(format!("No story {id}"))]),
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        }
    }
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
            Tool::new(
                "list-data",
                "List all stored key-value pairs",
                schema(json!({"type": "object", "properties": {}})),
            ),
            Tool::new(
                "get_story_details",
                "Get a specific story by ID",
                schema(json!({
                    "type": "object",
                    "properties": {"id": {"type": "integer", "description": "Hacker News story ID"}},
                    "required": ["id"]
                })),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "get_story_details" {
            let id = request
                .arguments
                .as_ref()
                .and_then(|arguments| arguments.get("id"))
                .and_then(Value::as_u64)
                .ok_or_else(|| ErrorData::invalid_params("id must be an integer", None))?;
            return Ok(self.upstream.story(id).await.into());
        }
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
            "list-data" => {
                let store = self.store.lock().map(|s| s.clone()).unwrap_or_default();
                if store.is_empty() {
                    "No data stored".to_owned()
                } else {
                    let lines: Vec<String> =
                        store.iter().map(|(k, v)| format!("- {k}: {v}")).collect();
                    format!("Stored data:\n{}", lines.join("\n"))
                }
            }
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

/// The value after `--name`, if given.
fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let tuned = args.iter().any(|arg| arg == "--tuned");
    let config = StreamableHttpServerConfig::default().with_json_response(tuned);
    let base_url = arg(&args, "--upstream").unwrap_or("https://hacker-news.firebaseio.com/v0");
    let tools = SimpleTools {
        store: Arc::default(),
        upstream: Upstream::new(base_url).map_err(std::io::Error::other)?,
    };
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new()
        .route("/health_check", axum::routing::get(|| async { "ok" }))
        .nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind((
        "127.0.0.1",
        arg(&args, "--port")
            .and_then(|port| port.parse().ok())
            .unwrap_or(0),
    ))
    .await?;
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
