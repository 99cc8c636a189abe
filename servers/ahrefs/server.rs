//! ahrefs: Ahrefs' API v3 with guMCP's thirty-two tools, all declared in `server.toml` (a GET
//! each, every argument a query parameter, guMCP's default `select` columns). The code only
//! shapes answers as guMCP does: the rows of the answer's first non-empty list (in key order;
//! Ahrefs' answers hold one, named per endpoint: `backlinks`, `keywords`, `pages`, …), one
//! block each, and the whole answer when it has no rows.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;

use crate::servers::http::HttpServer;
use crate::servers::kit::success;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Ahrefs {
        declared: HttpServer::new(init.manifest, init.upstream),
    })
}

struct Ahrefs {
    declared: HttpServer,
}

/// The rows of an answer: its first non-empty list.
fn rows(answer: &Value) -> Option<Vec<Value>> {
    answer
        .as_object()?
        .values()
        .find_map(|value| value.as_array().filter(|rows| !rows.is_empty()).cloned())
}

impl McpServer for Ahrefs {
    fn features(&self) -> Features {
        self.declared.features()
    }

    fn tools(&self) -> Vec<Tool> {
        self.declared.tools()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            let result = self.declared.call_tool(name, arguments, ctx).await?;
            if result.is_error == Some(true) {
                return Ok(result);
            }
            Ok(match result.structured_content.as_ref().and_then(rows) {
                Some(rows) => success(Value::Array(rows)),
                None => result,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_non_empty_list_is_the_rows() {
        let answer = json!({ "pagination": [], "backlinks": [{ "url_from": "a" }], "x": [1] });
        assert_eq!(rows(&answer), Some(vec![json!({ "url_from": "a" })]));
        assert_eq!(
            rows(&json!({ "domain_rating": { "domain_rating": 91.0 } })),
            None
        );
    }
}
