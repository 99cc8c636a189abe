//! zoom: Zoom's API v2 with guMCP's eleven tools, names and arguments. Ten are one request
//! each, declared in `server.toml` and handed to the runtime's `http` engine; add_attendees is
//! code: it reads the meeting's invitees and adds the new ones to them (guMCP replaced them
//! with the new ones). The runtime's `Api` does the credentials, the refresh-and-retry on 401
//! and the wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 11] = [
    "create_meeting",
    "update_meeting",
    "get_meeting",
    "list_meetings",
    "list_upcoming_meetings",
    "list_all_recordings",
    "get_meeting_recordings",
    "get_meeting_participant_reports",
    "add_attendees",
    "fetch_meetings_by_date",
    "delete_meeting",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = vec![tool(
        "add_attendees",
        "Add attendees to a Zoom meeting",
        json!({
            "type": "object",
            "properties": {
                "meeting_id": { "type": "string", "description": "The meeting's id" },
                "attendees": { "type": "array", "items": { "type": "string" }, "description": "List of email addresses of attendees" }
            },
            "required": ["meeting_id", "attendees"]
        }),
    )];
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Zoom {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Zoom {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// The meeting's invitees with `added` after them, each address once (case aside), and the
/// addresses that were new.
fn with_invitees(meeting: &Value, added: &[&str]) -> (Vec<Value>, Vec<String>) {
    let mut invitees: Vec<Value> = meeting
        .pointer("/settings/meeting_invitees")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut new = Vec::new();
    for email in added {
        let known = invitees.iter().any(|invitee| {
            invitee
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(email))
        });
        if !known {
            invitees.push(json!({ "email": email }));
            new.push((*email).to_owned());
        }
    }
    (invitees, new)
}

impl Zoom {
    async fn add_attendees(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let meeting_id = required_text(arguments, "meeting_id")?;
        let path = format!("/meetings/{}", id_segment(meeting_id)?);
        let added: Vec<&str> = arguments
            .get("attendees")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let api = self.upstream.manifest_api(&self.manifest, ctx);
        let meeting = api.json(Method::GET, &path, &[], None).await?;
        let (invitees, new) = with_invitees(&meeting, &added);
        if new.is_empty() {
            return Ok(json!(format!(
                "Every attendee given is already invited to meeting {meeting_id}."
            )));
        }
        let body = json!({ "settings": { "meeting_invitees": invitees } });
        api.json(Method::PATCH, &path, &[], Some(&body)).await?;
        Ok(json!(format!(
            "Invited {} to meeting {meeting_id}.",
            new.join(", ")
        )))
    }
}

impl McpServer for Zoom {
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
            match name {
                "add_attendees" => Ok(answer(self.add_attendees(&arguments, ctx).await)),
                _ => Err(crate::protocol::error::McpError::invalid_params(format!(
                    "Unknown tool: {name}"
                ))
                .into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitees_are_added_once_each() {
        let meeting =
            json!({ "settings": { "meeting_invitees": [{ "email": "Ada@example.com" }] } });
        let (invitees, new) = with_invitees(&meeting, &["ada@example.com", "bob@example.com"]);
        assert_eq!(
            invitees,
            vec![
                json!({ "email": "Ada@example.com" }),
                json!({ "email": "bob@example.com" })
            ]
        );
        assert_eq!(new, ["bob@example.com"]);
        let (_, none) = with_invitees(&json!({}), &[]);
        assert!(none.is_empty());
    }
}
