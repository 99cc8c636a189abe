//! hubspot's resources against a mock of HubSpot's CRM API: the recent contacts, companies,
//! deals, tickets and products listed as `hubspot://{type}/{id}`, and a record read with its
//! properties and associations, as guMCP's. Its tools are covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answer(upstream: &MockServer, route: &str, query: (&str, &str), body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .and(query_param(query.0, query.1))
        .and(header("authorization", "Bearer hs-at-alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(upstream)
        .await;
}

fn page(records: Value) -> Value {
    json!({ "results": records })
}

#[tokio::test]
async fn recent_records_are_resources_read_with_their_associations() {
    let upstream = MockServer::start().await;
    let objects = "/crm/v3/objects";
    answer(
        &upstream,
        &format!("{objects}/contacts"),
        ("properties", "firstname,lastname,email"),
        page(json!([
            { "id": "151", "properties": { "firstname": "Ada", "lastname": "Lovelace" } },
            { "id": "152", "properties": { "email": "grace@example.com" } },
            { "id": "153", "properties": {} }
        ])),
    )
    .await;
    answer(
        &upstream,
        &format!("{objects}/companies"),
        ("limit", "10"),
        page(json!([{ "id": "9001", "properties": { "name": "Engines Ltd" } }])),
    )
    .await;
    answer(
        &upstream,
        &format!("{objects}/deals"),
        ("properties", "dealname"),
        page(json!([{ "id": "77", "properties": { "dealname": "Rollout" } }])),
    )
    .await;
    answer(
        &upstream,
        &format!("{objects}/tickets"),
        ("properties", "subject"),
        page(json!([])),
    )
    .await;
    answer(
        &upstream,
        &format!("{objects}/products"),
        ("limit", "5"),
        page(json!([{ "id": "4001", "properties": {} }])),
    )
    .await;
    answer(
        &upstream,
        &format!("{objects}/deals/77"),
        (
            "properties",
            "dealname,amount,dealstage,closedate,pipeline,description",
        ),
        json!({ "id": "77", "properties": { "dealname": "Rollout", "amount": "1500" } }),
    )
    .await;
    for (to, id) in [("contacts", "151"), ("companies", "9001")] {
        Mock::given(method("GET"))
            .and(path(format!("{objects}/deals/77/associations/{to}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "results": [{ "id": id, "type": format!("deal_to_{to}") }] }),
            ))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "hs-at-alice" });
    let mut client = shipped_server(root.path(), "hubspot", tokens, &upstream.uri());

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
            ("hubspot://contact/151", "Ada Lovelace"),
            ("hubspot://contact/152", "grace@example.com"),
            ("hubspot://contact/153", "Contact 153"),
            ("hubspot://company/9001", "Engines Ltd"),
            ("hubspot://deal/77", "Rollout"),
            ("hubspot://product/4001", "Product 4001"),
        ],
        "{listed}"
    );

    let read = |uri: &str| json!({ "uri": uri, "_meta": modern_meta() });
    let deal = client
        .request(2, "resources/read", read("hubspot://deal/77"))
        .await;
    let text = deal["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let record: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(record["properties"]["amount"], "1500", "{deal}");
    assert_eq!(record["associations"]["contacts"][0]["id"], "151", "{deal}");
    assert_eq!(
        record["associations"]["companies"][0]["id"], "9001",
        "{deal}"
    );
    let unknown = client
        .request(3, "resources/read", read("hubspot://meeting/1"))
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
