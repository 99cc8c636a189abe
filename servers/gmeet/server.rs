//! gmeet: Google Meet meetings as events of the user's primary Google Calendar, with guMCP's
//! six tools, names and arguments. fetch_meetings_by_date, get_meeting_details and
//! delete_meeting are one call each and are declared in `server.toml`; this code hands them to
//! the runtime's `http` engine. The other three need code: create_meeting asks Calendar for a
//! Meet conference (a request id of its own, `conferenceDataVersion=1`) and turns attendee
//! emails into attendee objects; add_attendees reads the meeting first and adds the new
//! attendees to those it has (guMCP replaced them); update_meeting sends only the fields
//! given, start_time and end_time as the event's `start` and `end` (guMCP wrote them under
//! their own names, which Calendar ignores). Times without an offset are read as UTC, as
//! guMCP's. The runtime's `Api` does the credentials, the refresh-and-retry on 401 and the
//! wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 6] = [
    "create_meeting",
    "add_attendees",
    "fetch_meetings_by_date",
    "get_meeting_details",
    "update_meeting",
    "delete_meeting",
];

const EVENTS: &str = "/calendars/primary/events";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Gmeet {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Gmeet {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn time_property() -> Value {
    json!({ "type": "string", "description": "Start time in ISO format (YYYY-MM-DDTHH:MM:SS)" })
}

fn attendees_property() -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": "List of email addresses of attendees" })
}

fn coded_tools() -> Vec<Tool> {
    let mut end_time = time_property();
    end_time["description"] = json!("End time in ISO format (YYYY-MM-DDTHH:MM:SS)");
    vec![
        tool(
            "create_meeting",
            "Create a new meeting",
            json!({
                "type": "object",
                "properties": {
                    "title": { "type": "string", "description": "Title of the meeting" },
                    "description": { "type": "string", "description": "Description of the meeting" },
                    "start_time": time_property(),
                    "end_time": end_time,
                    "attendees": attendees_property()
                },
                "required": ["title", "start_time", "end_time"]
            }),
        ),
        tool(
            "add_attendees",
            "Add attendees to a meeting.",
            json!({
                "type": "object",
                "properties": {
                    "meeting_id": { "type": "string", "description": "The meeting's event id" },
                    "attendees": attendees_property()
                },
                "required": ["meeting_id", "attendees"]
            }),
        ),
        tool(
            "update_meeting",
            "Update a meeting by meeting id.",
            json!({
                "type": "object",
                "properties": {
                    "meeting_id": { "type": "string", "description": "The meeting's event id" },
                    "summary": { "type": "string", "description": "Summary/title of the meeting" },
                    "description": { "type": "string", "description": "Description of the meeting" },
                    "start_time": time_property(),
                    "end_time": end_time
                },
                "required": ["meeting_id"]
            }),
        ),
    ]
}

/// An event time as Calendar takes it: read as UTC unless the text carries an offset.
fn event_time(date_time: &str) -> Value {
    json!({ "dateTime": date_time, "timeZone": "UTC" })
}

/// The email addresses of a list argument.
fn emails(arguments: &JsonObject) -> Vec<&str> {
    arguments
        .get("attendees")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The new event guMCP's create_meeting sends, with `request_id` for its conference.
fn new_meeting(arguments: &JsonObject, request_id: &str) -> Result<Value, String> {
    let mut event = json!({
        "summary": required_text(arguments, "title")?,
        "description": text(arguments, "description").unwrap_or_default(),
        "start": event_time(required_text(arguments, "start_time")?),
        "end": event_time(required_text(arguments, "end_time")?),
        "conferenceData": { "createRequest": { "requestId": request_id } }
    });
    if arguments.contains_key("attendees") {
        let attendees: Vec<Value> = emails(arguments)
            .into_iter()
            .map(|email| json!({ "email": email }))
            .collect();
        event["attendees"] = Value::Array(attendees);
    }
    Ok(event)
}

/// The meeting's attendees with `added` after them, each address once (case aside).
fn with_attendees(existing: &Value, added: &[&str]) -> Vec<Value> {
    let mut attendees: Vec<Value> = existing
        .get("attendees")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for email in added {
        let known = attendees.iter().any(|attendee| {
            attendee
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(email))
        });
        if !known {
            attendees.push(json!({ "email": email }));
        }
    }
    attendees
}

/// The fields update_meeting changes, as the event has them.
fn meeting_changes(arguments: &JsonObject) -> Value {
    let mut changes = Map::new();
    for field in ["summary", "description"] {
        if let Some(value) = text(arguments, field) {
            changes.insert(field.to_owned(), json!(value));
        }
    }
    if let Some(start) = text(arguments, "start_time") {
        changes.insert("start".to_owned(), event_time(start));
    }
    if let Some(end) = text(arguments, "end_time") {
        changes.insert("end".to_owned(), event_time(end));
    }
    Value::Object(changes)
}

impl Gmeet {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn create_meeting(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let request_id = format!("meeting-{}", uuid::Uuid::new_v4());
        let event = new_meeting(arguments, &request_id)?;
        let query = [("conferenceDataVersion", "1".to_owned())];
        self.api(ctx)
            .json(Method::POST, EVENTS, &query, Some(&event))
            .await
    }

    async fn add_attendees(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = format!(
            "{EVENTS}/{}",
            id_segment(required_text(arguments, "meeting_id")?)?
        );
        let api = self.api(ctx);
        let event = api.json(Method::GET, &path, &[], None).await?;
        let body = json!({ "attendees": with_attendees(&event, &emails(arguments)) });
        api.json(Method::PATCH, &path, &[], Some(&body)).await
    }

    async fn update_meeting(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = format!(
            "{EVENTS}/{}",
            id_segment(required_text(arguments, "meeting_id")?)?
        );
        let changes = meeting_changes(arguments);
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&changes))
            .await
    }
}

impl McpServer for Gmeet {
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
                "create_meeting" => self.create_meeting(&arguments, ctx).await,
                "add_attendees" => self.add_attendees(&arguments, ctx).await,
                "update_meeting" => self.update_meeting(&arguments, ctx).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn attendees_are_added_once_each() {
        let event =
            json!({ "attendees": [{ "email": "Ada@example.com", "responseStatus": "accepted" }] });
        let merged = with_attendees(&event, &["ada@example.com", "bob@example.com"]);
        assert_eq!(
            merged,
            vec![
                json!({ "email": "Ada@example.com", "responseStatus": "accepted" }),
                json!({ "email": "bob@example.com" })
            ]
        );
    }

    #[test]
    fn updates_carry_only_the_fields_given() {
        let changes = meeting_changes(&args(
            json!({ "meeting_id": "e1", "end_time": "2025-05-14T10:00:00" }),
        ));
        assert_eq!(
            changes,
            json!({ "end": { "dateTime": "2025-05-14T10:00:00", "timeZone": "UTC" } })
        );
    }
}
