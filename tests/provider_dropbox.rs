//! Dropbox's token endpoint through the real binary: an expired token is refreshed with the
//! client credentials as HTTP Basic authentication, and — Dropbox keeps refresh tokens — the
//! refresh token already saved stays. The authorization URL (`token_access_type=offline`) is
//! tested beside the code (`auth::connect`); the tools' requests by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_refresh_token_kept() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        // base64("app-key:app-secret")
        .and(header("authorization", "Basic YXBwLWtleTphcHAtc2VjcmV0"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=dbr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sl.fresh", "token_type": "bearer", "expires_in": 14400
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/files/get_metadata"))
        .and(header("authorization", "Bearer sl.fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            ".tag": "file", "name": "a.txt", "size": 3
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/dropbox");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "app-key", "client_secret": "app-secret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth2/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "sl.old", "refresh_token": "dbr1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "dropbox", expired, &upstream.uri());
    let result = call_tool(
        &mut client,
        1,
        "get_file_metadata",
        json!({ "path": "/a.txt" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "dropbox");
    assert_eq!(saved["access_token"], "sl.fresh");
    assert_eq!(saved["refresh_token"], "dbr1");
    upstream.verify().await;
}
