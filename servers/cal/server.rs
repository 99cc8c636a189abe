//! cal: Cal.com's v2 API with guMCP's ten tools, all declared in `server.toml`. The code only
//! rewrites one argument: get_bookings' `status` is a list (guMCP's schema), which Cal.com reads
//! as one comma-separated value.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;

use crate::servers::http::HttpServer;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Cal {
        declared: HttpServer::new(init.manifest, init.upstream),
    })
}

struct Cal {
    declared: HttpServer,
}

/// get_bookings' statuses as the one value Cal.com reads (`upcoming,past`).
fn joined_statuses(mut arguments: JsonObject) -> JsonObject {
    if let Some(Value::Array(statuses)) = arguments.get("status") {
        let joined: Vec<&str> = statuses.iter().filter_map(Value::as_str).collect();
        let joined = joined.join(",");
        if joined.is_empty() {
            arguments.remove("status");
        } else {
            arguments.insert("status".to_owned(), Value::String(joined));
        }
    }
    arguments
}

impl McpServer for Cal {
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
        let arguments = if name == "get_bookings" {
            joined_statuses(arguments)
        } else {
            arguments
        };
        self.declared.call_tool(name, arguments, ctx)
    }
}
