//! firecrawl: Firecrawl's v1 API with guMCP's twelve tools. Eleven are declared in
//! `server.toml` (the batch scrape, the crawl and the extraction follow their jobs through the
//! engine's `poll`); `search` is code, because guMCP's `include_content` flag is no field of
//! Firecrawl's search: asking for the pages' content is a `scrapeOptions` object.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Where guMCP lists `search` among its tools.
const SEARCH_AT: usize = 10;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.insert(SEARCH_AT.min(tools.len()), search_tool());
    Arc::new(Firecrawl {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Firecrawl {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but search, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn search_tool() -> Tool {
    tool(
        "search",
        "Search the web and get full page content for search results",
        json!({
            "type": "object",
            "properties": {
                "query": { "type": "string", "description": "The search query" },
                "limit": { "type": "integer", "default": 5, "description": "Maximum number of results to return (1-50)" },
                "lang": { "type": "string", "default": "en", "description": "Language code for search results" },
                "country": { "type": "string", "default": "us", "description": "Country code for search results" },
                "include_content": { "type": "boolean", "default": false, "description": "When true, returns full page content (markdown) for search results" }
            },
            "required": ["query"]
        }),
    )
}

/// The `/search` body: the plain arguments, and the pages' markdown asked for through
/// `scrapeOptions` when `include_content` is true.
fn search_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut body = json!({ "query": required_text(arguments, "query")? });
    for key in ["limit", "lang", "country"] {
        if let Some(value) = arguments.get(key).filter(|value| !value.is_null()) {
            body[key] = value.clone();
        }
    }
    if arguments.get("include_content").and_then(Value::as_bool) == Some(true) {
        body["scrapeOptions"] = json!({ "formats": ["markdown"] });
    }
    Ok(body)
}

impl Firecrawl {
    async fn search(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let body = search_body(arguments)?;
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/search", &[], Some(&body))
            .await
    }
}

impl McpServer for Firecrawl {
    fn features(&self) -> Features {
        self.declared.features()
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        if name != "search" {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move { Ok(answer(self.search(&arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_asked_for_as_markdown_scrape_options() {
        let plain = json!({ "query": "rust", "limit": 3 });
        assert_eq!(
            search_body(plain.as_object().unwrap()).unwrap(),
            json!({ "query": "rust", "limit": 3 })
        );
        let content = json!({ "query": "rust", "include_content": true, "lang": "de" });
        assert_eq!(
            search_body(content.as_object().unwrap()).unwrap(),
            json!({ "query": "rust", "lang": "de", "scrapeOptions": { "formats": ["markdown"] } })
        );
    }
}
