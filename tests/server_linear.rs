//! linear against a mock of its GraphQL API: each tool posts its query with the arguments as
//! variables and the user's token, and returns the picked part of the answer; teams and issues
//! are resources, listed and read with GraphQL queries whose ids travel as variables.

mod common;

use common::{call_tool as call, modern_meta, shipped_server, StdioClient};
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

#[tokio::test]
async fn teams_and_issues_are_resources() {
    let upstream = MockServer::start().await;
    graphql("teams(first: 100, after: $after)", json!({ "after": null }))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "teams": {
            "nodes": [{ "id": "t1", "name": "Engineering", "key": "ENG" }],
            "pageInfo": { "hasNextPage": true, "endCursor": "c1" }
        } } })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    graphql("teams(first: 100, after: $after)", json!({ "after": "c1" }))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "teams": {
            "nodes": [{ "id": "t2", "name": "Design", "key": "DES" }],
            "pageInfo": { "hasNextPage": false, "endCursor": "c2" }
        } } })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    graphql("team(id: $id)", json!({ "id": "t1" }))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "team": {
            "id": "t1", "name": "Engineering", "key": "ENG",
            "states": { "nodes": [{ "id": "s1", "name": "Todo", "type": "unstarted" }] },
            "labels": { "nodes": [] }
        } } })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    graphql("issue(id: $id)", json!({ "id": "ENG-1" }))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "issue": {
            "id": "i1", "identifier": "ENG-1", "title": "Crash on start",
            "comments": { "nodes": [{ "id": "c1", "body": "Seen it", "user": { "name": "Ada" } }] }
        } } })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    graphql("issue(id: $id)", json!({ "id": "ENG-404" }))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": null, "errors": [
            { "message": "Entity not found: Issue", "extensions": { "code": "INVALID_INPUT", "userError": true } }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    graphql("issue(id: $id)", json!({ "id": "ENG-429" }))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": null, "errors": [
            { "message": "Rate limit exceeded", "extensions": { "code": "RATELIMITED" } }
        ] })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = linear(root.path(), &upstream);

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "linear://team/t1", "name": "Team: Engineering (ENG)", "mimeType": "application/json" },
            { "uri": "linear://team/t2", "name": "Team: Design (DES)", "mimeType": "application/json" }
        ]),
        "{listed}"
    );

    let read = |reply: &Value| -> Value {
        let contents = &reply["result"]["contents"][0];
        assert_eq!(contents["mimeType"], "application/json", "{reply}");
        serde_json::from_str(contents["text"].as_str().unwrap()).unwrap()
    };
    let team = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "linear://team/t1", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(read(&team)["states"]["nodes"][0]["name"], "Todo");
    let issue = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "linear://issue/ENG-1", "_meta": modern_meta() }),
        )
        .await;
    let issue = read(&issue);
    assert_eq!(issue["title"], "Crash on start");
    assert_eq!(issue["comments"]["nodes"][0]["user"]["name"], "Ada");

    for (id, uri, code) in [
        (4, "linear://issue/ENG-404", -32602),
        (5, "linear://project/p1", -32602),
        (6, "linear://issue/ENG-429", -32603),
    ] {
        let failed = client
            .request(
                id,
                "resources/read",
                json!({ "uri": uri, "_meta": modern_meta() }),
            )
            .await;
        assert_eq!(failed["error"]["code"], code, "{uri}: {failed}");
    }
    upstream.verify().await;
}
