//! calendly: the Calendly API v2 with guMCP's five tools, names and arguments. cancel_event and
//! create_scheduling_link are one request each, declared in `server.toml` and handed to the
//! runtime's `http` engine. The other three need code: list_event_types and
//! list_scheduled_events filter by the user's URI, which Calendly requires and which only
//! `GET /users/me` tells; get_availability and list_scheduled_events turn dates into the time
//! windows Calendly takes (an availability window starts in the future and spans at most seven
//! days). The runtime's `Api` does the credentials, the refresh-and-retry on 401 and the
//! wording of upstream failures.
//!
//! guMCP's resources are code too: the user's event types as `calendly://event_type/{id}` and
//! their active events of 30 days either side of now as `calendly://event/{id}`, each read as
//! Calendly describes it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 5] = [
    "list_event_types",
    "get_availability",
    "list_scheduled_events",
    "cancel_event",
    "create_scheduling_link",
];

const EVENT_TYPE_URI: &str = "calendly://event_type/";
const EVENT_URI: &str = "calendly://event/";

/// Calendly names resources by URIs on its API host, whatever base URL requests go to.
const API_HOST: &str = "https://api.calendly.com";

/// The longest availability window Calendly answers (seven days, less a second).
const MAX_WINDOW: TimeDelta = TimeDelta::seconds(7 * 24 * 3600 - 1);

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Calendly {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Calendly {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn date_property(what: &str) -> Value {
    json!({ "type": "string", "description": format!("{what} date (YYYY-MM-DD)") })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "list_event_types",
            "List all available event types (meeting templates)",
            json!({
                "type": "object",
                "properties": {
                    "active_only": { "type": "boolean", "description": "Only include active event types" }
                },
                "required": []
            }),
        ),
        tool(
            "get_availability",
            "Get available time slots for a specific event type",
            json!({
                "type": "object",
                "properties": {
                    "event_type_id": { "type": "string", "description": "ID of the event type (the last segment of its uri)" },
                    "start_date": date_property("Start"),
                    "end_date": date_property("End")
                },
                "required": ["event_type_id"]
            }),
        ),
        tool(
            "list_scheduled_events",
            "List scheduled events in a given time range",
            json!({
                "type": "object",
                "properties": {
                    "status": { "type": "string", "description": "Filter by status (active, canceled); default active" },
                    "start_date": date_property("Start"),
                    "end_date": date_property("End")
                },
                "required": []
            }),
        ),
    ]
}

/// Calendly's time format: UTC to the second.
fn stamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn date(arguments: &JsonObject, key: &str) -> Result<Option<NaiveDate>, String> {
    text(arguments, key)
        .map(|given| {
            NaiveDate::parse_from_str(given, "%Y-%m-%d")
                .map_err(|_| format!("{key} must be a date as YYYY-MM-DD, not {given:?}"))
        })
        .transpose()
}

/// The availability window: from noon (UTC) of `start_date` — or an hour from `now` when that
/// is absent or not in the future, since Calendly refuses a start in the past — to the end of
/// `end_date`, at most seven days after the start (Calendly's limit).
fn availability_window(
    arguments: &JsonObject,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let soonest = now + TimeDelta::hours(1);
    let start = match date(arguments, "start_date")? {
        Some(day) => day
            .and_hms_opt(12, 0, 0)
            .map(|noon| noon.and_utc())
            .filter(|noon| *noon > now)
            .unwrap_or(soonest),
        None => soonest,
    };
    let longest = start + MAX_WINDOW;
    let end = match date(arguments, "end_date")? {
        Some(day) => day
            .and_hms_opt(23, 59, 59)
            .map(|last| last.and_utc())
            .unwrap_or(longest)
            .min(longest),
        None => longest,
    };
    if end <= start {
        return Err("end_date must be after the start of the window".to_owned());
    }
    Ok((start, end))
}

/// The scheduled events' window: the whole days given, else 30 days either side of `now`.
fn events_window(
    arguments: &JsonObject,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let month = TimeDelta::days(30);
    let start = date(arguments, "start_date")?
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(now - month, |first| first.and_utc());
    let end = date(arguments, "end_date")?
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .map_or(now + month, |last| last.and_utc());
    Ok((start, end))
}

/// An id given as itself or as its whole URI (`https://api.calendly.com/event_types/ID`).
fn bare_id(given: &str) -> &str {
    given.rsplit('/').next().unwrap_or(given)
}

/// An event type or an event of a list as guMCP's resource; `None` without a URI.
fn listed_resource(item: &Value, uri: &str, name: String) -> Option<Resource> {
    let id = bare_id(item.get("uri")?.as_str()?);
    let resource = Resource::new(format!("{uri}{id}"), name).with_mime_type("application/json");
    Some(
        match item.get("description_plain").and_then(Value::as_str) {
            Some(description) if !description.is_empty() => resource.with_description(description),
            _ => resource,
        },
    )
}

fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Calendly {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The URI Calendly names the connected user by.
    async fn user_uri(api: &Api<'_>) -> Result<String, String> {
        let me = api.json(Method::GET, "/users/me", &[], None).await?;
        me.pointer("/resource/uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "Calendly did not say who the connected user is".to_owned())
    }

    async fn list_event_types(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let api = self.api(ctx);
        let mut query = vec![("user", Self::user_uri(&api).await?)];
        if arguments.get("active_only").and_then(Value::as_bool) == Some(true) {
            query.push(("active", "true".to_owned()));
        }
        let listed = api.json(Method::GET, "/event_types", &query, None).await?;
        Ok(listed.get("collection").cloned().unwrap_or(json!([])))
    }

    /// guMCP's resources: the user's event types, then their active events of 30 days either
    /// side of now.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let user = Self::user_uri(&api).await?;
        let types = api
            .json(Method::GET, "/event_types", &[("user", user.clone())], None)
            .await?;
        let (start, end) = events_window(&JsonObject::new(), Utc::now())?;
        let query = [
            ("user", user),
            ("min_start_time", stamp(start)),
            ("max_start_time", stamp(end)),
            ("status", "active".to_owned()),
        ];
        let events = api
            .json(Method::GET, "/scheduled_events", &query, None)
            .await?;
        let collection = |answer: &Value| {
            answer
                .get("collection")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let types = collection(&types).into_iter().filter_map(|item| {
            let minutes = item.get("duration").and_then(Value::as_i64).unwrap_or(0);
            let name = format!("Event Type: {} ({minutes}min)", field(&item, "name"));
            listed_resource(&item, EVENT_TYPE_URI, name)
        });
        let events = collection(&events).into_iter().filter_map(|item| {
            let start: String = field(&item, "start_time").chars().take(16).collect();
            let name = format!(
                "Meeting: {} ({})",
                field(&item, "name"),
                start.replace('T', " ")
            );
            listed_resource(&item, EVENT_URI, name)
        });
        Ok(types.chain(events).collect())
    }

    /// An event type or an event as Calendly describes it; `None` for another URI.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let path = if let Some(id) = uri.strip_prefix(EVENT_TYPE_URI) {
            format!("/event_types/{}", id_segment(id)?)
        } else if let Some(id) = uri.strip_prefix(EVENT_URI) {
            format!("/scheduled_events/{}", id_segment(id)?)
        } else {
            return Ok(None);
        };
        let found = self.api(ctx).json(Method::GET, &path, &[], None).await?;
        Ok(Some(found.get("resource").cloned().unwrap_or(found)))
    }

    async fn get_availability(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let event_type = bare_id(required_text(arguments, "event_type_id")?);
        let (start, end) = availability_window(arguments, Utc::now())?;
        let query = [
            ("event_type", format!("{API_HOST}/event_types/{event_type}")),
            ("start_time", stamp(start)),
            ("end_time", stamp(end)),
        ];
        let available = self
            .api(ctx)
            .json(Method::GET, "/event_type_available_times", &query, None)
            .await?;
        Ok(available.get("collection").cloned().unwrap_or(json!([])))
    }

    async fn list_scheduled_events(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (start, end) = events_window(arguments, Utc::now())?;
        let api = self.api(ctx);
        let query = [
            ("user", Self::user_uri(&api).await?),
            ("min_start_time", stamp(start)),
            ("max_start_time", stamp(end)),
            (
                "status",
                text(arguments, "status").unwrap_or("active").to_owned(),
            ),
        ];
        let listed = api
            .json(Method::GET, "/scheduled_events", &query, None)
            .await?;
        Ok(listed.get("collection").cloned().unwrap_or(json!([])))
    }
}

impl McpServer for Calendly {
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
                "list_event_types" => self.list_event_types(&arguments, ctx).await,
                "get_availability" => self.get_availability(&arguments, ctx).await,
                "list_scheduled_events" => self.list_scheduled_events(&arguments, ctx).await,
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

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn an_availability_window_starts_in_the_future_and_spans_at_most_a_week() {
        let now = at("2025-05-14T09:30:00Z");
        let (start, end) = availability_window(&args(json!({})), now).unwrap();
        assert_eq!(
            (stamp(start), stamp(end)),
            ("2025-05-14T10:30:00Z".into(), "2025-05-21T10:29:59Z".into())
        );
        let past = args(json!({ "start_date": "2025-05-01", "end_date": "2025-05-16" }));
        let (start, end) = availability_window(&past, now).unwrap();
        assert_eq!(
            (stamp(start), stamp(end)),
            ("2025-05-14T10:30:00Z".into(), "2025-05-16T23:59:59Z".into())
        );
        let long = args(json!({ "start_date": "2025-06-01", "end_date": "2025-07-01" }));
        let (start, end) = availability_window(&long, now).unwrap();
        assert_eq!(
            (stamp(start), stamp(end)),
            ("2025-06-01T12:00:00Z".into(), "2025-06-08T11:59:59Z".into())
        );
        let backwards = args(json!({ "start_date": "2025-06-10", "end_date": "2025-06-01" }));
        assert!(availability_window(&backwards, now).is_err());
        let bad = args(json!({ "start_date": "June 1st" }));
        assert!(availability_window(&bad, now)
            .unwrap_err()
            .contains("YYYY-MM-DD"));
    }

    #[test]
    fn scheduled_events_default_to_thirty_days_either_side() {
        let now = at("2025-05-14T09:30:00Z");
        let (start, end) = events_window(&args(json!({})), now).unwrap();
        assert_eq!(
            (stamp(start), stamp(end)),
            ("2025-04-14T09:30:00Z".into(), "2025-06-13T09:30:00Z".into())
        );
        assert_eq!(bare_id("https://api.calendly.com/event_types/ET1"), "ET1");
    }
}
