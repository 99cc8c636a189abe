//! loops: Loops' API with guMCP's eleven tools. Nine are declared in `server.toml`; the two
//! updates are code, because their body is the fields given (`body`) with the contact's key
//! (`email` or `userId`) merged in, which a template cannot express.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// The declared tools that come before the updates in guMCP's order.
const BEFORE_UPDATES: usize = 6;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    let at = BEFORE_UPDATES.min(tools.len());
    tools.splice(
        at..at,
        [
            update_tool("update_contact_by_email", "email"),
            update_tool("update_contact_by_user_id", "user_id"),
        ],
    );
    Arc::new(Loops {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Loops {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but the updates, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn update_tool(name: &'static str, key: &'static str) -> Tool {
    let (description, key_description) = if key == "email" {
        (
            "Update a contact found by email address (created if there is none)",
            "The contact's email address",
        )
    } else {
        (
            "Update a contact found by user id (created if there is none)",
            "The contact's user id",
        )
    };
    tool(
        name,
        description,
        json!({
            "type": "object",
            "properties": {
                key: { "type": "string", "description": key_description },
                "body": { "type": "object", "description": "The fields to change: firstName, lastName, subscribed, userGroup, mailingLists, custom properties…" }
            },
            "required": [key, "body"]
        }),
    )
}

/// The `/contacts/update` body: the fields given, with the contact's key as Loops names it.
fn update_body(arguments: &JsonObject, key: &str) -> Result<Value, String> {
    let id = required_text(arguments, key)?;
    let Some(Value::Object(fields)) = arguments.get("body") else {
        return Err("body must be an object of the fields to change".to_owned());
    };
    let mut body = fields.clone();
    let loops_key = if key == "email" { "email" } else { "userId" };
    body.insert(loops_key.to_owned(), json!(id));
    Ok(Value::Object(body))
}

impl Loops {
    async fn update(
        &self,
        arguments: &JsonObject,
        key: &str,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = update_body(arguments, key)?;
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::PUT, "/contacts/update", &[], Some(&body))
            .await
    }
}

impl McpServer for Loops {
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
        let key = match name {
            "update_contact_by_email" => "email",
            "update_contact_by_user_id" => "user_id",
            _ => return self.declared.call_tool(name, arguments, ctx),
        };
        Box::pin(async move { Ok(answer(self.update(&arguments, key, ctx).await)) })
    }
}
