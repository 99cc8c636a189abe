//! Zoom's token endpoint through the real binary: an expired token is refreshed with the client
//! credentials as HTTP Basic authentication (none in the form), the rotated refresh token is
//! saved with the new access token before the call uses it, and a refresh Zoom refuses says to
//! reconnect. The authorization URL and the code exchange are tested beside the code
//! (`auth::connect`); the tools' requests by `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server, text_of, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// zoom for alice with `tokens`, its OAuth app's token endpoint on `upstream`.
fn zoom(root: &std::path::Path, tokens: Value, upstream: &MockServer) -> StdioClient {
    let app = root.join("local_auth/oauth_configs/zoom");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "cid", "client_secret": "cs",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    shipped_server(root, "zoom", tokens, &upstream.uri())
}

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_rotated_refresh_token_saved() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        // base64("cid:cs")
        .and(header("authorization", "Basic Y2lkOmNz"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=zr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "eyJzm.fresh", "token_type": "bearer", "refresh_token": "zr2",
            "expires_in": 3599, "scope": "meeting:read:meeting"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/meetings/1"))
        .and(header("authorization", "Bearer eyJzm.fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 1, "topic": "Sync" })))
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "eyJzm.old", "refresh_token": "zr1", "expires_at": 1 });
    let mut client = zoom(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "get_meeting", json!({ "meeting_id": "1" })).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "zoom");
    assert_eq!(saved["access_token"], "eyJzm.fresh");
    assert_eq!(
        saved["refresh_token"], "zr2",
        "the rotated token replaces the old one"
    );
    // The fresh token is used from then on, with no second refresh.
    let again = call_tool(&mut client, 2, "get_meeting", json!({ "meeting_id": "1" })).await;
    assert_eq!(again["isError"], false, "{again}");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = requests
        .iter()
        .find(|request| request.url.path() == "/oauth/token")
        .map(|request| String::from_utf8_lossy(&request.body).into_owned())
        .unwrap_or_default();
    assert!(
        refresh.contains("grant_type=refresh_token") && !refresh.contains("client_secret"),
        "the secret goes only in the Authorization header: {refresh}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_refused_refresh_says_to_reconnect() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "reason": "Invalid Token!", "error": "invalid_request"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "eyJzm.old", "refresh_token": "zr1", "expires_at": 1 });
    let mut client = zoom(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "list_upcoming_meetings", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(
        text.contains("reconnect with `gumcp-actors auth --server zoom --user-id alice`"),
        "{text}"
    );
    assert!(!text.contains("zr1") && !text.contains("eyJzm"), "{text}");
    upstream.verify().await;
}
