//! X's token endpoint through the real binary: an expired token is refreshed with a
//! confidential app's credentials as HTTP Basic authentication, and the rotated refresh token —
//! X's refresh tokens are single-use — is saved before the new access token reaches X. The code
//! exchange with its PKCE verifier, for public and confidential apps, is tested beside the code
//! (`auth::connect`); the tools' requests by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// X's API answering a post only once the rotated refresh token is on disk.
struct SavedFirst(std::path::PathBuf);

impl Respond for SavedFirst {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let saved: Value = std::fs::read(&self.0)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if saved["refresh_token"] == "xrt2" {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": { "id": "17", "text": "hello" } }))
        } else {
            ResponseTemplate::new(500).set_body_json(json!({ "title": "not saved yet" }))
        }
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_before_the_new_access_token_is_used() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2/oauth2/token"))
        // base64("xid:xsecret")
        .and(header("authorization", "Basic eGlkOnhzZWNyZXQ="))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=xrt1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "expires_in": 7200, "access_token": "xat.fresh",
            "scope": "tweet.read users.read offline.access", "refresh_token": "xrt2"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let saved = root
        .path()
        .join("local_auth/credentials/x/alice_credentials.json");
    Mock::given(method("GET"))
        .and(path("/tweets/17"))
        .and(header("authorization", "Bearer xat.fresh"))
        .respond_with(SavedFirst(saved))
        .expect(1)
        .mount(&upstream)
        .await;
    let app = root.path().join("local_auth/oauth_configs/x");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "xid", "client_secret": "xsecret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/2/oauth2/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "xat.old", "refresh_token": "xrt1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "x", expired, &upstream.uri());
    let result = call_tool(&mut client, 1, "get_tweet_by_id", json!({ "id": "17" })).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "x");
    assert_eq!(saved["access_token"], "xat.fresh");
    assert_eq!(saved["refresh_token"], "xrt2");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(!refresh.contains("client_secret"), "{refresh}");
    upstream.verify().await;
}
