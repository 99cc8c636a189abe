//! Stripe Connect through the real binary: an access token Stripe rejects is refreshed once at
//! Connect's token endpoint (the `refresh_token` grant, the client secret in the form body) and
//! the call retried; the connected account's `stripe_user_id` stays with the saved credentials.
//! The tools' requests are covered by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_connected_account_kept() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header("authorization", "Bearer sk_old"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": { "message": "Expired API Key provided", "type": "invalid_request_error" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rt_alice"))
        .and(body_string_contains("client_secret=sk_platform"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sk_fresh", "token_type": "bearer", "scope": "read_write",
            "refresh_token": "rt_alice", "stripe_user_id": "acct_1Alice", "livemode": false
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header("authorization", "Bearer sk_fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "balance", "available": [{ "amount": 100, "currency": "usd" }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/stripe");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "ca_platform", "client_secret": "sk_platform",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let saved = json!({
        "access_token": "sk_old", "refresh_token": "rt_alice", "stripe_user_id": "acct_1Alice"
    });
    let mut client = shipped_server(root.path(), "stripe", saved, &upstream.uri());
    let result = call_tool(&mut client, 1, "retrieve_balance", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["available"][0]["amount"], 100);
    let saved = saved_credentials(root.path(), "stripe");
    assert_eq!(saved["access_token"], "sk_fresh");
    assert_eq!(saved["stripe_user_id"], "acct_1Alice");
    upstream.verify().await;
}
