//! calendly's resources against a mock of Calendly's API: the user's event types and active
//! events listed as `calendly://event_type/{id}` and `calendly://event/{id}`, each read as
//! Calendly describes it, as guMCP's. Its tools are covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answer(upstream: &MockServer, route: &str, query: &[(&str, &str)], body: Value) {
    let mut mock = Mock::given(method("GET"))
        .and(path(route))
        .and(header("authorization", "Bearer eyJcal.alice"));
    for (name, value) in query {
        mock = mock.and(query_param(*name, *value));
    }
    mock.respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn event_types_and_events_are_resources_read_as_calendly_describes_them() {
    let upstream = MockServer::start().await;
    let user = "https://api.calendly.com/users/U1";
    answer(
        &upstream,
        "/users/me",
        &[],
        json!({ "resource": { "uri": user } }),
    )
    .await;
    answer(
        &upstream,
        "/event_types",
        &[("user", user)],
        json!({ "collection": [{
            "uri": "https://api.calendly.com/event_types/ET1", "name": "30 Minute Meeting",
            "duration": 30, "description_plain": "A quick chat"
        }] }),
    )
    .await;
    answer(
        &upstream,
        "/scheduled_events",
        &[("user", user), ("status", "active")],
        json!({ "collection": [{
            "uri": "https://api.calendly.com/scheduled_events/EV1", "name": "30 Minute Meeting",
            "start_time": "2099-01-10T14:00:00.000000Z"
        }] }),
    )
    .await;
    answer(
        &upstream,
        "/event_types/ET1",
        &[],
        json!({ "resource": { "uri": "https://api.calendly.com/event_types/ET1", "name": "30 Minute Meeting" } }),
    )
    .await;
    answer(
        &upstream,
        "/scheduled_events/EV1",
        &[],
        json!({ "resource": { "uri": "https://api.calendly.com/scheduled_events/EV1", "status": "active" } }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "eyJcal.alice", "refresh_token": "cr1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "calendly", tokens, &upstream.uri());

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let resources = listed["result"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named: Vec<(&str, &str)> = resources
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "calendly://event_type/ET1",
                "Event Type: 30 Minute Meeting (30min)"
            ),
            (
                "calendly://event/EV1",
                "Meeting: 30 Minute Meeting (2099-01-10 14:00)"
            )
        ],
        "{listed}"
    );
    assert_eq!(resources[0]["description"], "A quick chat");

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let event_type = client
        .request(2, "resources/read", read("calendly://event_type/ET1"))
        .await;
    let text = event_type["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("\"name\": \"30 Minute Meeting\""),
        "{event_type}"
    );
    let event = client
        .request(3, "resources/read", read("calendly://event/EV1"))
        .await;
    let text = event["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("\"status\": \"active\""), "{event}");
    let unknown = client
        .request(4, "resources/read", read("calendly://user/U1"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
