//! intercom's resources against a mock of Intercom's API: the recent conversations listed as
//! `intercom://conversation/{id}`, named after who started each, and one read as Intercom gives
//! it, as guMCP's. Its tools are covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn conversations_are_resources_read_as_intercom_gives_them() {
    let upstream = MockServer::start().await;
    for (route, body) in [
        (
            "/conversations",
            json!({ "type": "conversation.list", "conversations": [
                { "type": "conversation", "id": "147", "source": { "author": { "name": "Ada" } } },
                { "type": "conversation", "id": "148", "source": {} }
            ] }),
        ),
        (
            "/conversations/147",
            json!({ "type": "conversation", "id": "147", "state": "open" }),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(route))
            .and(header("authorization", "Bearer ic-at-alice"))
            .and(header("intercom-version", "2.11"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "ic-at-alice" });
    let mut client = shipped_server(root.path(), "intercom", tokens, &upstream.uri());

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
            ("intercom://conversation/147", "Conversation with Ada"),
            ("intercom://conversation/148", "Conversation with Unknown"),
        ],
        "{listed}"
    );

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let conversation = client
        .request(2, "resources/read", read("intercom://conversation/147"))
        .await;
    let text = conversation["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("\"state\": \"open\""), "{conversation}");
    let unknown = client
        .request(3, "resources/read", read("intercom://contact/1"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
