//! gcalendar: Google Calendar (API v3) with guMCP's six tools, names and arguments.
//!
//! Every tool is code: times arrive as `YYYY-MM-DD HH:MM`, `YYYY-MM-DD` or RFC 3339 and go to
//! the API as `dateTime`/`date` objects or UTC instants; list_events turns `days` into a
//! window; update_attendee_status reads the event, changes one attendee and patches the list;
//! check_free_slots asks freeBusy and computes the gaps; delete_event says what it deleted
//! (Google answers 204 with no body). The runtime's `Api` does the credentials, the
//! refresh-and-retry on 401 and the wording of upstream failures.
//!
//! Without a time-zone database in the binary, a time without an offset is taken as UTC where
//! an instant is needed (list_events, check_free_slots), as guMCP does; events keep such times
//! local to their `time_zone`, which Google resolves.
//!
//! Resources are guMCP's: each calendar of the account's list is `gcalendar://calendar/{id}`,
//! and reading one answers its next ten events (title, when, where, attendees) as text.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use futures::FutureExt;
use percent_encoding::percent_decode_str;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, text_resource, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const DEFAULT_ZONE: &str = "UTC";
/// What every calendar resource's URI starts with; the calendar id follows.
const CALENDAR_URI: &str = "gcalendar://calendar/";
/// Calendars per page of `calendarList` (the API's maximum).
const CALENDARS_PER_PAGE: &str = "250";
/// Pages of `calendarList` read for `resources/list` (1,000 calendars); the list is fetched
/// on every request, so it is bounded.
const MAX_CALENDAR_PAGES: usize = 4;
/// Upcoming events a calendar resource shows, as many as guMCP's.
const RESOURCE_EVENTS: &str = "10";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Calendar {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Calendar {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn calendar_property() -> Value {
    json!({ "type": "string", "description": "Calendar ID (optional - defaults to primary)" })
}

fn time_property(what: &str) -> Value {
    json!({
        "type": "string",
        "description": format!("{what} (format: YYYY-MM-DD HH:MM or YYYY-MM-DD, or RFC 3339 with an offset such as 2025-05-15T09:00:00-04:00)")
    })
}

fn send_updates_property() -> Value {
    json!({
        "type": "string",
        "enum": ["all", "externalOnly", "none"],
        "description": "Who should be notified of the change (optional; Google's default: none)"
    })
}

fn send_notifications_property() -> Value {
    json!({ "type": "boolean", "description": "Whether to send notifications to attendees (deprecated in favour of send_updates; optional)" })
}

/// The event fields create_event and update_event share; `updating` words them as changes.
fn event_properties(updating: bool) -> Map<String, Value> {
    let new = if updating { "New " } else { "" };
    let properties = json!({
        "calendar_id": calendar_property(),
        "summary": { "type": "string", "description": format!("{new}Event title") },
        "start_datetime": time_property(&format!("{new}Start date/time")),
        "end_datetime": time_property(&format!("{new}End date/time")),
        "description": { "type": "string", "description": format!("{new}Event description (optional)") },
        "location": { "type": "string", "description": format!("{new}Event location (optional)") },
        "attendees": {
            "type": "array",
            "items": { "type": "string" },
            "description": format!("{new}List of attendee emails (optional)")
        },
        "time_zone": { "type": "string", "description": "IANA time zone of the start and end times, e.g. Europe/Paris (default: UTC)" },
        "recurrence": {
            "type": "array",
            "items": { "type": "string" },
            "description": "RRULE, EXRULE, RDATE and EXDATE rules for recurrence (e.g., ['RRULE:FREQ=DAILY;COUNT=2'])"
        },
        "reminders": {
            "type": "object",
            "properties": {
                "use_default": { "type": "boolean", "description": "Whether to use the default reminders" },
                "overrides": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "method": { "type": "string", "enum": ["email", "popup"], "description": "Method of reminder" },
                            "minutes": { "type": "integer", "minimum": 0, "description": "Minutes before event to trigger reminder" }
                        }
                    },
                    "description": "Custom reminders to override the default"
                }
            },
            "description": "Reminders settings for the event"
        },
        "transparency": {
            "type": "string",
            "enum": ["opaque", "transparent"],
            "description": "Whether the event blocks time on the calendar (opaque) or not (transparent)"
        },
        "visibility": {
            "type": "string",
            "enum": ["default", "public", "private", "confidential"],
            "description": "Visibility of the event"
        },
        "color_id": { "type": "string", "description": "Color ID for the event (1-11)" },
        "send_updates": send_updates_property()
    });
    match properties {
        Value::Object(properties) => properties,
        _ => Map::new(),
    }
}

fn tools() -> Vec<Tool> {
    let mut update_properties = event_properties(true);
    update_properties.insert(
        "event_id".into(),
        json!({ "type": "string", "description": "Event ID to update" }),
    );
    vec![
        tool(
            "list_events",
            "List events from Google Calendar for a specified time range",
            json!({
                "type": "object",
                "properties": {
                    "calendar_id": calendar_property(),
                    "time_min": time_property("Start of the time range (default: now; a time without an offset is UTC)"),
                    "time_max": time_property("End of the time range (default: time_min plus days; a date alone means the end of that day)"),
                    "days": { "type": "integer", "minimum": 0, "maximum": 3660, "description": "Number of days to look ahead (used if time_max is not provided; default: 7)" },
                    "max_results": { "type": "integer", "minimum": 1, "maximum": 2500, "description": "Maximum number of events to return (default: 10)" },
                    "order_by": { "type": "string", "enum": ["startTime", "updated"], "description": "Order of events returned (default: startTime)" },
                    "show_deleted": { "type": "boolean", "description": "Whether to include deleted events (default: false)" },
                    "single_events": { "type": "boolean", "description": "Whether to expand recurring events (default: true)" },
                    "time_zone": { "type": "string", "description": "Time zone for the response (default: the calendar's)" },
                    "q": { "type": "string", "description": "Free text search terms to find events that match" }
                }
            }),
        ),
        tool(
            "create_event",
            "Create a new event in Google Calendar",
            json!({
                "type": "object",
                "properties": event_properties(false),
                "required": ["summary", "start_datetime", "end_datetime"]
            }),
        ),
        tool(
            "update_event",
            "Update an existing event in Google Calendar; only the given fields change",
            json!({
                "type": "object",
                "properties": update_properties,
                "required": ["event_id"]
            }),
        ),
        tool(
            "delete_event",
            "Delete an event from Google Calendar",
            json!({
                "type": "object",
                "properties": {
                    "calendar_id": calendar_property(),
                    "event_id": { "type": "string", "description": "Event ID to delete" },
                    "send_notifications": send_notifications_property(),
                    "send_updates": send_updates_property()
                },
                "required": ["event_id"]
            }),
        ),
        tool(
            "update_attendee_status",
            "Update an attendee's response status for an event (the attendee is added if missing)",
            json!({
                "type": "object",
                "properties": {
                    "calendar_id": calendar_property(),
                    "event_id": { "type": "string", "description": "Event ID to update" },
                    "attendee_email": { "type": "string", "description": "Email address of the attendee to update" },
                    "response_status": {
                        "type": "string",
                        "enum": ["accepted", "declined", "tentative", "needsAction"],
                        "description": "New response status for the attendee"
                    },
                    "send_notifications": send_notifications_property(),
                    "send_updates": send_updates_property(),
                    "comment": { "type": "string", "description": "A comment to include with the response status" }
                },
                "required": ["event_id", "attendee_email", "response_status"]
            }),
        ),
        tool(
            "check_free_slots",
            "Find the free time slots of at least duration_minutes between two times, in one or more calendars (a slot is free in all of them)",
            json!({
                "type": "object",
                "properties": {
                    "calendar_id": calendar_property(),
                    "start_datetime": time_property("Start of time range (a time without an offset is UTC)"),
                    "end_datetime": time_property("End of time range (a date alone means the end of that day)"),
                    "duration_minutes": { "type": "integer", "minimum": 1, "maximum": 527040, "description": "Minimum duration of free slots in minutes (default: 30)" },
                    "timezone": { "type": "string", "description": "Time zone Google answers the busy periods in (optional)" },
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": { "id": { "type": "string", "description": "Calendar ID to check" } },
                            "required": ["id"]
                        },
                        "description": "List of calendars to check for availability (default: calendar_id)"
                    },
                    "group_exp_expand": { "type": "boolean", "description": "Whether to expand group members (default: false)" }
                },
                "required": ["start_datetime", "end_datetime"]
            }),
        ),
    ]
}

/// A stretch of time, from its start to its end.
type Period = (DateTime<FixedOffset>, DateTime<FixedOffset>);

/// A time as the caller wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    /// A whole day (`YYYY-MM-DD`).
    Day(NaiveDate),
    /// A wall-clock time without an offset.
    Local(NaiveDateTime),
    /// A time with its offset (RFC 3339).
    Exact(DateTime<FixedOffset>),
}

fn parse_when(text: &str) -> Result<When, String> {
    let text = text.trim();
    if let Ok(exact) = DateTime::parse_from_rfc3339(text) {
        return Ok(When::Exact(exact));
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(When::Local(local));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(When::Day)
        .map_err(|_| {
            format!(
                "{text:?} is not a date or time: use YYYY-MM-DD HH:MM, YYYY-MM-DD, \
                 or RFC 3339 such as 2025-05-15T09:00:00-04:00"
            )
        })
}

fn utc(local: NaiveDateTime) -> DateTime<FixedOffset> {
    local.and_utc().fixed_offset()
}

/// The instant a range starting at `when` starts: a day at its midnight, UTC unless an
/// offset was given.
fn start_instant(when: When) -> DateTime<FixedOffset> {
    match when {
        When::Day(day) => utc(day.and_time(chrono::NaiveTime::MIN)),
        When::Local(local) => utc(local),
        When::Exact(exact) => exact,
    }
}

/// The instant a range ending at `when` ends: a day at the midnight after it.
fn end_instant(when: When) -> Result<DateTime<FixedOffset>, String> {
    match when {
        When::Day(day) => day
            .succ_opt()
            .map(|next| utc(next.and_time(chrono::NaiveTime::MIN)))
            .ok_or_else(|| format!("{day} is too far in the future")),
        other => Ok(start_instant(other)),
    }
}

/// An instant as the API takes it (`2025-05-15T09:00:00Z` in UTC).
fn api_instant(instant: DateTime<FixedOffset>) -> String {
    instant
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn shown(instant: DateTime<FixedOffset>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An event's `start`/`end`: a date, or a date-time with the zone its wall-clock time is in.
fn event_time(when: When, zone: Option<&str>) -> Value {
    match when {
        When::Day(day) => json!({ "date": day.format("%Y-%m-%d").to_string() }),
        When::Local(local) => json!({
            "dateTime": local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "timeZone": zone.unwrap_or(DEFAULT_ZONE),
        }),
        When::Exact(exact) => {
            let mut time = json!({ "dateTime": shown(exact) });
            if let Some(zone) = zone {
                time["timeZone"] = json!(zone);
            }
            time
        }
    }
}

/// The periods of `busy` inside `[start, end)`, sorted and merged where they overlap or touch.
fn merged_busy(
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
    busy: &[Period],
) -> Vec<Period> {
    let mut clipped: Vec<_> = busy
        .iter()
        .map(|&(from, to)| (from.max(start), to.min(end)))
        .filter(|(from, to)| from < to)
        .collect();
    clipped.sort_by_key(|&(from, _)| from);
    let mut merged: Vec<Period> = Vec::new();
    for (from, to) in clipped {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// The gaps of at least `min` between the merged busy periods inside `[start, end)`.
fn free_slots(
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
    merged: &[Period],
    min: TimeDelta,
) -> Vec<Period> {
    let mut slots = Vec::new();
    let mut cursor = start;
    for &(from, to) in merged.iter().chain(std::iter::once(&(end, end))) {
        if from - cursor >= min {
            slots.push((cursor, from));
        }
        cursor = cursor.max(to);
    }
    slots
}

fn calendar_segment(arguments: &JsonObject) -> Result<String, String> {
    id_segment(text(arguments, "calendar_id").unwrap_or("primary"))
}

fn event_path(arguments: &JsonObject) -> Result<String, String> {
    Ok(format!(
        "/calendars/{}/events/{}",
        calendar_segment(arguments)?,
        id_segment(required_text(arguments, "event_id")?)?
    ))
}

/// `(param, value)` for each of `pairs` whose argument was given.
fn optional_query(
    arguments: &JsonObject,
    pairs: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(param, key)| {
            let value = match arguments.get(*key)? {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((*param, value))
        })
        .collect()
}

fn notify_query(arguments: &JsonObject) -> Vec<(&'static str, String)> {
    optional_query(
        arguments,
        &[
            ("sendUpdates", "send_updates"),
            ("sendNotifications", "send_notifications"),
        ],
    )
}

/// guMCP's `{use_default, overrides}` as the API's `{useDefault, overrides}`; overrides
/// without a word on the defaults mean the defaults are off (the API refuses both at once).
fn reminders(given: &Value) -> Value {
    let mut out = Map::new();
    let use_default = given.get("use_default").or_else(|| given.get("useDefault"));
    if let Some(flag) = use_default {
        out.insert("useDefault".into(), flag.clone());
    }
    if let Some(overrides) = given.get("overrides") {
        out.insert("overrides".into(), overrides.clone());
        out.entry("useDefault").or_insert(Value::Bool(false));
    }
    Value::Object(out)
}

/// The event fields given in `arguments`, as the API names and shapes them.
fn event_body(arguments: &JsonObject) -> Result<Map<String, Value>, String> {
    let zone = text(arguments, "time_zone");
    let mut body = Map::new();
    for (field, key) in [
        ("summary", "summary"),
        ("description", "description"),
        ("location", "location"),
        ("recurrence", "recurrence"),
        ("transparency", "transparency"),
        ("visibility", "visibility"),
        ("colorId", "color_id"),
    ] {
        if let Some(value) = arguments.get(key) {
            body.insert(field.into(), value.clone());
        }
    }
    for (field, key) in [("start", "start_datetime"), ("end", "end_datetime")] {
        if let Some(when) = text(arguments, key) {
            body.insert(field.into(), event_time(parse_when(when)?, zone));
        }
    }
    if let Some(emails) = arguments.get("attendees").and_then(Value::as_array) {
        let attendees = emails
            .iter()
            .filter_map(Value::as_str)
            .map(|email| json!({ "email": email }))
            .collect();
        body.insert("attendees".into(), Value::Array(attendees));
    }
    if let Some(given) = arguments.get("reminders") {
        body.insert("reminders".into(), reminders(given));
    }
    Ok(body)
}

/// The parts of an event worth showing: times as Google gives them, attendees with their
/// answers.
fn brief_event(event: &Value) -> Value {
    let mut out = Map::new();
    for key in [
        "id",
        "summary",
        "status",
        "description",
        "location",
        "htmlLink",
        "recurrence",
        "recurringEventId",
    ] {
        if let Some(value) = event.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    for key in ["start", "end"] {
        let time = event.get(key);
        if let Some(value) = time.and_then(|t| t.get("dateTime").or_else(|| t.get("date"))) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(attendees) = event.get("attendees").and_then(Value::as_array) {
        let shown: Vec<Value> = attendees
            .iter()
            .map(|attendee| {
                let mut kept = Map::new();
                for key in ["email", "responseStatus", "comment", "organizer", "self"] {
                    if let Some(value) = attendee.get(key) {
                        kept.insert(key.into(), value.clone());
                    }
                }
                Value::Object(kept)
            })
            .collect();
        out.insert("attendees".into(), Value::Array(shown));
    }
    Value::Object(out)
}

/// The busy periods freeBusy answered for every calendar, or the calendars it could not read.
fn busy_periods(calendars: &Map<String, Value>) -> Result<Vec<Period>, String> {
    let failed: Vec<String> = calendars
        .iter()
        .filter_map(|(id, calendar)| {
            let errors = calendar.get("errors")?.as_array()?;
            let reasons: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.get("reason").and_then(Value::as_str))
                .collect();
            Some(format!("{id} ({})", reasons.join(", ")))
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "Google could not read the busy times of {}; leave those calendars out or check their ids",
            failed.join(", ")
        ));
    }
    let mut periods = Vec::new();
    for calendar in calendars.values() {
        for period in calendar
            .get("busy")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let at = |key: &str| {
                period
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            };
            match (at("start"), at("end")) {
                (Some(from), Some(to)) => periods.push((from, to)),
                _ => {
                    return Err(format!(
                        "Google answered a busy period that is not two times: {period}"
                    ))
                }
            }
        }
    }
    Ok(periods)
}

impl Calendar {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let api = self.api(ctx);
        match name {
            "list_events" => list_events(&api, arguments).await,
            "create_event" => {
                let path = format!("/calendars/{}/events", calendar_segment(arguments)?);
                let body = Value::Object(event_body(arguments)?);
                let query = optional_query(arguments, &[("sendUpdates", "send_updates")]);
                let created = api.json(Method::POST, &path, &query, Some(&body)).await?;
                Ok(brief_event(&created))
            }
            "update_event" => {
                let body = Value::Object(event_body(arguments)?);
                let query = optional_query(arguments, &[("sendUpdates", "send_updates")]);
                let path = event_path(arguments)?;
                let updated = api.json(Method::PATCH, &path, &query, Some(&body)).await?;
                Ok(brief_event(&updated))
            }
            "delete_event" => {
                let path = event_path(arguments)?;
                api.json(Method::DELETE, &path, &notify_query(arguments), None)
                    .await?;
                Ok(json!({
                    "success": true,
                    "message": "Event deleted successfully",
                    "event_id": required_text(arguments, "event_id")?,
                    "calendar_id": text(arguments, "calendar_id").unwrap_or("primary"),
                }))
            }
            "update_attendee_status" => update_attendee_status(&api, arguments).await,
            "check_free_slots" => check_free_slots(&api, arguments).await,
            other => Err(format!("Unknown tool: {other}")),
        }
    }
}

/// The calendars of the account's calendar list as guMCP's resources.
async fn calendar_resources(api: &Api<'_>) -> Result<Vec<Resource>, String> {
    let mut resources = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_CALENDAR_PAGES {
        let mut query = vec![("maxResults", CALENDARS_PER_PAGE.to_owned())];
        if let Some(token) = page_token.take() {
            query.push(("pageToken", token));
        }
        let page = api
            .json(Method::GET, "/users/me/calendarList", &query, None)
            .await?;
        for calendar in page
            .get("items")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(id) = calendar.get("id").and_then(Value::as_str) else {
                continue;
            };
            let field = |key: &str| calendar.get(key).and_then(Value::as_str).unwrap_or("");
            resources.push(
                Resource::new(format!("{CALENDAR_URI}{id}"), field("summary"))
                    .with_description(field("description"))
                    .with_mime_type("application/json"),
            );
        }
        page_token = page
            .get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if page_token.is_none() {
            break;
        }
    }
    Ok(resources)
}

/// An event's start or end as guMCP shows it: `YYYY-MM-DD HH:MM` in the event's own offset
/// for a time, the date itself for an all-day event.
fn shown_time(when: Option<&Value>) -> String {
    let when = when.unwrap_or(&Value::Null);
    if let Some(time) = when.get("dateTime").and_then(Value::as_str) {
        return DateTime::parse_from_rfc3339(time)
            .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|_| time.to_owned());
    }
    when.get("date")
        .and_then(Value::as_str)
        .unwrap_or("N/A")
        .to_owned()
}

/// The calendar's next events from now, as guMCP's text: its title, then each event's title,
/// times, place and attendees.
async fn upcoming_events(api: &Api<'_>, calendar: &str) -> Result<String, String> {
    let base = format!("/calendars/{}", id_segment(calendar)?);
    let query = [
        ("timeMin", api_instant(Utc::now().fixed_offset())),
        ("maxResults", RESOURCE_EVENTS.to_owned()),
        ("singleEvents", "true".to_owned()),
        ("orderBy", "startTime".to_owned()),
    ];
    let events = api
        .json(Method::GET, &format!("{base}/events"), &query, None)
        .await?;
    let details = api.json(Method::GET, &base, &[], None).await?;
    let title = details
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    let mut text = format!("Calendar: {title}\n\nUpcoming events:\n\n");
    let items = events
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (number, event) in items.iter().enumerate() {
        let summary = event
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or("No Title");
        text.push_str(&format!(
            "{}. {summary}\n   When: {} to {}\n",
            number + 1,
            shown_time(event.get("start")),
            shown_time(event.get("end")),
        ));
        if let Some(place) = event.get("location").and_then(Value::as_str) {
            text.push_str(&format!("   Where: {place}\n"));
        }
        let attendees: Vec<&str> = event
            .get("attendees")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|attendee| attendee.get("email").and_then(Value::as_str))
            .collect();
        if !attendees.is_empty() {
            text.push_str(&format!("   Attendees: {}\n", attendees.join(", ")));
        }
        text.push('\n');
    }
    Ok(text)
}

/// The calendar id of a `gcalendar://calendar/{id}` URI. Ids hold `@` and sometimes `#`
/// (`en.usa#holiday@group.v.calendar.google.com`), which a client may have percent-encoded;
/// Google's ids never hold `%`, so decoding cannot misread one.
fn calendar_of(uri: &str) -> Option<String> {
    let raw = uri.strip_prefix(CALENDAR_URI)?;
    let id = percent_decode_str(raw).decode_utf8().ok()?;
    (!id.is_empty() && !id.contains('/')).then(|| id.into_owned())
}

async fn list_events(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let days = arguments.get("days").and_then(Value::as_i64).unwrap_or(7);
    let time_min = match text(arguments, "time_min") {
        Some(given) => start_instant(parse_when(given)?),
        None => Utc::now().fixed_offset(),
    };
    let time_max = match text(arguments, "time_max") {
        Some(given) => end_instant(parse_when(given)?)?,
        None => TimeDelta::try_days(days)
            .and_then(|span| time_min.checked_add_signed(span))
            .ok_or_else(|| format!("{days} days from {time_min} is out of range"))?,
    };
    let single_events = arguments
        .get("single_events")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let max_results = arguments
        .get("max_results")
        .and_then(Value::as_i64)
        .unwrap_or(10);
    let mut query = vec![
        ("timeMin", api_instant(time_min)),
        ("timeMax", api_instant(time_max)),
        ("maxResults", max_results.to_string()),
        ("singleEvents", single_events.to_string()),
    ];
    // Ordering by start time is only allowed when recurring events are expanded.
    match text(arguments, "order_by") {
        Some(order) => query.push(("orderBy", order.to_owned())),
        None if single_events => query.push(("orderBy", "startTime".to_owned())),
        None => {}
    }
    query.extend(optional_query(
        arguments,
        &[
            ("showDeleted", "show_deleted"),
            ("timeZone", "time_zone"),
            ("q", "q"),
        ],
    ));
    let path = format!("/calendars/{}/events", calendar_segment(arguments)?);
    let answer = api.json(Method::GET, &path, &query, None).await?;
    let events: Vec<Value> = answer
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(brief_event)
        .collect();
    Ok(json!({
        "count": events.len(),
        "days": days,
        "time_min": api_instant(time_min),
        "time_max": api_instant(time_max),
        "events": events,
    }))
}

async fn update_attendee_status(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let path = event_path(arguments)?;
    let email = required_text(arguments, "attendee_email")?;
    let status = required_text(arguments, "response_status")?;
    let comment = text(arguments, "comment").filter(|c| !c.is_empty());
    let event = api.json(Method::GET, &path, &[], None).await?;
    let mut attendees = event
        .get("attendees")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let position = attendees.iter().position(|attendee| {
        attendee
            .get("email")
            .and_then(Value::as_str)
            .is_some_and(|known| known.eq_ignore_ascii_case(email))
    });
    let index = match position {
        Some(index) => index,
        None => {
            attendees.push(json!({ "email": email }));
            attendees.len() - 1
        }
    };
    if let Some(attendee) = attendees[index].as_object_mut() {
        attendee.insert("responseStatus".into(), json!(status));
        if let Some(comment) = comment {
            attendee.insert("comment".into(), json!(comment));
        }
    }
    let body = json!({ "attendees": attendees });
    let updated = api
        .json(Method::PATCH, &path, &notify_query(arguments), Some(&body))
        .await?;
    Ok(brief_event(&updated))
}

async fn check_free_slots(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let start = start_instant(parse_when(required_text(arguments, "start_datetime")?)?);
    let end = end_instant(parse_when(required_text(arguments, "end_datetime")?)?)?;
    if end <= start {
        return Err(format!(
            "end_datetime ({}) must be after start_datetime ({})",
            shown(end),
            shown(start)
        ));
    }
    let minutes = arguments
        .get("duration_minutes")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    let min = TimeDelta::try_minutes(minutes)
        .ok_or_else(|| format!("{minutes} minutes is out of range"))?;
    let items = match arguments.get("items").and_then(Value::as_array) {
        Some(items) if !items.is_empty() => Value::Array(items.clone()),
        _ => json!([{ "id": text(arguments, "calendar_id").unwrap_or("primary") }]),
    };
    let mut body = json!({
        "timeMin": api_instant(start),
        "timeMax": api_instant(end),
        "items": items,
    });
    if let Some(zone) = text(arguments, "timezone") {
        body["timeZone"] = json!(zone);
    }
    if arguments.get("group_exp_expand") == Some(&Value::Bool(true)) {
        body["groupExpansionMax"] = json!(100);
    }
    let answer = api
        .json(Method::POST, "/freeBusy", &[], Some(&body))
        .await?;
    let calendars = answer
        .get("calendars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let busy = merged_busy(start, end, &busy_periods(&calendars)?);
    let zone = *start.offset();
    let period = |(from, to): &Period| {
        json!({
            "start": shown(from.with_timezone(&zone)),
            "end": shown(to.with_timezone(&zone)),
            "minutes": (*to - *from).num_minutes(),
        })
    };
    let slots: Vec<Value> = free_slots(start, end, &busy, min)
        .iter()
        .map(period)
        .collect();
    Ok(json!({
        "time_min": shown(start),
        "time_max": shown(end),
        "duration_minutes": minutes,
        "free_slots": slots,
        "busy": busy.iter().map(period).collect::<Vec<_>>(),
        "calendars": calendars.keys().collect::<Vec<_>>(),
    }))
}

impl McpServer for Calendar {
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
        async move {
            calendar_resources(&self.api(ctx))
                .await
                .map_err(McpError::internal)
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let calendar =
                calendar_of(uri).ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let text = upcoming_events(&self.api(ctx), &calendar)
                .await
                .map_err(McpError::internal)?;
            Ok(text_resource(uri, text, "text/plain"))
        }
        .boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        async move { Ok(answer(self.run(name, &arguments, ctx).await)) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_uris_keep_ids_with_at_and_hash_signs() {
        let holidays = "en.usa#holiday@group.v.calendar.google.com";
        assert_eq!(
            calendar_of(&format!("gcalendar://calendar/{holidays}")).as_deref(),
            Some(holidays)
        );
        assert_eq!(
            calendar_of("gcalendar://calendar/en.usa%23holiday%40group.v.calendar.google.com")
                .as_deref(),
            Some(holidays)
        );
        for bad in [
            "gcalendar://calendar/",
            "gcalendar://calendar/a/b",
            "gcalendar://event/x",
        ] {
            assert_eq!(calendar_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_times_are_shown_in_their_own_offset_and_dates_as_they_are() {
        let timed = json!({ "dateTime": "2026-03-01T09:30:00+01:00" });
        assert_eq!(shown_time(Some(&timed)), "2026-03-01 09:30");
        assert_eq!(
            shown_time(Some(&json!({ "date": "2026-03-02" }))),
            "2026-03-02"
        );
        assert_eq!(shown_time(None), "N/A");
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn times_are_read_in_every_accepted_form() {
        let day = NaiveDate::from_ymd_opt(2025, 5, 15).unwrap();
        let nine = day.and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(parse_when("2025-05-15").unwrap(), When::Day(day));
        for local in [
            "2025-05-15 09:00",
            "2025-05-15T09:00",
            "2025-05-15 09:00:00",
        ] {
            assert_eq!(parse_when(local).unwrap(), When::Local(nine), "{local}");
        }
        assert_eq!(
            parse_when("2025-05-15T09:00:00-04:00").unwrap(),
            When::Exact(at("2025-05-15T09:00:00-04:00"))
        );
        assert!(parse_when("tomorrow").is_err());
        assert!(parse_when("2025-13-01").is_err());
    }

    #[test]
    fn a_day_ends_at_the_next_midnight() {
        let end = end_instant(parse_when("2025-05-15").unwrap()).unwrap();
        assert_eq!(api_instant(end), "2025-05-16T00:00:00Z");
        let start = start_instant(parse_when("2025-05-15T09:00:00-04:00").unwrap());
        assert_eq!(api_instant(start), "2025-05-15T13:00:00Z");
    }

    #[test]
    fn event_times_keep_wall_clock_time_in_their_zone() {
        let local = parse_when("2025-05-15 09:30").unwrap();
        assert_eq!(
            event_time(local, Some("Europe/Paris")),
            json!({ "dateTime": "2025-05-15T09:30:00", "timeZone": "Europe/Paris" })
        );
        assert_eq!(
            event_time(local, None),
            json!({ "dateTime": "2025-05-15T09:30:00", "timeZone": "UTC" })
        );
        assert_eq!(
            event_time(parse_when("2025-05-15").unwrap(), Some("Europe/Paris")),
            json!({ "date": "2025-05-15" })
        );
    }

    #[test]
    fn free_slots_are_the_long_enough_gaps_between_merged_busy_periods() {
        let start = at("2025-05-15T09:00:00Z");
        let end = at("2025-05-15T17:00:00Z");
        let busy = [
            (at("2025-05-15T08:00:00Z"), at("2025-05-15T09:30:00Z")),
            (at("2025-05-15T11:00:00Z"), at("2025-05-15T12:00:00Z")),
            (at("2025-05-15T11:30:00Z"), at("2025-05-15T12:15:00Z")),
            (at("2025-05-15T12:15:00Z"), at("2025-05-15T12:30:00Z")),
            (at("2025-05-15T12:50:00Z"), at("2025-05-15T13:00:00Z")),
            (at("2025-05-15T16:30:00Z"), at("2025-05-15T18:00:00Z")),
        ];
        let merged = merged_busy(start, end, &busy);
        assert_eq!(
            merged,
            [
                (at("2025-05-15T09:00:00Z"), at("2025-05-15T09:30:00Z")),
                (at("2025-05-15T11:00:00Z"), at("2025-05-15T12:30:00Z")),
                (at("2025-05-15T12:50:00Z"), at("2025-05-15T13:00:00Z")),
                (at("2025-05-15T16:30:00Z"), at("2025-05-15T17:00:00Z")),
            ]
        );
        let slots = free_slots(start, end, &merged, TimeDelta::minutes(30));
        assert_eq!(
            slots,
            [
                (at("2025-05-15T09:30:00Z"), at("2025-05-15T11:00:00Z")),
                (at("2025-05-15T13:00:00Z"), at("2025-05-15T16:30:00Z")),
            ]
        );
        assert_eq!(
            free_slots(start, end, &[], TimeDelta::minutes(30)),
            [(start, end)]
        );
        let whole_day = [(at("2025-05-15T00:00:00Z"), at("2025-05-16T00:00:00Z"))];
        let merged = merged_busy(start, end, &whole_day);
        assert!(free_slots(start, end, &merged, TimeDelta::minutes(1)).is_empty());
    }

    #[test]
    fn reminders_take_the_apis_names() {
        assert_eq!(
            reminders(&json!({ "use_default": true })),
            json!({ "useDefault": true })
        );
        assert_eq!(
            reminders(&json!({ "overrides": [{ "method": "popup", "minutes": 10 }] })),
            json!({ "useDefault": false, "overrides": [{ "method": "popup", "minutes": 10 }] })
        );
    }
}
