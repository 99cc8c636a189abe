//! zendesk: its four tools are declared in `server.toml` and run by the `http` engine; code
//! serves guMCP's resources: the user's ticket views as `zendesk://view/{id}`, each read as the
//! view with its tickets. The runtime's `Api` fills the user's subdomain, applies the
//! credentials and words upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{id_segment, json_resource};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const VIEW_URI: &str = "zendesk://view/";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Zendesk {
        declared: HttpServer::new(init.manifest.clone(), init.upstream.clone()),
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Zendesk {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

impl Zendesk {
    async fn get(&self, path: &str, ctx: &RequestContext) -> Result<Value, String> {
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, path, &[], None)
            .await
    }

    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let views = self.get("/views.json", ctx).await?;
        Ok(views
            .get("views")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|view| {
                let id = view.get("id")?;
                let title = view
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some(
                    Resource::new(format!("{VIEW_URI}{id}"), format!("View: {title}"))
                        .with_description(format!("Zendesk ticket view: {title}"))
                        .with_mime_type("application/json"),
                )
            })
            .collect())
    }

    /// The view and its tickets; `None` for a URI that names no view.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some(id) = uri.strip_prefix(VIEW_URI) else {
            return Ok(None);
        };
        let id = id_segment(id)?;
        let view = self.get(&format!("/views/{id}.json"), ctx).await?;
        let tickets = self.get(&format!("/views/{id}/tickets.json"), ctx).await?;
        Ok(Some(json!({
            "view": view.get("view").cloned().unwrap_or(json!({})),
            "tickets": tickets.get("tickets").cloned().unwrap_or(json!([])),
        })))
    }
}

impl McpServer for Zendesk {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.declared.tools()
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
        self.declared.call_tool(name, arguments, ctx)
    }
}
