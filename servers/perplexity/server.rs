//! perplexity: Perplexity's Sonar models with guMCP's two tools and two prompts. chat and the
//! prompts are declared in `server.toml` and run by the `http` engine; search is code, because
//! its answer is more than a part of Perplexity's: with `return_related` the related questions
//! Perplexity found follow the answer's text, as guMCP writes them. Its recency filter takes
//! guMCP's values, `year` and `none` included; `none` sends no filter (guMCP sent the word,
//! which the API does not know). The prompt search_with_recency likewise leaves the time range
//! out of its text for `none` or an unknown value, as guMCP's.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, GetPromptResult, JsonObject, Prompt, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's models, in its order.
const MODELS: [&str; 5] = [
    "sonar",
    "sonar-pro",
    "sonar-deep-research",
    "sonar-reasoning",
    "sonar-reasoning-pro",
];

/// guMCP's recency filters, in its order; `none` is no filter.
const RECENCY_FILTERS: [&str; 6] = ["hour", "day", "week", "month", "year", "none"];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = vec![search_tool()];
    tools.extend(declared.tools());
    Arc::new(Perplexity {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Perplexity {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// chat and the prompts, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn search_tool() -> Tool {
    tool(
        "search",
        "Search the web using Perplexity's API",
        json!({
            "type": "object",
            "properties": {
                "query": { "type": "string", "description": "The search query" },
                "model": { "type": "string", "enum": MODELS, "description": "The model to use (default: sonar)" },
                "recency_filter": { "type": "string", "enum": RECENCY_FILTERS, "description": "Filter results by time" },
                "return_related": { "type": "boolean", "description": "Whether to return related questions" }
            },
            "required": ["query"]
        }),
    )
}

/// The request body guMCP sends for a search.
fn search_body(arguments: &JsonObject) -> Result<Value, String> {
    let query = required_text(arguments, "query")?;
    let mut body = json!({
        "model": text(arguments, "model").unwrap_or("sonar"),
        "messages": [{ "role": "user", "content": query }],
        "return_related_questions": related_asked(arguments),
        "web_search_options": { "search_context_size": "high" }
    });
    if let Some(recency) = text(arguments, "recency_filter").filter(|r| *r != "none") {
        body["search_recency_filter"] = json!(recency);
    }
    Ok(body)
}

fn related_asked(arguments: &JsonObject) -> bool {
    arguments
        .get("return_related")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The answer's text and, when asked for and found, its related questions as guMCP lists them.
fn search_answer(answer: &Value, with_related: bool) -> String {
    let mut text = answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or("No response generated")
        .to_owned();
    let related: Vec<&str> = answer
        .get("related_questions")
        .and_then(Value::as_array)
        .map(|questions| questions.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if with_related && !related.is_empty() {
        text.push_str("\n\n**Related Questions:**\n");
        for question in related {
            text.push_str(&format!("- {question}\n"));
        }
    }
    text
}

impl Perplexity {
    async fn search(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let body = search_body(arguments)?;
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/chat/completions", &[], Some(&body))
            .await?;
        Ok(Value::String(search_answer(
            &answer,
            related_asked(arguments),
        )))
    }
}

impl McpServer for Perplexity {
    fn features(&self) -> Features {
        self.declared.features()
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn prompts(&self) -> Vec<Prompt> {
        self.declared.prompts()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        let mut arguments = arguments;
        // guMCP's `none` (and any value it does not know) means no time range in the text.
        if text(&arguments, "recency")
            .is_some_and(|recency| recency == "none" || !RECENCY_FILTERS.contains(&recency))
        {
            arguments.remove("recency");
        }
        self.declared.get_prompt(name, arguments, ctx)
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
    fn related_questions_follow_the_answer_only_when_asked_for() {
        let answer = json!({
            "choices": [{ "message": { "content": "Rust is a language." } }],
            "related_questions": ["Who made Rust?", "Is Rust fast?"]
        });
        assert_eq!(search_answer(&answer, false), "Rust is a language.");
        assert_eq!(
            search_answer(&answer, true),
            "Rust is a language.\n\n**Related Questions:**\n- Who made Rust?\n- Is Rust fast?\n"
        );
        let none: JsonObject = json!({ "query": "q", "recency_filter": "none" })
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(search_body(&none)
            .unwrap()
            .get("search_recency_filter")
            .is_none());
    }
}
