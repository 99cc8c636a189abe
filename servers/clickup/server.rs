//! clickup: ClickUp's API v2 with guMCP's twelve tools, names and arguments. Ten are one
//! request each, declared in `server.toml` and handed to the runtime's `http` engine.
//! get_lists and create_list are code: they reach a folder's lists or a space's folderless
//! lists, whichever id is given (the folder first, as guMCP). The runtime's `Api` does the
//! credentials (the token itself as the `Authorization` header, as ClickUp takes it), the
//! retry on 401 and the wording of upstream failures.
//!
//! guMCP's resources are code too: each workspace as `clickup://workspace/{id}` and each of
//! its spaces as `clickup://space/{id}`, read as ClickUp describes them.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const WORKSPACE_URI: &str = "clickup://workspace/";
const SPACE_URI: &str = "clickup://space/";
/// Workspaces whose spaces are listed as resources (one request each).
const LISTED_WORKSPACES: usize = 20;

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

/// A ClickUp object's text field.
fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Clickup {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The user's workspaces (ClickUp's teams).
    async fn workspaces(api: &Api<'_>) -> Result<Vec<Value>, String> {
        let teams = api.json(Method::GET, "/team", &[], None).await?;
        Ok(teams
            .get("teams")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// guMCP's resources: each workspace, then its spaces.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let mut resources = Vec::new();
        for workspace in Self::workspaces(&api).await?.iter().take(LISTED_WORKSPACES) {
            let (id, name) = (field(workspace, "id"), field(workspace, "name"));
            if id.is_empty() {
                continue;
            }
            resources.push(
                Resource::new(format!("{WORKSPACE_URI}{id}"), format!("Workspace: {name}"))
                    .with_mime_type("application/json"),
            );
            let path = format!("/team/{}/space", id_segment(id)?);
            let spaces = api.json(Method::GET, &path, &[], None).await?;
            for space in spaces
                .get("spaces")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let space_id = field(space, "id");
                if space_id.is_empty() {
                    continue;
                }
                resources.push(
                    Resource::new(
                        format!("{SPACE_URI}{space_id}"),
                        format!("Space: {} (in {name})", field(space, "name")),
                    )
                    .with_mime_type("application/json"),
                );
            }
        }
        Ok(resources)
    }

    /// A workspace (found in the list of workspaces, which is what ClickUp's API reference
    /// offers) or a space; `None` when the URI names neither.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let api = self.api(ctx);
        if let Some(id) = uri.strip_prefix(WORKSPACE_URI) {
            let workspaces = Self::workspaces(&api).await?;
            return Ok(workspaces.into_iter().find(|team| field(team, "id") == id));
        }
        let Some(id) = uri.strip_prefix(SPACE_URI) else {
            return Ok(None);
        };
        let path = format!("/space/{}", id_segment(id)?);
        api.json(Method::GET, &path, &[], None).await.map(Some)
    }

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
        let listed = self.api(ctx).json(Method::GET, &path, &query, None).await?;
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
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&Value::Object(body)))
            .await
    }
}

impl McpServer for Clickup {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move { self.resources(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let found = self.read(uri, ctx).await.map_err(McpError::internal)?;
            json_resource(uri, found)
        }
        .boxed()
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
