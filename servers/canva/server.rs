//! canva: Canva's Connect API with guMCP's fourteen tools, all declared in `server.toml` and
//! run by the `http` engine, and guMCP's resources, which need code: the user's designs (the
//! most recently changed first, one page) as `canva://design/{id}`, each read as Canva describes
//! it. The runtime's `Api` does the credentials, the refresh-and-retry on 401 and the wording of
//! upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::Value;

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{id_segment, json_resource};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const DESIGN_URI: &str = "canva://design/";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Canva {
        declared: HttpServer::new(init.manifest.clone(), init.upstream.clone()),
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Canva {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

impl Canva {
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let query = [("sort_by", "modified_descending".to_owned())];
        let designs = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, "/designs", &query, None)
            .await?;
        Ok(designs
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|design| {
                let id = design.get("id")?.as_str()?;
                let title = design
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("Untitled design");
                Some(
                    Resource::new(format!("{DESIGN_URI}{id}"), title.to_owned())
                        .with_description(format!("Canva design: {title}"))
                        .with_mime_type("application/json"),
                )
            })
            .collect())
    }

    /// A design as Canva describes it; `None` when the URI names no design.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some(id) = uri.strip_prefix(DESIGN_URI) else {
            return Ok(None);
        };
        let path = format!("/designs/{}", id_segment(id)?);
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, &path, &[], None)
            .await?;
        Ok(Some(answer))
    }
}

impl McpServer for Canva {
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
