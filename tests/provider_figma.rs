//! Figma's refresh through the real binary: an expired token is refreshed with the client
//! credentials as HTTP Basic authentication (none in the form), and — Figma answers a new
//! access token only — the refresh token already saved stays. The manifest sends refreshes to
//! Figma's own `/v1/oauth/refresh` (`auth.refresh_url`); here the OAuth app's `token_uri` points
//! them at the mock. The tools' requests are covered by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server, StdioClient};
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

/// The shipped figma manifest in a servers folder of its own, its OAuth endpoints on
/// `upstream` (a folder's manifest replaces the built-in one), for alice with `tokens`.
fn figma_with_endpoints_on(
    root: &std::path::Path,
    upstream: &MockServer,
    tokens: serde_json::Value,
) -> StdioClient {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servers/figma/server.toml"
    ))
    .unwrap();
    let manifest = shipped
        .replace(
            "https://api.figma.com/v1/oauth",
            &format!("{}/v1/oauth", upstream.uri()),
        )
        .replace("https://api.figma.com/v1", &upstream.uri());
    let folder = root.join("servers/figma");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("server.toml"), manifest).unwrap();
    let app = root.join("local_auth/oauth_configs/figma");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({ "client_id": "fig-id", "client_secret": "fig-secret", "redirect_uri": "http://localhost:8080/" });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let creds = root.join("local_auth/credentials/figma");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("alice_credentials.json"), tokens.to_string()).unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers]\ndir = \"{}\"\n[auth]\nlocal_dir = \"local_auth\"\n",
            root.join("servers").display()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    StdioClient::start(&[
        "--config",
        &config,
        "stdio",
        "--server",
        "figma",
        "--user-id",
        "alice",
    ])
}

#[tokio::test]
async fn a_refresh_goes_to_the_refresh_endpoint_not_the_token_endpoint() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth/refresh"))
        .and(header("authorization", "Basic ZmlnLWlkOmZpZy1zZWNyZXQ="))
        .and(body_string_contains("refresh_token=figr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "figu_fresh", "token_type": "bearer", "expires_in": 7776000
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" })))
        .expect(0)
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
    let expired = json!({ "access_token": "figu_old", "refresh_token": "figr1", "expires_at": 1 });
    let mut client = figma_with_endpoints_on(root.path(), &upstream, expired);
    let result = call_tool(&mut client, 1, "get_me", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    upstream.verify().await;
}
