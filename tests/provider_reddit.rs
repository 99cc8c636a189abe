//! Reddit's token endpoint through the real binary: an expired token is refreshed with the
//! client credentials as HTTP Basic authentication (none in the form), the permanent refresh
//! token already saved stays, and the API call that follows carries the descriptive
//! `User-Agent` Reddit's rules ask for. The authorization URL (`duration=permanent`) and the
//! code exchange are tested beside the code (`auth::connect`); the tools' requests by
//! `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_refresh_token_kept() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/access_token"))
        // base64("rid:rsecret")
        .and(header("authorization", "Basic cmlkOnJzZWNyZXQ="))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "eyJhb.fresh", "token_type": "bearer", "expires_in": 86400,
            "scope": "identity read submit edit history flair"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/info"))
        .and(header("authorization", "Bearer eyJhb.fresh"))
        .and(header_regex(
            "user-agent",
            r"^server:gumcp-actors-reddit:v\d",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "Listing",
            "data": { "children": [{ "kind": "t3", "data": { "id": "b2", "title": "Ask" } }] }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/reddit");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "rid", "client_secret": "rsecret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/api/v1/access_token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "eyJhb.old", "refresh_token": "rr1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "reddit", expired, &upstream.uri());
    let result = call_tool(
        &mut client,
        1,
        "get_reddit_post_details",
        json!({ "post_id": "b2" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "reddit");
    assert_eq!(saved["access_token"], "eyJhb.fresh");
    assert_eq!(saved["refresh_token"], "rr1");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(!refresh.contains("client_secret"), "{refresh}");
    upstream.verify().await;
}
