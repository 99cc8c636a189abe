//! monday's resources against a mock of monday.com's GraphQL API: workspaces, boards, their
//! items and groups (not the default `topics`) listed from one query, and each read with the
//! query of the tool that reads it, its id as a variable. Its tools are covered by
//! `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn workspaces_boards_items_and_groups_are_resources_read_by_their_tools_queries() {
    let upstream = MockServer::start().await;
    let graphql = |marker: &str, body: Value| {
        Mock::given(method("POST"))
            .and(path("/v2"))
            .and(header("authorization", "Bearer mon.alice"))
            .and(header("api-version", "2025-04"))
            .and(body_string_contains(marker))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
    };
    graphql(
        "boards(limit: 50)",
        json!({ "data": {
            "workspaces": [{ "id": "77", "name": "Main", "kind": "open" }],
            "boards": [{ "id": "1234", "name": "Roadmap", "board_kind": "public",
                "groups": [{ "id": "topics", "title": "Group Title" }, { "id": "g2", "title": "Later" }],
                "items_page": { "items": [{ "id": "9001", "name": "Ship v2" }] } }]
        } }),
    )
    .mount(&upstream)
    .await;
    graphql(
        r#""variables":{"item_id":"9001"}"#,
        json!({ "data": { "items": [{ "id": "9001", "name": "Ship v2", "column_values": [] }] } }),
    )
    .mount(&upstream)
    .await;
    graphql(
        r#""variables":{"board_id":"1234","group_id":"g2"}"#,
        json!({ "data": { "boards": [{ "groups": [{ "id": "g2", "title": "Later" }] }] } }),
    )
    .mount(&upstream)
    .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "mon.alice" });
    let mut client = shipped_server(root.path(), "monday", tokens, &upstream.uri());

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let named: Vec<(String, String)> = listed["result"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap_or_default().to_owned(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("monday://workspace/77", "Workspace: Main"),
        ("monday://board/1234", "Board: Roadmap"),
        ("monday://item/9001", "Item: Ship v2"),
        ("monday://board/1234/group/g2", "Group: Later"),
    ]
    .map(|(uri, name)| (uri.to_owned(), name.to_owned()));
    assert_eq!(named, expected, "{listed}");

    let read = |id: i64, uri: &str| (id, json!({ "uri": uri, "_meta": modern_meta() }));
    let (id, params) = read(2, "monday://item/9001");
    let item = client.request(id, "resources/read", params).await;
    let text = item["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap_or_default()["name"],
        "Ship v2"
    );
    let (id, params) = read(3, "monday://board/1234/group/g2");
    let group = client.request(id, "resources/read", params).await;
    let text = group["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap_or_default()["title"],
        "Later"
    );
    let (id, params) = read(4, "monday://board/1234/items");
    let unknown = client.request(id, "resources/read", params).await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
