//! PayPal through the real binary: an app token that has expired is renewed by the
//! client-credentials grant (the OAuth app's id and secret as HTTP Basic, no refresh token)
//! before the call, once however many calls wait, and saved; a token PayPal refuses is
//! renewed and the call retried. The tools' requests are covered by `tests/fixtures.rs`, the
//! first token by `tests/auth_fields.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn app(root: &std::path::Path, upstream: &MockServer) {
    let dir = root.join("local_auth/oauth_configs/paypal");
    std::fs::create_dir_all(&dir).unwrap();
    let file = json!({
        "client_id": "pp-client", "client_secret": "pp-secret",
        "token_uri": format!("{}/v1/oauth2/token", upstream.uri())
    });
    std::fs::write(dir.join("oauth.json"), file.to_string()).unwrap();
}

async fn mount_grant(upstream: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        // base64("pp-client:pp-secret")
        .and(header(
            "authorization",
            "Basic cHAtY2xpZW50OnBwLXNlY3JldA==",
        ))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "scope": "https://uri.paypal.com/services/invoicing", "access_token": token,
            "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
            "nonce": "2026-12-04T10:00:00Z"
        })))
        .expect(1)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn an_expired_app_token_is_renewed_by_the_client_credentials_grant() {
    let upstream = MockServer::start().await;
    mount_grant(&upstream, "A21-fresh").await;
    Mock::given(method("GET"))
        .and(path("/v1/catalogs/products/PROD-1"))
        .and(header("authorization", "Bearer A21-fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "PROD-1" })))
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    app(root.path(), &upstream);
    let expired = json!({ "access_token": "A21-old", "token_type": "Bearer", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "paypal", expired, &upstream.uri());
    for id in 1..=2 {
        let result = call_tool(
            &mut client,
            id,
            "get_product",
            json!({ "product_id": "PROD-1" }),
        )
        .await;
        assert_eq!(result["isError"], false, "{result}");
    }
    let saved = saved_credentials(root.path(), "paypal");
    assert_eq!(saved["access_token"], "A21-fresh");
    assert_eq!(saved["app_id"], "APP-80W284485P519543T");
    assert!(saved["expires_at"].as_i64().unwrap_or_default() > 1);
    upstream.verify().await;
}

#[tokio::test]
async fn a_refused_app_token_is_renewed_and_the_call_retried() {
    let upstream = MockServer::start().await;
    mount_grant(&upstream, "A21-next").await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/plans/P-1"))
        .and(header("authorization", "Bearer A21-revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_token", "error_description": "Token signature verification failed"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/plans/P-1"))
        .and(header("authorization", "Bearer A21-next"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "P-1" })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    app(root.path(), &upstream);
    let stored = json!({ "access_token": "A21-revoked", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "paypal", stored, &upstream.uri());
    let result = call_tool(&mut client, 1, "get_plan", json!({ "plan_id": "P-1" })).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(
        saved_credentials(root.path(), "paypal")["access_token"],
        "A21-next"
    );
    upstream.verify().await;
}
