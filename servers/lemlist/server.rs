//! lemlist: lemlist's API with guMCP's thirty tools. Twenty-eight are declared in
//! `server.toml`; `delete_lead` is code (the lead is named by its id when given, else by its
//! email) and so is `export_unsubscribes` (lemlist answers CSV, not JSON).

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's positions of the two coded tools.
const DELETE_LEAD_AT: usize = 20;
const EXPORT_UNSUBSCRIBES_AT: usize = 26;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.insert(DELETE_LEAD_AT.min(tools.len()), delete_lead_tool());
    tools.insert(
        EXPORT_UNSUBSCRIBES_AT.min(tools.len()),
        tool(
            "export_unsubscribes",
            "Download a CSV file containing all unsubscribed email addresses from Lemlist.",
            json!({ "type": "object", "properties": {}, "required": [] }),
        ),
    );
    Arc::new(Lemlist {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Lemlist {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but the two coded ones, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn delete_lead_tool() -> Tool {
    tool(
        "delete_lead",
        "Delete a lead from a specific Lemlist campaign by campaignId and leadId (email address). All information, including statistics, will be permanently deleted.",
        json!({
            "type": "object",
            "properties": {
                "campaignId": { "type": "string", "description": "The ID of the campaign from which to delete the lead." },
                "leadId": { "type": "string", "description": "The ID of the lead to delete (used instead of the email when given)." },
                "email": { "type": "string", "description": "The email address of the lead to delete." }
            },
            "required": ["campaignId", "email"]
        }),
    )
}

/// `DELETE /campaigns/{campaignId}/leads/{lead}?action=remove`: the lead by its id when
/// given, else by its email.
fn delete_lead_path(arguments: &JsonObject) -> Result<String, String> {
    let campaign = id_segment(required_text(arguments, "campaignId")?)?;
    let lead = text(arguments, "leadId")
        .filter(|id| !id.trim().is_empty())
        .map_or_else(|| required_text(arguments, "email"), Ok)?;
    Ok(format!("/campaigns/{campaign}/leads/{}", id_segment(lead)?))
}

impl Lemlist {
    async fn delete_lead(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = delete_lead_path(arguments)?;
        let query = [("action", "remove".to_owned())];
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::DELETE, &path, &query, None)
            .await
    }

    async fn export_unsubscribes(&self, ctx: &RequestContext) -> Result<Value, String> {
        let csv = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .bytes(Method::GET, "/unsubs/export", &[])
            .await?;
        Ok(json!({ "export_data": String::from_utf8_lossy(&csv.bytes) }))
    }
}

impl McpServer for Lemlist {
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
        match name {
            "delete_lead" => {
                Box::pin(async move { Ok(answer(self.delete_lead(&arguments, ctx).await)) })
            }
            "export_unsubscribes" => {
                Box::pin(async move { Ok(answer(self.export_unsubscribes(ctx).await)) })
            }
            _ => self.declared.call_tool(name, arguments, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_is_named_by_its_id_else_by_its_email() {
        let by_email = json!({ "campaignId": "cam_1", "email": "ada@example.com" });
        assert_eq!(
            delete_lead_path(by_email.as_object().unwrap()).unwrap(),
            "/campaigns/cam_1/leads/ada%40example.com"
        );
        let by_id = json!({ "campaignId": "cam_1", "email": "ada@example.com", "leadId": "lea_9" });
        assert_eq!(
            delete_lead_path(by_id.as_object().unwrap()).unwrap(),
            "/campaigns/cam_1/leads/lea_9"
        );
    }
}
