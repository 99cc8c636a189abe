//! Klaviyo through the real binary: an expired token is refreshed with the client credentials
//! as HTTP Basic authentication at Klaviyo's token endpoint, and the rotated refresh token is
//! saved; guMCP's campaign resources are listed and read. The tools' requests are covered by
//! `tests/fixtures.rs`.

mod common;

use common::{call_tool, modern_meta, saved_credentials, shipped_server};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_expired_token_is_refreshed_with_basic_auth_and_the_new_refresh_token_saved() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        // base64("kl-client:kl-secret")
        .and(header(
            "authorization",
            "Basic a2wtY2xpZW50OmtsLXNlY3JldA==",
        ))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=kl-rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "kl-fresh", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "kl-rt-2", "scope": "lists:read"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/metrics/M1"))
        .and(header("authorization", "Bearer kl-fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "type": "metric", "id": "M1", "attributes": { "name": "Placed Order" } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("local_auth/oauth_configs/klaviyo");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "kl-client", "client_secret": "kl-secret",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    let expired = json!({ "access_token": "kl-old", "refresh_token": "kl-rt-1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "klaviyo", expired, &upstream.uri());
    let result = call_tool(&mut client, 1, "get_metric", json!({ "metric_id": "M1" })).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "klaviyo");
    assert_eq!(saved["access_token"], "kl-fresh");
    assert_eq!(saved["refresh_token"], "kl-rt-2");
    upstream.verify().await;
}

#[tokio::test]
async fn email_and_sms_campaigns_are_resources() {
    let upstream = MockServer::start().await;
    for (channel, id, name) in [("email", "C1", "Spring sale"), ("sms", "C2", "Flash")] {
        Mock::given(method("GET"))
            .and(path("/campaigns"))
            .and(query_param(
                "filter",
                format!("equals(messages.channel,'{channel}')"),
            ))
            .and(query_param(
                "fields[campaign]",
                "name,status,created_at,updated_at",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [{
                "type": "campaign", "id": id,
                "attributes": { "name": name, "status": "Draft", "created_at": "2025-05-01" }
            }] })))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/campaigns/C1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "type": "campaign", "id": "C1", "attributes": { "name": "Spring sale" } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "kl-at-alice" });
    let mut client = shipped_server(root.path(), "klaviyo", tokens, &upstream.uri());
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let resources = listed["result"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named: Vec<(&str, &str, &str)> = resources
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["description"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "klaviyo://campaign/C1",
                "Campaign: Spring sale",
                "Klaviyo campaign (Status: Draft, Created: 2025-05-01)"
            ),
            (
                "klaviyo://campaign/C2",
                "Campaign: Flash",
                "Klaviyo campaign (Status: Draft, Created: 2025-05-01)"
            ),
        ],
        "{listed}"
    );
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "klaviyo://campaign/C1", "_meta": modern_meta() }),
        )
        .await;
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Spring sale"), "{read}");
    upstream.verify().await;
}
