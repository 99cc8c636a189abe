//! serpapi: Google search through SerpApi's `/search` endpoint, with guMCP's one tool. It is code
//! because guMCP's `search_type` is not a SerpApi parameter but picks Google's `tbm` (images,
//! news, videos, shopping, patents, local results), and because `output = "html"` answers with
//! a page rather than JSON. The API key travels as SerpApi wants it, the `api_key` parameter.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::Upstream;
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// The arguments passed on to SerpApi as they are, in guMCP's order.
const PASSED_ON: [&str; 24] = [
    "q",
    "location",
    "google_domain",
    "gl",
    "hl",
    "num",
    "start",
    "safe",
    "device",
    "uule",
    "ludocid",
    "lsig",
    "kgmid",
    "si",
    "ibp",
    "uds",
    "cr",
    "lr",
    "tbs",
    "nfpr",
    "filter",
    "no_cache",
    "async",
    "output",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Serpapi {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: vec![search_tool()],
    })
}

struct Serpapi {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn search_tool() -> Tool {
    tool(
        "serpapi_search",
        "Search Google using SerpAPI",
        json!({
            "type": "object",
            "properties": {
                "q": { "type": "string", "description": "The search query" },
                "search_type": { "type": "string", "enum": ["web", "images", "news", "videos", "shopping", "patents", "local"], "description": "The kind of results (default: web)" },
                "location": { "type": "string", "description": "Where the search is made from (\"Austin, Texas\")" },
                "uule": { "type": "string", "description": "Google-encoded location (instead of location)" },
                "ludocid": { "type": "string", "description": "The CID of a Google My Business listing" },
                "lsig": { "type": "string", "description": "Forces the knowledge graph map view" },
                "kgmid": { "type": "string", "description": "The id of a Knowledge Graph listing" },
                "si": { "type": "string", "description": "Cached search parameters of a Google search" },
                "ibp": { "type": "string", "description": "Layouts and expansions to render" },
                "uds": { "type": "string", "description": "A search filter Google provides" },
                "google_domain": { "type": "string", "description": "The Google domain (default google.com)" },
                "gl": { "type": "string", "description": "Country code (us, fr, …)" },
                "hl": { "type": "string", "description": "Language code (en, fr, …)" },
                "cr": { "type": "string", "description": "Countries to limit to (countryFR|countryDE)" },
                "lr": { "type": "string", "description": "Languages to limit to (lang_fr|lang_de)" },
                "tbs": { "type": "string", "description": "Advanced parameters (dates, patents, news, …)" },
                "num": { "type": "integer", "description": "Number of results (default 10)" },
                "start": { "type": "integer", "description": "Result offset, for further pages" },
                "safe": { "type": "string", "description": "Safe search: active or off" },
                "nfpr": { "type": "integer", "description": "1 leaves out results of an auto-corrected query" },
                "filter": { "type": "integer", "description": "1 (default) keeps the similar and omitted results filters, 0 turns them off" },
                "device": { "type": "string", "enum": ["desktop", "tablet", "mobile"], "description": "Device (default desktop)" },
                "no_cache": { "type": "boolean", "description": "Fetch fresh results even when cached ones exist" },
                "async": { "type": "boolean", "description": "Submit the search and fetch it later (not with no_cache)" },
                "output": { "type": "string", "enum": ["json", "html"], "description": "json (default) or html" }
            },
            "required": ["q"]
        }),
    )
}

/// Google's `tbm` for a search type; the web search has none.
fn tbm(search_type: &str) -> Option<&'static str> {
    match search_type {
        "images" => Some("isch"),
        "news" => Some("nws"),
        "videos" => Some("vid"),
        "shopping" => Some("shop"),
        "patents" => Some("pts"),
        "local" => Some("lcl"),
        _ => None,
    }
}

/// An argument as a query value: strings as they are, numbers and booleans printed.
fn as_query(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// SerpApi's query for the arguments (the API key is added by the runtime).
fn search_query(arguments: &JsonObject) -> Result<Vec<(&'static str, String)>, String> {
    required_text(arguments, "q")?;
    let mut query = vec![("engine", "google".to_owned())];
    if let Some(tbm) = text(arguments, "search_type").and_then(tbm) {
        query.push(("tbm", tbm.to_owned()));
    }
    for name in PASSED_ON {
        if let Some(value) = arguments.get(name).and_then(as_query) {
            query.push((name, value));
        }
    }
    Ok(query)
}

impl Serpapi {
    async fn search(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let query = search_query(arguments)?;
        let api = self.upstream.manifest_api(&self.manifest, ctx);
        if text(arguments, "output") == Some("html") {
            let page = api.bytes(Method::GET, "/search", &query).await?;
            return Ok(Value::String(
                String::from_utf8_lossy(&page.bytes).into_owned(),
            ));
        }
        api.json(Method::GET, "/search", &query, None).await
    }
}

impl McpServer for Serpapi {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            if name != "serpapi_search" {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            }
            Ok(answer(self.search(&arguments, ctx).await))
        })
    }
}
