//! The Atlassian provider through the real binary (jira): an expired token is refreshed at
//! Atlassian's token endpoint, the rotated refresh token is saved with the new access token
//! before the call uses it, and the site's cloud id is discovered with that token at
//! `accessible-resources`, once while the token stays the same. A
//! refused refresh says to reconnect. The authorization URL (audience, consent) and the code
//! exchange are tested beside the code (`auth::connect`); the tools' requests by
//! `tests/fixtures.rs`.

mod common;

use common::{call_tool, saved_credentials, shipped_server, text_of, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// jira for alice with `tokens`, its OAuth app's token endpoint and Atlassian's API on
/// `upstream`.
fn jira(root: &std::path::Path, tokens: Value, upstream: &MockServer) -> StdioClient {
    let app = root.join("local_auth/oauth_configs/jira");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "cid", "client_secret": "cs",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    shipped_server(root, "jira", tokens, &upstream.uri())
}

/// `accessible-resources` answers `sites` to `token`, `times` times.
async fn sites(upstream: &MockServer, token: &str, sites: Value, times: u64) {
    Mock::given(method("GET"))
        .and(path("/oauth/token/accessible-resources"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(sites))
        .expect(times)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_the_rotated_refresh_token_saved_and_the_site_found_once() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=ar1"))
        .and(body_string_contains("client_id=cid"))
        .and(body_string_contains("client_secret=cs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "eyJat.fresh", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "ar2", "scope": "read:jira-work offline_access"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    sites(
        &upstream,
        "eyJat.fresh",
        json!([{ "id": "c1", "name": "acme", "url": "https://acme.atlassian.net" }]),
        1,
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/ex/jira/c1/rest/api/3/myself"))
        .and(header("authorization", "Bearer eyJat.fresh"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "accountId": "a1", "displayName": "Ann" })),
        )
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "eyJat.old", "refresh_token": "ar1", "expires_at": 1 });
    let mut client = jira(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "get_myself", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "jira");
    assert_eq!(saved["access_token"], "eyJat.fresh");
    assert_eq!(
        saved["refresh_token"], "ar2",
        "the rotated token replaces the old one"
    );
    // Same token: no second refresh, no second lookup of the site.
    let again = call_tool(&mut client, 2, "get_myself", json!({})).await;
    assert_eq!(again["isError"], false, "{again}");
    upstream.verify().await;
}

#[tokio::test]
async fn with_several_sites_one_is_named_by_name_or_id_and_the_error_lists_them() {
    let upstream = MockServer::start().await;
    sites(
        &upstream,
        "eyJat.now",
        json!([
            { "id": "c1", "name": "acme", "url": "https://acme.atlassian.net" },
            { "id": "c2", "name": "beta", "url": "https://beta.atlassian.net" }
        ]),
        1,
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/ex/jira/c2/rest/api/3/project/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [{ "id": "1", "key": "B" }], "isLast": true
        })))
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "eyJat.now", "refresh_token": "ar1", "expires_at": 4102444800_i64 });
    let mut client = jira(root.path(), tokens, &upstream);
    let unnamed = call_tool(&mut client, 1, "list_projects", json!({})).await;
    assert_eq!(unnamed["isError"], true, "{unnamed}");
    assert!(
        text_of(&unnamed).contains("Multiple Jira sites available")
            && text_of(&unnamed).contains("acme, beta"),
        "{unnamed}"
    );
    let by_name = call_tool(
        &mut client,
        2,
        "list_projects",
        json!({ "site_name": "Beta" }),
    )
    .await;
    assert_eq!(by_name["isError"], false, "{by_name}");
    let by_id = call_tool(&mut client, 3, "list_projects", json!({ "cloud_id": "c2" })).await;
    assert_eq!(
        by_id["structuredContent"]["items"][0]["key"], "B",
        "{by_id}"
    );
    let resources = client
        .request(
            4,
            "resources/list",
            json!({ "_meta": common::modern_meta() }),
        )
        .await;
    let listed = resources["result"]["resources"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{resources}");
    assert_eq!(listed[1]["uri"], "jira://site/c2");
    assert_eq!(
        listed[1]["description"],
        "Jira site: beta - https://beta.atlassian.net"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_refused_refresh_says_to_reconnect() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": "invalid_grant", "error_description": "Unknown or invalid refresh token."
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "eyJat.old", "refresh_token": "ar1", "expires_at": 1 });
    let mut client = jira(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "get_myself", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(
        text.contains("reconnect with `gumcp-actors auth --server jira --user-id alice`"),
        "{text}"
    );
    assert!(!text.contains("ar1") && !text.contains("eyJat"), "{text}");
    upstream.verify().await;
}
