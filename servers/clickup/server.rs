//! clickup: ClickUp's API v2 with guMCP's twelve tools, names and arguments. Ten are one
//! request each, declared in `server.toml` and handed to the runtime's `http` engine.
//! get_lists and create_list are code: they reach a folder's lists or a space's folderless
//! lists, whichever id is given (the folder first, as guMCP). The runtime's `Api` does the
//! credentials (the token itself as the `Authorization` header, as ClickUp takes it), the
//! retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 12] = [
    "get_authenticated_user",
    "get_workspaces",
    "get_spaces",
    "get_folders",
    "get_lists",
    "get_tasks",
    "get_task_by_id",
    "create_task",
    "update_task",
    "add_comment",
    "create_list",
    "create_folder",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Clickup {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Clickup {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn container_properties() -> Map<String, Value> {
    let properties = json!({
        "folder_id": { "type": "string", "description": "ID of the folder (required if not providing space_id)" },
        "space_id": { "type": "string", "description": "ID of the space (required if not providing folder_id)" }
    });
    properties.as_object().cloned().unwrap_or_default()
}

fn coded_tools() -> Vec<Tool> {
    let mut listed = container_properties();
    listed.insert(
        "archived".into(),
        json!({ "type": "boolean", "description": "Whether to include archived lists" }),
    );
    let mut created = container_properties();
    for (name, schema) in [
        (
            "name",
            json!({ "type": "string", "description": "Name of the list" }),
        ),
        (
            "content",
            json!({ "type": "string", "description": "Description of the list" }),
        ),
        (
            "due_date",
            json!({ "type": "integer", "description": "Due date (unix timestamp in milliseconds)" }),
        ),
        (
            "due_date_time",
            json!({ "type": "boolean", "description": "Whether the due date includes time" }),
        ),
        (
            "priority",
            json!({ "type": "integer", "description": "Priority (1-4, where 1 is urgent, 2 is high, 3 is normal, 4 is low)" }),
        ),
        (
            "assignee",
            json!({ "type": "integer", "description": "User ID to assign the list to" }),
        ),
        (
            "status",
            json!({ "type": "string", "description": "Status of the list" }),
        ),
    ] {
        created.insert(name.into(), schema);
    }
    vec![
        tool(
            "get_lists",
            "Get all lists in a folder or space",
            json!({ "type": "object", "properties": listed }),
        ),
        tool(
            "create_list",
            "Create a new list in a folder or space",
            json!({ "type": "object", "properties": created, "required": ["name"] }),
        ),
    ]
}

/// The lists path of the folder or, without one, the space the arguments name.
fn lists_path(arguments: &JsonObject) -> Result<String, String> {
    match (text(arguments, "folder_id"), text(arguments, "space_id")) {
        (Some(folder), _) => Ok(format!("/folder/{}/list", id_segment(folder)?)),
        (None, Some(space)) => Ok(format!("/space/{}/list", id_segment(space)?)),
        (None, None) => Err("Either folder_id or space_id must be provided".to_owned()),
    }
}

impl Clickup {
    async fn get_lists(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = lists_path(arguments)?;
        let query: Vec<(&str, String)> = arguments
            .get("archived")
            .and_then(Value::as_bool)
            .map(|archived| ("archived", archived.to_string()))
            .into_iter()
            .collect();
        let listed = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, &path, &query, None)
            .await?;
        Ok(listed.get("lists").cloned().unwrap_or(listed))
    }

    async fn create_list(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = lists_path(arguments)?;
        let body: JsonObject = arguments
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "folder_id" | "space_id"))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, &path, &[], Some(&Value::Object(body)))
            .await
    }
}

impl McpServer for Clickup {
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
                "get_lists" => self.get_lists(&arguments, ctx).await,
                "create_list" => self.create_list(&arguments, ctx).await,
                _ => {
                    return Err(crate::protocol::error::McpError::invalid_params(format!(
                        "Unknown tool: {name}"
                    ))
                    .into())
                }
            };
            Ok(answer(outcome))
        })
    }
}
