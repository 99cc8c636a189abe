//! attio's resources against a mock of Attio's API: the companies and people collections and
//! each list as `attio://…`, read as their first fifty records or entries, as guMCP's. Its
//! tools are covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn collections_and_lists_are_resources_read_as_their_first_records() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/lists"))
        .and(header("authorization", "Bearer attio-at-alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [
            { "id": { "workspace_id": "w", "list_id": "l-1" }, "name": "Enterprise Sales" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    for (route, answer) in [
        (
            "/objects/people/records/query",
            json!({ "data": [{ "id": { "record_id": "p-1" } }] }),
        ),
        (
            "/lists/l-1/entries/query",
            json!({ "data": [{ "id": { "entry_id": "e-1" }, "parent_record_id": "c-1" }] }),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(route))
            .and(body_json(json!({ "limit": 50, "offset": 0 })))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "attio-at-alice" });
    let mut client = shipped_server(root.path(), "attio", tokens, &upstream.uri());

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
            ("attio://collection/companies", "Companies Collection"),
            ("attio://collection/people", "People Collection"),
            ("attio://list/l-1", "List: Enterprise Sales"),
        ],
        "{listed}"
    );

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let text_of = |reply: &Value| -> Value {
        let text = reply["result"]["contents"][0]["text"]
            .as_str()
            .unwrap_or_default();
        serde_json::from_str(text).unwrap_or_default()
    };
    let people = client
        .request(2, "resources/read", read("attio://collection/people"))
        .await;
    assert_eq!(text_of(&people)["data"][0]["id"]["record_id"], "p-1");
    let list = client
        .request(3, "resources/read", read("attio://list/l-1"))
        .await;
    assert_eq!(text_of(&list)["data"][0]["parent_record_id"], "c-1");
    let unknown = client
        .request(4, "resources/read", read("attio://collection/deals"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
