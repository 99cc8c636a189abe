//! guMCP's resources of zendesk, shopify and quickbooks against mocks of their APIs, through
//! the real binary: listed with guMCP's URIs and names, each read as the API gives it, on the
//! user's own host or company (the credential's fields fill the base URL). Their tools are
//! covered by `tests/fixtures.rs`.

mod common;

use common::{modern_meta, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn listed(client: &mut StdioClient) -> Vec<(String, String)> {
    let reply = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    reply["result"]["resources"]
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
        .collect()
}

async fn read(client: &mut StdioClient, id: i64, uri: &str) -> Value {
    let reply = client
        .request(
            id,
            "resources/read",
            json!({ "uri": uri, "_meta": modern_meta() }),
        )
        .await;
    let text = reply["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|_| panic!("{reply}"))
}

async fn mount_get(upstream: &MockServer, route: &str, answer: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn zendesk_views_are_resources_read_with_their_tickets() {
    let upstream = MockServer::start().await;
    mount_get(
        &upstream,
        "/acme/views.json",
        json!({ "views": [{ "id": 25, "title": "Open tickets" }] }),
    )
    .await;
    mount_get(
        &upstream,
        "/acme/views/25.json",
        json!({ "view": { "id": 25, "title": "Open tickets" } }),
    )
    .await;
    mount_get(
        &upstream,
        "/acme/views/25/tickets.json",
        json!({ "tickets": [{ "id": 35436, "subject": "Help" }] }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({ "access_token": "zd-at", "custom_subdomain": "acme" });
    let base = format!("{}/{{custom_subdomain}}", upstream.uri());
    let mut client = shipped_server(root.path(), "zendesk", stored, &base);
    assert_eq!(
        listed(&mut client).await,
        [(
            "zendesk://view/25".to_owned(),
            "View: Open tickets".to_owned()
        )]
    );
    let view = read(&mut client, 2, "zendesk://view/25").await;
    assert_eq!(view["view"]["title"], "Open tickets");
    assert_eq!(view["tickets"][0]["id"], 35436);
    let requests = upstream.received_requests().await.unwrap_or_default();
    assert!(requests.iter().all(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v == "Bearer zd-at")));
    upstream.verify().await;
}

#[tokio::test]
async fn the_shopify_shop_is_a_resource() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/acme/graphql.json"))
        .and(header("x-shopify-access-token", "shpat_alice"))
        .and(body_string_contains("shop { id name"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "shop": {
            "id": "gid://shopify/Shop/1", "name": "Acme", "myshopifyDomain": "acme.myshopify.com"
        } } })),
        )
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({ "access_token": "shpat_alice", "custom_subdomain": "acme" });
    let base = format!("{}/{{custom_subdomain}}", upstream.uri());
    let mut client = shipped_server(root.path(), "shopify", stored, &base);
    assert_eq!(
        listed(&mut client).await,
        [(
            "shopify://shop/gid://shopify/Shop/1".to_owned(),
            "Acme".to_owned()
        )]
    );
    let shop = read(&mut client, 2, "shopify://shop/gid://shopify/Shop/1").await;
    assert_eq!(shop["myshopifyDomain"], "acme.myshopify.com");
    upstream.verify().await;
}

#[tokio::test]
async fn quickbooks_customers_invoices_and_accounts_are_resources() {
    let upstream = MockServer::start().await;
    for (entity, answer) in [
        ("Customer", json!([{ "Id": "58", "DisplayName": "Jane" }])),
        ("Invoice", json!([{ "Id": "130", "DocNumber": "1037" }])),
        (
            "Account",
            json!([{ "Id": "7", "Name": "Checking", "AccountType": "Bank" }]),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path("/v3/company/9130350/query"))
            .and(query_param(
                "query",
                format!("SELECT * FROM {entity} MAXRESULTS 100"),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "QueryResponse": { entity: answer }
            })))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    mount_get(
        &upstream,
        "/v3/company/9130350/invoice/130",
        json!({ "Invoice": { "Id": "130", "TotalAmt": 362.07 } }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({ "access_token": "qb-at", "realmId": "9130350" });
    let base = format!("{}/v3/company/{{realmId}}", upstream.uri());
    let mut client = shipped_server(root.path(), "quickbooks", stored, &base);
    assert_eq!(
        listed(&mut client).await,
        [
            (
                "quickbooks://customer/58".to_owned(),
                "Customer: Jane".to_owned()
            ),
            (
                "quickbooks://invoice/130".to_owned(),
                "Invoice: 1037".to_owned()
            ),
            (
                "quickbooks://account/7".to_owned(),
                "Account: Checking (Bank)".to_owned()
            ),
        ]
    );
    let invoice = read(&mut client, 2, "quickbooks://invoice/130").await;
    assert_eq!(invoice["Invoice"]["TotalAmt"], 362.07);
    upstream.verify().await;
}
