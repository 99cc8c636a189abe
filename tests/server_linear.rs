//! linear against a mock of its GraphQL API: each tool posts its query with the arguments as
//! variables and the user's token, and returns the picked part of the answer.

mod common;

use common::{call_tool as call, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn linear(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens = json!({ "access_token": "lin_oauth_1", "refresh_token": "r", "expires_at": 4_000_000_000u64 });
    shipped_server(root, "linear", tokens, &upstream.uri())
}

/// A GraphQL POST with the user's token, whose query contains `operation` and whose variables
/// are exactly `variables`.
fn graphql(operation: &str, variables: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("authorization", "Bearer lin_oauth_1"))
        .and(header("content-type", "application/json"))
        .and(body_string_contains(operation))
        .and(body_partial_json(json!({ "variables": variables })))
}

#[tokio::test]
async fn every_tool_sends_its_query_with_variables_and_returns_the_answer() {
    let upstream = MockServer::start().await;
    graphql("containsIgnoreCase: $query", json!({ "query": "crash \"quoted\"" }))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "issues": { "nodes": [{ "id": "i1", "identifier": "ENG-1", "title": "Crash on start" }] } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    graphql(
        "issueCreate(",
        json!({ "team_id": "t1", "title": "New bug", "priority": 2, "label_ids": ["l1"] }),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "data": { "issueCreate": { "success": true, "issue": { "id": "i2", "identifier": "ENG-2", "title": "New bug" } } }
    })))
    .expect(1)
    .mount(&upstream)
    .await;
    graphql("issueUpdate(", json!({ "issue_id": "i2", "state_id": "done" }))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "issueUpdate": { "success": true, "issue": { "id": "i2", "state": { "name": "Done" } } } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = linear(root.path(), &upstream);

    let found = call(
        &mut client,
        1,
        "search_issues",
        json!({ "query": "crash \"quoted\"" }),
    )
    .await;
    assert_eq!(
        found["structuredContent"]["items"][0]["identifier"], "ENG-1",
        "{found}"
    );
    let created = call(
        &mut client,
        2,
        "create_issue",
        json!({ "team_id": "t1", "title": "New bug", "priority": 2, "label_ids": ["l1"] }),
    )
    .await;
    assert_eq!(
        created["structuredContent"]["issue"]["identifier"], "ENG-2",
        "{created}"
    );
    let updated = call(
        &mut client,
        3,
        "update_issue",
        json!({ "issue_id": "i2", "state_id": "done" }),
    )
    .await;
    assert_eq!(
        updated["structuredContent"]["issue"]["state"]["name"], "Done",
        "{updated}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_graphql_error_is_a_tool_error_with_linears_message() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": null, "errors": [{ "message": "Entity not found: Team" }]
        })))
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = linear(root.path(), &upstream);
    let result = call(
        &mut client,
        1,
        "create_issue",
        json!({ "team_id": "nope", "title": "x" }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Entity not found: Team"),
        "{result}"
    );
}
