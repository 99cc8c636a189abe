//! QuickBooks through the real binary: an expired access token is refreshed at Intuit's token
//! endpoint with the client credentials as HTTP Basic, the rotated refresh token saved with
//! the realm id kept, and the query goes to the connected company. The tools' requests are
//! covered by `tests/fixtures.rs`, the realm id taken from the redirect by
//! `tests/auth_fields.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_rotated_refresh_token_saved() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/tokens/bearer"))
        // base64("qb-client:qb-secret")
        .and(header(
            "authorization",
            "Basic cWItY2xpZW50OnFiLXNlY3JldA==",
        ))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=qb-rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "qb-fresh", "expires_in": 3600,
            "refresh_token": "qb-rt-2", "x_refresh_token_expires_in": 8726400
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/company/9130350/query"))
        .and(header("authorization", "Bearer qb-fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "QueryResponse": { "Customer": [{ "Id": "58", "DisplayName": "Acme" }] }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/quickbooks");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "qb-client", "client_secret": "qb-secret",
        "token_uri": format!("{}/oauth2/v1/tokens/bearer", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "qb-old", "refresh_token": "qb-rt-1", "expires_at": 1,
                          "realmId": "9130350" });
    let base = format!("{}/v3/company/{{realmId}}", upstream.uri());
    let mut client = shipped_server(root.path(), "quickbooks", expired, &base);
    let result = call_tool(
        &mut client,
        1,
        "search_customers",
        json!({ "query": "acme" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "quickbooks");
    assert_eq!(saved["access_token"], "qb-fresh");
    assert_eq!(saved["refresh_token"], "qb-rt-2");
    assert_eq!(saved["realmId"], "9130350");
    assert_eq!(saved["x_refresh_token_expires_in"], 8726400);
    upstream.verify().await;
}
