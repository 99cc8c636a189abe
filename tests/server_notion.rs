//! notion against a mock of its API: every tool sends the method, path, token, Notion-Version
//! header and body the API expects, and returns the picked answer.

mod common;

use common::{call_tool_ok as call, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn notion(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens = json!({ "access_token": "secret_notion", "workspace_name": "Acme" });
    shipped_server(root, "notion", tokens, &upstream.uri())
}

/// A request as Notion checks it: the verb, the path, the bearer token and the API version.
fn notion_request(verb: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", "Bearer secret_notion"))
        .and(header("notion-version", "2022-06-28"))
}

fn list(results: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "object": "list", "results": results, "has_more": false }))
}

#[tokio::test]
async fn every_tool_calls_notion_as_its_api_expects() {
    let upstream = MockServer::start().await;
    let page = json!({ "object": "page", "id": "p1" });
    notion_request("GET", "/users")
        .respond_with(list(
            json!([{ "object": "user", "id": "u1", "name": "Ada" }]),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    notion_request("POST", "/search")
        .and(body_json(json!({ "query": "roadmap" })))
        .respond_with(list(json!([page])))
        .expect(1)
        .mount(&upstream)
        .await;
    notion_request("POST", "/search")
        .and(body_json(
            json!({ "filter": { "property": "object", "value": "database" } }),
        ))
        .respond_with(list(json!([{ "object": "database", "id": "d1" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    notion_request("POST", "/databases/d1/query")
        .and(body_json(json!({})))
        .respond_with(list(json!([page])))
        .expect(1)
        .mount(&upstream)
        .await;
    notion_request("GET", "/pages/p1")
        .respond_with(ResponseTemplate::new(200).set_body_json(page.clone()))
        .expect(1)
        .mount(&upstream)
        .await;
    let properties = json!({ "Name": { "title": [{ "text": { "content": "New" } }] } });
    notion_request("POST", "/pages")
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({ "parent": { "database_id": "d1" }, "properties": properties }),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "object": "page", "id": "p2" })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let children = json!([{ "object": "block", "type": "paragraph", "paragraph": { "rich_text": [{ "text": { "content": "hi" } }] } }]);
    notion_request("PATCH", "/blocks/p1/children")
        .and(body_json(json!({ "children": children })))
        .respond_with(list(json!([{ "object": "block", "id": "b1" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    notion_request("GET", "/blocks/p1/children")
        .respond_with(list(json!([{ "object": "block", "id": "b1" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = notion(root.path(), &upstream);

    let users = call(&mut client, 1, "list_all_users", json!({})).await;
    assert_eq!(users["structuredContent"]["items"][0]["name"], "Ada");
    let found = call(
        &mut client,
        2,
        "search_pages",
        json!({ "query": "roadmap" }),
    )
    .await;
    assert_eq!(found["structuredContent"]["items"][0]["id"], "p1");
    let databases = call(&mut client, 3, "list_databases", json!({})).await;
    assert_eq!(
        databases["structuredContent"]["items"][0]["object"],
        "database"
    );
    let rows = call(
        &mut client,
        4,
        "query_database",
        json!({ "database_id": "d1" }),
    )
    .await;
    assert_eq!(rows["structuredContent"]["items"][0]["id"], "p1");
    let got = call(&mut client, 5, "get_page", json!({ "page_id": "p1" })).await;
    assert_eq!(got["structuredContent"]["id"], "p1");
    let created = call(
        &mut client,
        6,
        "create_page",
        json!({ "database_id": "d1", "properties": properties }),
    )
    .await;
    assert_eq!(created["structuredContent"]["id"], "p2");
    let appended = call(
        &mut client,
        7,
        "append_blocks",
        json!({ "block_id": "p1", "children": children }),
    )
    .await;
    assert_eq!(appended["structuredContent"]["items"][0]["id"], "b1");
    let blocks = call(
        &mut client,
        8,
        "get_block_children",
        json!({ "block_id": "p1" }),
    )
    .await;
    assert_eq!(blocks["structuredContent"]["items"][0]["id"], "b1");
    upstream.verify().await;
}
