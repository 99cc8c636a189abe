//! mailchimp: Mailchimp's Marketing API (3.0) at each account's own data center, with guMCP's
//! seven tools, names and arguments. Five are one request each, declared in `server.toml`; the
//! two here write a subscriber: the member is named by the email address in lower case (which
//! Mailchimp takes in place of its MD5 hash), and tags become Mailchimp's `{name, status}`
//! objects. The runtime's `Api` fills the data center, applies the credentials and words
//! upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.extend(coded_tools());
    Arc::new(Mailchimp {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Mailchimp {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// guMCP's schemas of the coded tools (they come last in guMCP's list too).
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "add_update_subscriber",
            "Add a subscriber to an audience, or update them if they are on it",
            json!({"type": "object", "properties": {
                "list_id": {"type": "string", "description": "The audience's (list's) id"},
                "email": {"type": "string", "description": "The subscriber's email address"},
                "first_name": {"type": "string", "description": "First name (FNAME)"},
                "last_name": {"type": "string", "description": "Last name (LNAME)"}
            }, "required": ["list_id", "email"]}),
        ),
        tool(
            "add_subscriber_tags",
            "Add tags to a subscriber of an audience",
            json!({"type": "object", "properties": {
                "list_id": {"type": "string", "description": "The audience's (list's) id"},
                "email": {"type": "string", "description": "The subscriber's email address"},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Tag names to add"}
            }, "required": ["list_id", "email", "tags"]}),
        ),
    ]
}

/// The member's path: the list, then the address in lower case as one segment.
fn member_path(arguments: &JsonObject) -> Result<(String, String), String> {
    let list = id_segment(required_text(arguments, "list_id")?)?;
    let email = required_text(arguments, "email")?.trim().to_lowercase();
    Ok((
        format!("/lists/{list}/members/{}", id_segment(&email)?),
        email,
    ))
}

impl Mailchimp {
    /// guMCP's upsert: subscribed if new, the names as merge fields (empty when not given).
    async fn upsert(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let (path, email) = member_path(arguments)?;
        let body = json!({
            "email_address": email,
            "status_if_new": "subscribed",
            "merge_fields": {
                "FNAME": text(arguments, "first_name").unwrap_or_default(),
                "LNAME": text(arguments, "last_name").unwrap_or_default(),
            },
        });
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::PUT, &path, &[], Some(&body))
            .await
    }

    /// The tags, each made active; Mailchimp answers 204, so the answer says what was done.
    async fn tag(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let (path, email) = member_path(arguments)?;
        let tags: Vec<&str> = arguments
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if tags.is_empty() {
            return Err("At least one tag is required".to_owned());
        }
        let body = json!({ "tags": tags.iter().map(|name| json!({ "name": name, "status": "active" })).collect::<Vec<_>>() });
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, &format!("{path}/tags"), &[], Some(&body))
            .await?;
        Ok(json!(format!(
            "Tags added to subscriber {email}: {}",
            tags.join(", ")
        )))
    }
}

impl McpServer for Mailchimp {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        if self.declared.declares(name) {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move {
            let outcome = match name {
                "add_update_subscriber" => self.upsert(&arguments, ctx).await,
                "add_subscriber_tags" => self.tag(&arguments, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
