//! apify: Apify's v2 API with guMCP's seventeen tools. Fifteen are declared in `server.toml`
//! (`run_actor` and `run_task` follow their run through the engine's `poll`); `create_actor`
//! and `create_task` are code, because their body is the caller's `body` object with one more
//! field merged in (the Actor's `name`, the task's `actId`).

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// A tool whose body is `body` with one argument merged in: its name, guMCP's position, the
/// argument, the field it becomes, and where it posts.
struct Merged {
    name: &'static str,
    at: usize,
    argument: &'static str,
    field: &'static str,
    path: &'static str,
}

const MERGED: [Merged; 2] = [
    Merged {
        name: "create_actor",
        at: 0,
        argument: "name",
        field: "name",
        path: "/acts",
    },
    Merged {
        name: "create_task",
        at: 9,
        argument: "actor_id",
        field: "actId",
        path: "/actor-tasks",
    },
];

fn merged_tool(merged: &Merged) -> Tool {
    match merged.name {
        "create_actor" => tool(
            "create_actor",
            "Create a new Actor",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "The name of the actor alphanumeric characters, hyphens are allowed with no spaces" },
                    "body": { "type": "object", "description": "The Actor's other fields (title, description, isPublic, versions, …)" }
                },
                "required": ["name"]
            }),
        ),
        _ => tool(
            "create_task",
            "Create a new Task",
            json!({
                "type": "object",
                "properties": {
                    "actor_id": { "type": "string", "description": "The Actor's id or username~name" },
                    "body": { "type": "object", "description": "The task's fields (name, options, input)" }
                },
                "required": ["actor_id"]
            }),
        ),
    }
}

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    for merged in &MERGED {
        tools.insert(merged.at.min(tools.len()), merged_tool(merged));
    }
    Arc::new(Apify {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Apify {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but the two creations, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// The caller's `body` with the merged argument in it (the argument wins).
fn merged_body(merged: &Merged, arguments: &JsonObject) -> Result<Value, String> {
    let mut body = match arguments.get("body") {
        Some(Value::Object(body)) => body.clone(),
        _ => JsonObject::new(),
    };
    let value = required_text(arguments, merged.argument)?;
    body.insert(merged.field.to_owned(), json!(value));
    Ok(Value::Object(body))
}

impl Apify {
    async fn create(
        &self,
        merged: &Merged,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = merged_body(merged, arguments)?;
        let created = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, merged.path, &[], Some(&body))
            .await?;
        Ok(created.get("data").cloned().unwrap_or(created))
    }
}

impl McpServer for Apify {
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
        let Some(merged) = MERGED.iter().find(|merged| merged.name == name) else {
            return self.declared.call_tool(name, arguments, ctx);
        };
        Box::pin(async move { Ok(answer(self.create(merged, &arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_and_the_actor_go_into_the_body() {
        let [actor, task] = &MERGED;
        let given = json!({ "name": "my-actor", "body": { "title": "Mine", "name": "other" } });
        assert_eq!(
            merged_body(actor, given.as_object().unwrap()).unwrap(),
            json!({ "title": "Mine", "name": "my-actor" })
        );
        let given = json!({ "actor_id": "apify~web-scraper" });
        assert_eq!(
            merged_body(task, given.as_object().unwrap()).unwrap(),
            json!({ "actId": "apify~web-scraper" })
        );
    }
}
