//! Figma's refresh through the real binary: an expired token is refreshed with the client
//! credentials as HTTP Basic authentication (none in the form), and — Figma answers a new
//! access token only — the refresh token already saved stays. The manifest sends refreshes to
//! Figma's own `/v1/oauth/refresh` (`auth.refresh_url`); here the OAuth app's `token_uri` points
//! them at the mock. The tools' requests are covered by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_refresh_token_kept() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth/refresh"))
        // base64("fig-id:fig-secret")
        .and(header("authorization", "Basic ZmlnLWlkOmZpZy1zZWNyZXQ="))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=figr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "figu_fresh", "token_type": "bearer", "expires_in": 7776000
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", "Bearer figu_fresh"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": "1", "handle": "ada" })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/figma");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "fig-id", "client_secret": "fig-secret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/v1/oauth/refresh", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "figu_old", "refresh_token": "figr1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "figma", expired, &upstream.uri());
    let result = call_tool(&mut client, 1, "get_me", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "figma");
    assert_eq!(saved["access_token"], "figu_fresh");
    assert_eq!(saved["refresh_token"], "figr1");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(!refresh.contains("client_secret"), "{refresh}");
    upstream.verify().await;
}
