//! monday: monday.com's GraphQL API v2 with guMCP's nineteen tools, names and arguments, all
//! declared in `server.toml` (arguments as GraphQL variables) and run by the `http` engine.
//!
//! guMCP's resources need code: workspaces (`monday://workspace/{id}`), boards
//! (`monday://board/{id}`), their items (`monday://item/{id}`) and groups
//! (`monday://board/{board}/group/{group}`), listed with one query and each read with the query
//! of the declared tool that reads it (`get_board`, `get_item`, `get_group`), so a resource
//! shows what the tool would. The runtime's `Api` does the credentials, the refresh-and-retry
//! on 401 and the wording of upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::json_resource;
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Everything the resource list names, in one request: the workspaces, and the boards (the
/// first 50) with their groups and their first items.
const LISTED: &str = "query { workspaces { id name kind } boards(limit: 50) { id name board_kind \
                      groups { id title } items_page(limit: 25) { items { id name } } } }";

const WORKSPACE_URI: &str = "monday://workspace/";
const BOARD_URI: &str = "monday://board/";
const ITEM_URI: &str = "monday://item/";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Monday {
        declared: HttpServer::new(init.manifest.clone(), init.upstream.clone()),
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Monday {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

/// A monday.com id as GraphQL takes it: the number as text (ids outgrow JSON's safe integers).
fn text_id(id: &Value) -> Option<String> {
    match id {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A list of an answer.
fn list<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn resource(uri: String, name: String, description: String) -> Resource {
    Resource::new(uri, name)
        .with_description(description)
        .with_mime_type("application/json")
}

/// What a resource URI names: the query's tool, its variables, and where its answer is.
fn target(uri: &str) -> Option<(&'static str, Value, &'static str)> {
    if let Some(id) = uri.strip_prefix(ITEM_URI) {
        return Some(("get_item", json!({ "item_id": id }), "/data/items/0"));
    }
    let rest = uri.strip_prefix(BOARD_URI)?;
    match rest.split_once("/group/") {
        Some((board, group)) if !board.contains('/') && !group.contains('/') => Some((
            "get_group",
            json!({ "board_id": board, "group_id": group }),
            "/data/boards/0/groups/0",
        )),
        Some(_) => None,
        None if !rest.contains('/') => {
            Some(("get_board", json!({ "board_id": rest }), "/data/boards/0"))
        }
        None => None,
    }
}

impl Monday {
    /// One GraphQL request; its data, or the sentence a failure should say (GraphQL reports
    /// them in a 200 answer's `errors`).
    async fn graphql(
        &self,
        query: &str,
        variables: Value,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = json!({ "query": query, "variables": variables });
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/v2", &[], Some(&body))
            .await?;
        if let Some(first) = answer.pointer("/errors/0") {
            let message = first
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the query failed");
            return Err(format!("monday.com refused the query: {message}"));
        }
        Ok(answer)
    }

    /// The query text of a declared tool.
    fn query_of(&self, tool: &str) -> Option<&str> {
        self.manifest
            .tools
            .iter()
            .find(|declared| declared.name == tool)
            .and_then(|declared| declared.graphql.as_deref())
    }

    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let answer = self.graphql(LISTED, json!({}), ctx).await?;
        let name = |item: &Value, key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut resources = Vec::new();
        for workspace in list(&answer, "/data/workspaces") {
            let Some(id) = workspace.get("id").and_then(text_id) else {
                continue;
            };
            resources.push(resource(
                format!("{WORKSPACE_URI}{id}"),
                format!("Workspace: {}", name(workspace, "name")),
                format!("Monday.com workspace ({})", name(workspace, "kind")),
            ));
        }
        let boards: Vec<&Value> = list(&answer, "/data/boards").collect();
        for board in &boards {
            let Some(id) = board.get("id").and_then(text_id) else {
                continue;
            };
            resources.push(resource(
                format!("{BOARD_URI}{id}"),
                format!("Board: {}", name(board, "name")),
                format!("Monday.com board ({})", name(board, "board_kind")),
            ));
        }
        for board in &boards {
            let (Some(board_id), board_name) =
                (board.get("id").and_then(text_id), name(board, "name"))
            else {
                continue;
            };
            for item in list(board, "/items_page/items") {
                if let Some(id) = item.get("id").and_then(text_id) {
                    resources.push(resource(
                        format!("{ITEM_URI}{id}"),
                        format!("Item: {}", name(item, "name")),
                        format!("Item in board {board_name}"),
                    ));
                }
            }
            // `topics` is the group monday.com makes for every board; guMCP leaves it out.
            for group in list(board, "/groups") {
                let id = name(group, "id");
                if id.is_empty() || id == "topics" {
                    continue;
                }
                resources.push(resource(
                    format!("{BOARD_URI}{board_id}/group/{id}"),
                    format!("Group: {}", name(group, "title")),
                    format!("Group in board {board_name}"),
                ));
            }
        }
        Ok(resources)
    }

    /// What a resource URI names, as its tool reads it; `None` when it names nothing here.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        if let Some(id) = uri.strip_prefix(WORKSPACE_URI) {
            let query = "query($ids: [ID!]) { workspaces(ids: $ids) { id name kind description } }";
            let answer = self.graphql(query, json!({ "ids": [id] }), ctx).await?;
            return Ok(answer.pointer("/data/workspaces/0").cloned());
        }
        let Some((tool, variables, found)) = target(uri) else {
            return Ok(None);
        };
        let Some(query) = self.query_of(tool) else {
            return Ok(None);
        };
        let answer = self.graphql(query, variables, ctx).await?;
        Ok(answer.pointer(found).cloned())
    }
}

impl McpServer for Monday {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
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
        self.declared.call_tool(name, arguments, ctx)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_name_their_query_and_nothing_else_passes() {
        assert_eq!(
            target("monday://item/42").map(|(tool, vars, _)| (tool, vars)),
            Some(("get_item", json!({ "item_id": "42" })))
        );
        assert_eq!(
            target("monday://board/7/group/new_group").map(|(tool, vars, _)| (tool, vars)),
            Some((
                "get_group",
                json!({ "board_id": "7", "group_id": "new_group" })
            ))
        );
        assert_eq!(
            target("monday://board/7").map(|(tool, ..)| tool),
            Some("get_board")
        );
        for unknown in [
            "monday://board/7/items",
            "monday://board/7/group/a/b",
            "monday://doc/1",
        ] {
            assert!(target(unknown).is_none(), "{unknown}");
        }
    }
}
