//! clickup's resources against a mock of ClickUp's API: workspaces and their spaces listed as
//! `clickup://workspace/{id}` and `clickup://space/{id}`, each read as ClickUp describes it, as
//! guMCP's. Its tools are covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answer(upstream: &MockServer, route: &str, times: u64, body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        // ClickUp takes the token itself, with no "Bearer".
        .and(header("authorization", "pk_alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(times)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn workspaces_and_spaces_are_resources_read_as_clickup_describes_them() {
    let upstream = MockServer::start().await;
    answer(
        &upstream,
        "/team",
        2,
        json!({ "teams": [{ "id": "1234", "name": "Acme", "members": [] }] }),
    )
    .await;
    answer(
        &upstream,
        "/team/1234/space",
        1,
        json!({ "spaces": [{ "id": "790", "name": "Engineering" }] }),
    )
    .await;
    answer(
        &upstream,
        "/space/790",
        1,
        json!({ "id": "790", "name": "Engineering", "private": false }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "pk_alice" });
    let mut client = shipped_server(root.path(), "clickup", tokens, &upstream.uri());

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
            ("clickup://workspace/1234", "Workspace: Acme"),
            ("clickup://space/790", "Space: Engineering (in Acme)")
        ],
        "{listed}"
    );

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let workspace = client
        .request(2, "resources/read", read("clickup://workspace/1234"))
        .await;
    let text = workspace["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("\"name\": \"Acme\""), "{workspace}");
    let space = client
        .request(3, "resources/read", read("clickup://space/790"))
        .await;
    let text = space["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("\"name\": \"Engineering\""), "{space}");
    let unknown = client
        .request(4, "resources/read", read("clickup://list/1"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
