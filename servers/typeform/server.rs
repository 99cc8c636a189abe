//! typeform: Typeform's Create and Responses APIs with guMCP's four tools, all declared in
//! `server.toml` and run by the `http` engine, and guMCP's resources, which need code: each
//! workspace is `typeform://workspace/{id}`, read as the workspace with its forms (up to 20),
//! and each form `typeform://form/{id}`, read as the form with a summary of its responses
//! (how many in all, the latest five). The runtime's `Api` does the credentials, the
//! refresh-and-retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{id_segment, json_resource};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const WORKSPACE_URI: &str = "typeform://workspace/";
const FORM_URI: &str = "typeform://form/";
/// Forms listed as resources: one page, Typeform's largest.
const LISTED_FORMS: &str = "200";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Typeform {
        declared: HttpServer::new(init.manifest.clone(), init.upstream.clone()),
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Typeform {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

/// The `items` of a Typeform list answer.
fn items(answer: &Value) -> Vec<Value> {
    answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// An item of a list as a resource named `label: <its name field>`; `None` without an id.
fn resource(item: &Value, uri: &str, label: &str, name_field: &str) -> Option<Resource> {
    let id = item.get("id")?.as_str()?;
    let name = item.get(name_field)?.as_str()?;
    Some(
        Resource::new(format!("{uri}{id}"), format!("{label}: {name}"))
            .with_mime_type("application/json"),
    )
}

impl Typeform {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let workspaces = api.json(Method::GET, "/workspaces", &[], None).await?;
        let forms = api
            .json(
                Method::GET,
                "/forms",
                &[("page_size", LISTED_FORMS.to_owned())],
                None,
            )
            .await?;
        let workspaces = items(&workspaces);
        let forms = items(&forms);
        Ok(workspaces
            .iter()
            .filter_map(|item| resource(item, WORKSPACE_URI, "Workspace", "name"))
            .chain(
                forms
                    .iter()
                    .filter_map(|item| resource(item, FORM_URI, "Form", "title")),
            )
            .collect())
    }

    /// A workspace with its forms, or a form with a summary of its responses.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let api = self.api(ctx);
        if let Some(id) = uri.strip_prefix(WORKSPACE_URI) {
            let id = id.to_owned();
            let workspace = api
                .json(
                    Method::GET,
                    &format!("/workspaces/{}", id_segment(&id)?),
                    &[],
                    None,
                )
                .await?;
            let query = [("workspace_id", id), ("page_size", "20".to_owned())];
            let forms = api.json(Method::GET, "/forms", &query, None).await?;
            return Ok(Some(
                json!({ "workspace": workspace, "forms": items(&forms) }),
            ));
        }
        let Some(id) = uri.strip_prefix(FORM_URI) else {
            return Ok(None);
        };
        let form_path = format!("/forms/{}", id_segment(id)?);
        let form = api.json(Method::GET, &form_path, &[], None).await?;
        let responses = api
            .json(
                Method::GET,
                &format!("{form_path}/responses"),
                &[("page_size", "10".to_owned())],
                None,
            )
            .await?;
        let listed = items(&responses);
        Ok(Some(json!({
            "form": form,
            "responses_summary": {
                "total_items": responses.get("total_items").cloned().unwrap_or(json!(0)),
                "response_count": listed.len(),
                "latest_responses": listed.iter().take(5).collect::<Vec<_>>(),
            }
        })))
    }
}

impl McpServer for Typeform {
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
