//! typeform's resources against a mock of Typeform's API: workspaces and forms listed as
//! `typeform://workspace/{id}` and `typeform://form/{id}`, a workspace read with its forms and a
//! form with a summary of its responses, as guMCP's. Its tools are covered by
//! `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answer(upstream: &MockServer, route: &str, query: &[(&str, &str)], body: Value) {
    let mut mock = Mock::given(method("GET"))
        .and(path(route))
        .and(header("authorization", "Bearer tfp_alice"));
    for (name, value) in query {
        mock = mock.and(query_param(*name, *value));
    }
    mock.respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn workspaces_and_forms_are_resources_read_with_their_forms_and_responses() {
    let upstream = MockServer::start().await;
    answer(
        &upstream,
        "/workspaces",
        &[],
        json!({ "items": [{ "id": "w1", "name": "My workspace" }, { "name": "no id" }] }),
    )
    .await;
    answer(
        &upstream,
        "/forms",
        &[("page_size", "200")],
        json!({ "items": [{ "id": "f1", "title": "Signup" }] }),
    )
    .await;
    answer(
        &upstream,
        "/workspaces/w1",
        &[],
        json!({ "id": "w1", "name": "My workspace" }),
    )
    .await;
    answer(
        &upstream,
        "/forms",
        &[("workspace_id", "w1"), ("page_size", "20")],
        json!({ "items": [{ "id": "f1", "title": "Signup" }] }),
    )
    .await;
    answer(
        &upstream,
        "/forms/f1",
        &[],
        json!({ "id": "f1", "title": "Signup" }),
    )
    .await;
    let responses: Vec<Value> = (1..=7)
        .map(|n| json!({ "response_id": format!("r{n}") }))
        .collect();
    answer(
        &upstream,
        "/forms/f1/responses",
        &[("page_size", "10")],
        json!({ "total_items": 42, "items": responses }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "tfp_alice", "refresh_token": "tfr1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "typeform", tokens, &upstream.uri());

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
            ("typeform://workspace/w1", "Workspace: My workspace"),
            ("typeform://form/f1", "Form: Signup")
        ],
        "{listed}"
    );

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let workspace = client
        .request(2, "resources/read", read("typeform://workspace/w1"))
        .await;
    let text = workspace["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let workspace: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(workspace["workspace"]["name"], "My workspace", "{text}");
    assert_eq!(workspace["forms"][0]["id"], "f1", "{text}");

    let form = client
        .request(3, "resources/read", read("typeform://form/f1"))
        .await;
    let text = form["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let form: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(form["form"]["title"], "Signup", "{text}");
    assert_eq!(form["responses_summary"]["total_items"], 42, "{text}");
    assert_eq!(form["responses_summary"]["response_count"], 7, "{text}");
    assert_eq!(
        form["responses_summary"]["latest_responses"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "{text}"
    );

    let unknown = client
        .request(4, "resources/read", read("typeform://theme/t1"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
