//! gcalendar against a mock of the Calendar API: every tool sends the method, path, query,
//! bearer token and body the API expects (times turned into the API's shapes, `days` into a
//! window starting now), free slots are computed from the busy periods freeBusy answers, and
//! expired tokens are refreshed at Google's token endpoint first.

mod common;

use chrono::{DateTime, Utc};
use common::{
    call_tool as call_raw, call_tool_ok as call, google_app, modern_meta, mount_google_refresh,
    saved_credentials, shipped_server, text_of as text, StdioClient,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn gcalendar(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens =
        json!({ "access_token": "ya29.cal", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    shipped_server(root, "gcalendar", tokens, &upstream.uri())
}

/// A request as Calendar checks it: the verb, the (encoded) path and the bearer token.
fn calendar_request(verb: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", "Bearer ya29.cal"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn instant(request: &Request, name: &str) -> Option<DateTime<Utc>> {
    let text = query(request, name)?;
    DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn standup() -> Value {
    json!({
        "id": "ev1", "summary": "Standup", "status": "confirmed",
        "htmlLink": "https://www.google.com/calendar/event?eid=ev1",
        "start": { "dateTime": "2025-05-15T10:00:00+02:00", "timeZone": "Europe/Paris" },
        "end": { "dateTime": "2025-05-15T10:15:00+02:00", "timeZone": "Europe/Paris" },
        "attendees": [{ "email": "ada@example.com", "responseStatus": "accepted", "etag": "x" }],
        "creator": { "email": "me@example.com" }
    })
}

#[tokio::test]
async fn every_tool_calls_calendar_as_its_api_expects() {
    let upstream = MockServer::start().await;
    // `days` alone: the window starts now and ends that many days later.
    let started = Utc::now();
    calendar_request("GET", "/calendars/primary/events")
        .and(query_param("maxResults", "10"))
        .and(query_param("singleEvents", "true"))
        .and(query_param("orderBy", "startTime"))
        .and(query_param("q", "standup"))
        .and(move |request: &Request| {
            let (Some(min), Some(max)) = (instant(request, "timeMin"), instant(request, "timeMax"))
            else {
                return false;
            };
            let now = Utc::now();
            min >= started - chrono::TimeDelta::seconds(1)
                && min <= now
                && max - min == chrono::TimeDelta::days(3)
        })
        .respond_with(answer(json!({ "items": [standup()] })))
        .expect(1)
        .mount(&upstream)
        .await;
    // An explicit window on another calendar: a date alone for time_max means the whole day.
    calendar_request("GET", "/calendars/team%40group.calendar.google.com/events")
        .and(query_param("timeMin", "2025-05-15T07:00:00Z"))
        .and(query_param("timeMax", "2025-05-17T00:00:00Z"))
        .and(query_param("singleEvents", "false"))
        .and(query_param("showDeleted", "true"))
        .and(query_param("timeZone", "Europe/Paris"))
        .and(query_param("maxResults", "5"))
        .and(|request: &Request| query(request, "orderBy").is_none())
        .respond_with(answer(json!({ "items": [] })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("POST", "/calendars/primary/events")
        .and(query_param("sendUpdates", "all"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "summary": "Planning",
            "description": "Quarterly planning",
            "location": "Room 1",
            "start": { "dateTime": "2025-05-15T10:00:00", "timeZone": "Europe/Paris" },
            "end": { "dateTime": "2025-05-15T11:30:00", "timeZone": "Europe/Paris" },
            "attendees": [{ "email": "ada@example.com" }, { "email": "bob@example.com" }],
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            "reminders": { "useDefault": false, "overrides": [{ "method": "popup", "minutes": 10 }] },
            "transparency": "opaque",
            "visibility": "private",
            "colorId": "5"
        })))
        .respond_with(answer(json!({
            "id": "new1", "summary": "Planning", "htmlLink": "https://www.google.com/calendar/event?eid=new1",
            "start": { "dateTime": "2025-05-15T10:00:00+02:00" }, "end": { "dateTime": "2025-05-15T11:30:00+02:00" },
            "attendees": [{ "email": "ada@example.com", "responseStatus": "needsAction" }, { "email": "bob@example.com", "responseStatus": "needsAction" }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("PATCH", "/calendars/primary/events/ev1")
        .and(body_json(json!({
            "summary": "Renamed",
            "start": { "date": "2025-05-20" },
            "end": { "date": "2025-05-21" }
        })))
        .and(|request: &Request| query(request, "sendUpdates").is_none())
        .respond_with(answer(json!({
            "id": "ev1", "summary": "Renamed", "start": { "date": "2025-05-20" }, "end": { "date": "2025-05-21" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("DELETE", "/calendars/primary/events/old%2Bevent")
        .and(query_param("sendUpdates", "all"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("GET", "/calendars/primary/events/ev2")
        .respond_with(answer(json!({
            "id": "ev2", "summary": "Review",
            "attendees": [
                { "email": "Ada@Example.com", "responseStatus": "needsAction" },
                { "email": "bob@example.com", "responseStatus": "accepted", "organizer": true }
            ]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("PATCH", "/calendars/primary/events/ev2")
        .and(query_param("sendUpdates", "externalOnly"))
        .and(body_json(json!({
            "attendees": [
                { "email": "Ada@Example.com", "responseStatus": "declined", "comment": "Away that day" },
                { "email": "bob@example.com", "responseStatus": "accepted", "organizer": true }
            ]
        })))
        .respond_with(answer(json!({
            "id": "ev2", "summary": "Review",
            "attendees": [
                { "email": "Ada@Example.com", "responseStatus": "declined", "comment": "Away that day" },
                { "email": "bob@example.com", "responseStatus": "accepted", "organizer": true }
            ]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("POST", "/freeBusy")
        .and(body_json(json!({
            "timeMin": "2025-05-15T09:00:00Z",
            "timeMax": "2025-05-15T17:00:00Z",
            "timeZone": "UTC",
            "groupExpansionMax": 100,
            "items": [{ "id": "primary" }, { "id": "bob@example.com" }]
        })))
        .respond_with(answer(json!({
            "kind": "calendar#freeBusy",
            "calendars": {
                "primary": { "busy": [
                    { "start": "2025-05-15T09:30:00Z", "end": "2025-05-15T11:00:00Z" },
                    { "start": "2025-05-15T13:00:00Z", "end": "2025-05-15T13:20:00Z" }
                ] },
                "bob@example.com": { "busy": [
                    { "start": "2025-05-15T12:30:00+02:00", "end": "2025-05-15T13:30:00+02:00" },
                    { "start": "2025-05-15T16:45:00Z", "end": "2025-05-15T18:00:00Z" }
                ] }
            }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);

    let listed = call(
        &mut client,
        1,
        "list_events",
        json!({ "days": 3, "q": "standup" }),
    )
    .await;
    let listing = &listed["structuredContent"];
    assert_eq!(listing["count"], 1, "{listed}");
    assert_eq!(listing["days"], 3);
    assert_eq!(
        listing["events"][0],
        json!({
            "id": "ev1", "summary": "Standup", "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid=ev1",
            "start": "2025-05-15T10:00:00+02:00", "end": "2025-05-15T10:15:00+02:00",
            "attendees": [{ "email": "ada@example.com", "responseStatus": "accepted" }]
        })
    );
    let window = call(
        &mut client,
        2,
        "list_events",
        json!({
            "calendar_id": "team@group.calendar.google.com",
            "time_min": "2025-05-15T09:00:00+02:00", "time_max": "2025-05-16",
            "single_events": false, "show_deleted": true, "time_zone": "Europe/Paris", "max_results": 5
        }),
    )
    .await;
    assert_eq!(window["structuredContent"]["count"], 0, "{window}");
    let created = call(
        &mut client,
        3,
        "create_event",
        json!({
            "summary": "Planning", "description": "Quarterly planning", "location": "Room 1",
            "start_datetime": "2025-05-15 10:00", "end_datetime": "2025-05-15 11:30",
            "time_zone": "Europe/Paris",
            "attendees": ["ada@example.com", "bob@example.com"],
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            "reminders": { "overrides": [{ "method": "popup", "minutes": 10 }] },
            "transparency": "opaque", "visibility": "private", "color_id": "5",
            "send_updates": "all"
        }),
    )
    .await;
    assert_eq!(created["structuredContent"]["id"], "new1", "{created}");
    assert_eq!(
        created["structuredContent"]["start"],
        "2025-05-15T10:00:00+02:00"
    );
    let updated = call(
        &mut client,
        4,
        "update_event",
        json!({
            "event_id": "ev1", "summary": "Renamed",
            "start_datetime": "2025-05-20", "end_datetime": "2025-05-21"
        }),
    )
    .await;
    assert_eq!(updated["structuredContent"]["summary"], "Renamed");
    assert_eq!(updated["structuredContent"]["start"], "2025-05-20");
    let deleted = call(
        &mut client,
        5,
        "delete_event",
        json!({ "event_id": "old+event", "send_updates": "all" }),
    )
    .await;
    assert_eq!(
        deleted["structuredContent"],
        json!({
            "success": true, "message": "Event deleted successfully",
            "event_id": "old+event", "calendar_id": "primary"
        })
    );
    let answered = call(
        &mut client,
        6,
        "update_attendee_status",
        json!({
            "event_id": "ev2", "attendee_email": "ada@example.com",
            "response_status": "declined", "comment": "Away that day", "send_updates": "externalOnly"
        }),
    )
    .await;
    assert_eq!(
        answered["structuredContent"]["attendees"][0]["responseStatus"], "declined",
        "{answered}"
    );
    // Busy: 09:30–11:00 and 13:00–13:20 (primary), 10:30–11:30 and 16:45–18:00 (bob, the
    // first given in +02:00). Merged inside 09:00–17:00: 09:30–11:30, 13:00–13:20,
    // 16:45–17:00. Gaps: 09:00–09:30 (30 min, too short), 11:30–13:00, 13:20–16:45.
    let free = call(
        &mut client,
        7,
        "check_free_slots",
        json!({
            "start_datetime": "2025-05-15 09:00", "end_datetime": "2025-05-15 17:00",
            "duration_minutes": 45, "timezone": "UTC", "group_exp_expand": true,
            "items": [{ "id": "primary" }, { "id": "bob@example.com" }]
        }),
    )
    .await;
    let slots = &free["structuredContent"];
    assert_eq!(
        slots["free_slots"],
        json!([
            { "start": "2025-05-15T11:30:00Z", "end": "2025-05-15T13:00:00Z", "minutes": 90 },
            { "start": "2025-05-15T13:20:00Z", "end": "2025-05-15T16:45:00Z", "minutes": 205 }
        ]),
        "{free}"
    );
    assert_eq!(
        slots["busy"],
        json!([
            { "start": "2025-05-15T09:30:00Z", "end": "2025-05-15T11:30:00Z", "minutes": 120 },
            { "start": "2025-05-15T13:00:00Z", "end": "2025-05-15T13:20:00Z", "minutes": 20 },
            { "start": "2025-05-15T16:45:00Z", "end": "2025-05-15T17:00:00Z", "minutes": 15 }
        ])
    );
    upstream.verify().await;
}

#[tokio::test]
async fn free_slots_keep_the_callers_offset_and_default_to_the_calendar_and_half_an_hour() {
    let upstream = MockServer::start().await;
    calendar_request("POST", "/freeBusy")
        .and(body_json(json!({
            "timeMin": "2025-05-15T13:00:00Z",
            "timeMax": "2025-05-15T15:00:00Z",
            "items": [{ "id": "work@example.com" }]
        })))
        .respond_with(answer(json!({
            "calendars": { "work@example.com": { "busy": [
                { "start": "2025-05-15T13:20:00Z", "end": "2025-05-15T14:00:00Z" }
            ] } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);
    let free = call(
        &mut client,
        1,
        "check_free_slots",
        json!({
            "calendar_id": "work@example.com",
            "start_datetime": "2025-05-15T09:00:00-04:00", "end_datetime": "2025-05-15T11:00:00-04:00"
        }),
    )
    .await;
    assert_eq!(
        free["structuredContent"]["free_slots"],
        json!([{ "start": "2025-05-15T10:00:00-04:00", "end": "2025-05-15T11:00:00-04:00", "minutes": 60 }]),
        "{free}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_calendar_freebusy_cannot_read_is_a_tool_error() {
    let upstream = MockServer::start().await;
    calendar_request("POST", "/freeBusy")
        .respond_with(answer(json!({
            "calendars": { "nobody@example.com": { "errors": [{ "domain": "global", "reason": "notFound" }], "busy": [] } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);
    let result = call_raw(
        &mut client,
        1,
        "check_free_slots",
        json!({
            "calendar_id": "nobody@example.com",
            "start_datetime": "2025-05-15", "end_datetime": "2025-05-15"
        }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(
        text(&result).contains("nobody@example.com (notFound)"),
        "{result}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn tools_are_gumcps_and_bad_input_never_reaches_calendar() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(answer(json!({})))
        .expect(0)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(answer(json!({})))
        .expect(0)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);
    let listed = client
        .request(1, "tools/list", json!({ "_meta": modern_meta() }))
        .await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "list_events",
            "create_event",
            "update_event",
            "delete_event",
            "update_attendee_status",
            "check_free_slots"
        ]
    );
    let missing = call_raw(
        &mut client,
        2,
        "create_event",
        json!({ "summary": "No times" }),
    )
    .await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("start_datetime"), "{missing}");
    let bad_time = call_raw(
        &mut client,
        3,
        "list_events",
        json!({ "time_min": "next tuesday" }),
    )
    .await;
    assert_eq!(bad_time["isError"], true);
    assert!(text(&bad_time).contains("next tuesday"), "{bad_time}");
    let backwards = call_raw(
        &mut client,
        4,
        "check_free_slots",
        json!({ "start_datetime": "2025-05-15 17:00", "end_datetime": "2025-05-15 09:00" }),
    )
    .await;
    assert_eq!(backwards["isError"], true);
    assert!(text(&backwards).contains("must be after"), "{backwards}");
    upstream.verify().await;
}

#[tokio::test]
async fn a_calendar_error_is_a_tool_error_with_googles_message() {
    let upstream = MockServer::start().await;
    calendar_request("DELETE", "/calendars/primary/events/gone")
        .respond_with(ResponseTemplate::new(410).set_body_json(json!({
            "error": { "code": 410, "message": "Resource has been deleted", "errors": [{ "reason": "deleted" }] }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);
    let result = call_raw(
        &mut client,
        1,
        "delete_event",
        json!({ "event_id": "gone" }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(text(&result).contains("410"), "{result}");
    assert!(
        text(&result).contains("Resource has been deleted"),
        "{result}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn an_expired_google_token_is_refreshed_before_the_call() {
    let upstream = MockServer::start().await;
    mount_google_refresh(&upstream, "https://www.googleapis.com/auth/calendar").await;
    Mock::given(method("GET"))
        .and(path("/calendars/primary/events"))
        .and(header("authorization", "Bearer ya29.fresh"))
        .respond_with(answer(json!({ "items": [standup()] })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    google_app(root.path(), "gcalendar", &upstream);
    let expired = json!({ "access_token": "ya29.old", "refresh_token": "r1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "gcalendar", expired, &upstream.uri());
    let listed = call(&mut client, 1, "list_events", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], 1, "{listed}");
    assert_eq!(listed["structuredContent"]["days"], 7);
    let saved = saved_credentials(root.path(), "gcalendar");
    assert_eq!(saved["access_token"], "ya29.fresh");
    upstream.verify().await;
}

#[tokio::test]
async fn calendars_are_resources_read_as_their_upcoming_events() {
    let upstream = MockServer::start().await;
    calendar_request("GET", "/users/me/calendarList")
        .and(query_param("maxResults", "250"))
        .and(|request: &Request| query(request, "pageToken").is_none())
        .respond_with(answer(json!({
            "items": [{ "id": "primary@example.com", "summary": "Ada", "description": "Mine" }],
            "nextPageToken": "p2"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("GET", "/users/me/calendarList")
        .and(query_param("pageToken", "p2"))
        .respond_with(answer(
            json!({ "items": [{ "id": "team@example.com", "summary": "Team" }] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let before = Utc::now();
    calendar_request("GET", "/calendars/team%40example.com/events")
        .and(query_param("maxResults", "10"))
        .and(query_param("singleEvents", "true"))
        .and(query_param("orderBy", "startTime"))
        .and(move |request: &Request| {
            instant(request, "timeMin").is_some_and(|at| (at - before).num_seconds().abs() < 60)
        })
        .respond_with(answer(json!({ "items": [
            {
                "summary": "Standup",
                "start": { "dateTime": "2030-01-07T09:30:00+01:00" },
                "end": { "dateTime": "2030-01-07T09:45:00+01:00" },
                "location": "Room 1",
                "attendees": [{ "email": "ada@example.com" }, { "email": "bob@example.com" }]
            },
            { "start": { "date": "2030-01-08" }, "end": { "date": "2030-01-09" } }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    calendar_request("GET", "/calendars/team%40example.com")
        .respond_with(answer(
            json!({ "id": "team@example.com", "summary": "Team" }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gcalendar(root.path(), &upstream);

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "gcalendar://calendar/primary@example.com", "name": "Ada", "description": "Mine", "mimeType": "application/json" },
            { "uri": "gcalendar://calendar/team@example.com", "name": "Team", "description": "", "mimeType": "application/json" }
        ]),
        "{listed}"
    );

    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "gcalendar://calendar/team@example.com", "_meta": modern_meta() }),
        )
        .await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "text/plain", "{read}");
    assert_eq!(
        contents["text"],
        "Calendar: Team\n\nUpcoming events:\n\n\
         1. Standup\n   When: 2030-01-07 09:30 to 2030-01-07 09:45\n   Where: Room 1\n   Attendees: ada@example.com, bob@example.com\n\n\
         2. No Title\n   When: 2030-01-08 to 2030-01-09\n\n"
    );

    let unknown = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "gcalendar://event/e1", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}
