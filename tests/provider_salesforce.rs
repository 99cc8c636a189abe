//! Salesforce through the real binary: a token Salesforce refuses is refreshed at the token
//! endpoint (client credentials in the form) and the call retried; the refresh answer's
//! `instance_url` is stored over the old one (Salesforce tokens carry no expiry, so a refusal
//! is the only sign); an instance URL that is not Salesforce's is refused at the call, before
//! any request. The tools' requests are covered by `tests/fixtures.rs`, the code exchange
//! keeping `instance_url` by `tests/auth_fields.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn app(root: &std::path::Path, upstream: &MockServer) {
    let dir = root.join("local_auth/oauth_configs/salesforce");
    std::fs::create_dir_all(&dir).unwrap();
    let file = json!({
        "client_id": "sf-client", "client_secret": "sf-secret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/services/oauth2/token", upstream.uri())
    });
    std::fs::write(dir.join("oauth.json"), file.to_string()).unwrap();
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_new_instance_url_kept() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/data/v59.0/limits"))
        .and(header("authorization", "Bearer sf-old"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!([
            { "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=sf-rt"))
        .and(body_string_contains("client_secret=sf-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sf-new", "token_type": "Bearer", "scope": "api refresh_token",
            "instance_url": "https://acme2.my.salesforce.com", "issued_at": "1733300000000",
            "id": "https://login.salesforce.com/id/00D/005", "signature": "sig"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/data/v59.0/limits"))
        .and(header("authorization", "Bearer sf-new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "DailyApiRequests": { "Max": 15000, "Remaining": 14000 }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    app(root.path(), &upstream);
    let stored = json!({ "access_token": "sf-old", "refresh_token": "sf-rt",
                         "instance_url": "https://acme.my.salesforce.com" });
    let base = format!("{}/services/data/v59.0", upstream.uri());
    let mut client = shipped_server(root.path(), "salesforce", stored, &base);
    let result = call_tool(&mut client, 1, "get_org_limits", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "salesforce");
    assert_eq!(saved["access_token"], "sf-new");
    assert_eq!(
        saved["refresh_token"], "sf-rt",
        "Salesforce keeps the refresh token"
    );
    assert_eq!(saved["instance_url"], "https://acme2.my.salesforce.com");
    upstream.verify().await;
}

#[tokio::test]
async fn an_instance_url_off_salesforce_sends_nothing() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({ "access_token": "sf-at", "instance_url": "https://evil.example.com" });
    let creds = root.path().join("local_auth/credentials/salesforce");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("alice_credentials.json"), stored.to_string()).unwrap();
    // No base URL configured: the manifest's own, which the stored instance URL fills.
    let config = root.path().join("gumcp.toml");
    std::fs::write(&config, "[auth]\nlocal_dir = \"local_auth\"\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut client = common::StdioClient::start(&[
        "--config",
        &config,
        "stdio",
        "--server",
        "salesforce",
        "--user-id",
        "alice",
    ]);
    let result = call_tool(
        &mut client,
        1,
        "soql_query",
        json!({ "query": "SELECT Id FROM Account" }),
    )
    .await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result.to_string().contains("Salesforce instance URL"),
        "{result}"
    );
    assert!(upstream
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}
