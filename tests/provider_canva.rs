//! Canva through the real binary. Its token endpoint: an expired token is refreshed with the
//! client credentials as HTTP Basic authentication, and the rotated refresh token — Canva's are
//! single-use — is saved before the new access token reaches Canva. Its resources: the user's
//! designs, the most recently changed first, each read as Canva describes it. The code exchange
//! with its PKCE verifier is tested beside the code (`auth::connect`); the tools' requests by
//! `tests/fixtures.rs`.

mod common;

use common::{call_tool, modern_meta, saved_credentials, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// canva for alice with `tokens`, its OAuth app's token endpoint on `upstream`.
fn canva(root: &std::path::Path, tokens: Value, upstream: &MockServer) -> StdioClient {
    let app = root.join("local_auth/oauth_configs/canva");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "cid", "client_secret": "cs",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/rest/v1/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    shipped_server(root, "canva", tokens, &upstream.uri())
}

/// Canva's API answering only once the rotated refresh token is on disk.
struct SavedFirst(std::path::PathBuf);

impl Respond for SavedFirst {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let saved: Value = std::fs::read(&self.0)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if saved["refresh_token"] == "cnvr2" {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "profile": { "display_name": "Ada" } }))
        } else {
            ResponseTemplate::new(500).set_body_json(json!({ "message": "not saved yet" }))
        }
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_before_the_new_access_token_is_used() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/v1/oauth/token"))
        // base64("cid:cs")
        .and(header("authorization", "Basic Y2lkOmNz"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=cnvr1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "cnv.fresh", "refresh_token": "cnvr2", "token_type": "Bearer",
            "expires_in": 14400, "scope": "profile:read"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let saved = root
        .path()
        .join("local_auth/credentials/canva/alice_credentials.json");
    Mock::given(method("GET"))
        .and(path("/users/me/profile"))
        .and(header("authorization", "Bearer cnv.fresh"))
        .respond_with(SavedFirst(saved))
        .expect(1)
        .mount(&upstream)
        .await;
    let expired = json!({ "access_token": "cnv.old", "refresh_token": "cnvr1", "expires_at": 1 });
    let mut client = canva(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "get_user_profile", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "canva");
    assert_eq!(saved["refresh_token"], "cnvr2");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(!refresh.contains("client_secret"), "{refresh}");
    upstream.verify().await;
}

#[tokio::test]
async fn designs_are_resources_read_as_canva_describes_them() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/designs"))
        .and(query_param("sort_by", "modified_descending"))
        .and(header("authorization", "Bearer cnv.alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [{ "id": "DAF1", "title": "Launch deck" }, { "id": "DAF2" }],
            "continuation": "next"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/designs/DAF1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "design": { "id": "DAF1", "title": "Launch deck", "page_count": 5 }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "cnv.alice", "refresh_token": "cnvr1", "expires_at": 4102444800_i64 });
    let mut client = canva(root.path(), tokens, &upstream);
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let named: Vec<(String, String)> = listed["result"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap_or_default().to_owned(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("canva://design/DAF1", "Launch deck"),
        ("canva://design/DAF2", "Untitled design"),
    ]
    .map(|(uri, name)| (uri.to_owned(), name.to_owned()));
    assert_eq!(named, expected, "{listed}");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "canva://design/DAF1", "_meta": modern_meta() }),
        )
        .await;
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let design: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(design["design"]["page_count"], 5, "{read}");
    upstream.verify().await;
}
