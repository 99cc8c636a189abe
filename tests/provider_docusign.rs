//! DocuSign through the real binary: an expired access token is refreshed at DocuSign's token
//! endpoint with the integration key and secret as HTTP Basic, the rotated refresh token saved
//! (the account and base URI kept), and the call goes to the user's default account. The tools'
//! requests are covered by `tests/fixtures.rs`, the sign-in (account and base URI from
//! `userinfo`) by the unit tests of `auth::connect`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_rotated_refresh_token_saved() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        // base64("ds-key:ds-secret")
        .and(header("authorization", "Basic ZHMta2V5OmRzLXNlY3JldA=="))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=ds-rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ds-fresh", "token_type": "Bearer", "refresh_token": "ds-rt-2",
            "expires_in": 28800
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/restapi/v2.1/accounts/acc-42/templates"))
        .and(header("authorization", "Bearer ds-fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "envelopeTemplates": [], "resultSetSize": "0"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/docusign");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "ds-key", "client_secret": "ds-secret",
        "token_uri": format!("{}/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({
        "access_token": "ds-old", "refresh_token": "ds-rt-1", "expires_at": 1,
        "account_id": "acc-42", "base_uri": "https://na3.docusign.net"
    });
    let base = format!("{}/restapi/v2.1", upstream.uri());
    let mut client = shipped_server(root.path(), "docusign", expired, &base);
    let result = call_tool(&mut client, 1, "list_templates", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "docusign");
    assert_eq!(saved["access_token"], "ds-fresh");
    assert_eq!(saved["refresh_token"], "ds-rt-2");
    assert_eq!(saved["account_id"], "acc-42");
    assert_eq!(saved["base_uri"], "https://na3.docusign.net");
    upstream.verify().await;
}
