//! discourse beyond its tools (`tests/fixtures.rs`): guMCP's resources (categories and latest
//! topics, read as `/c/{id}/show.json` and `/t/{id}.json`), credentials in guMCP's Gumloop
//! shape (`metadata` + `value`), and a stored forum URL that is not https, or names a local or
//! private address, refused before any request is made.

mod common;

use common::{call_tool, modern_meta, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answer(upstream: &MockServer, route: &str, key: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .and(header("api-key", key))
        .and(header("api-username", "system"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(upstream)
        .await;
}

#[tokio::test]
async fn categories_and_latest_topics_are_resources() {
    let upstream = MockServer::start().await;
    answer(
        &upstream,
        "/categories.json",
        "k1",
        json!({ "category_list": { "categories": [{ "id": 1, "name": "General" }] } }),
    )
    .await;
    answer(
        &upstream,
        "/latest.json",
        "k1",
        json!({ "topic_list": { "topics": [{ "id": 8, "title": "Welcome" }, { "title": "no id" }] } }),
    )
    .await;
    answer(
        &upstream,
        "/t/8.json",
        "k1",
        json!({ "id": 8, "title": "Welcome", "posts_count": 3 }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let stored =
        json!({ "api_key": "k1", "base_url": "https://forum.example.com", "username": "system" });
    let mut client = shipped_server(root.path(), "discourse", stored, &upstream.uri());
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
                r["uri"].as_str().unwrap_or("").into(),
                r["name"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "discourse://category/1".to_owned(),
                "Category: General".to_owned()
            ),
            (
                "discourse://topic/8".to_owned(),
                "Topic: Welcome".to_owned()
            )
        ],
        "{listed}"
    );
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "discourse://topic/8", "_meta": modern_meta() }),
        )
        .await;
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let topic: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(topic["posts_count"], 3, "{read}");
    upstream.verify().await;
}

#[tokio::test]
async fn gumcps_gumloop_shape_is_read() {
    let upstream = MockServer::start().await;
    answer(
        &upstream,
        "/users/ada.json",
        "k2",
        json!({ "user_badges": [], "user": { "id": 2, "username": "ada" } }),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({
        "metadata": [
            { "name": "Username", "placeholder": "Your Discourse username", "value": "system" },
            { "name": "Discourse URL", "placeholder": "https://example.discourse.com", "value": "https://forum.example.com" }
        ],
        "value": "k2"
    });
    let mut client = shipped_server(root.path(), "discourse", stored, &upstream.uri());
    let result = call_tool(
        &mut client,
        1,
        "get_user_info",
        json!({ "username": "ada" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["username"], "ada", "{result}");
    upstream.verify().await;
}

/// alice's discourse with `base_url` stored and no base-URL override: the first tool
/// call's error text, which never shows the key and says how to reconnect.
async fn refused_with(base_url: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    let creds = root.path().join("local_auth/credentials/discourse");
    std::fs::create_dir_all(&creds).unwrap();
    let stored = json!({ "api_key": "k3", "base_url": base_url, "username": "system" });
    std::fs::write(creds.join("alice_credentials.json"), stored.to_string()).unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(&config, "[auth]\nlocal_dir = \"local_auth\"\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut client = StdioClient::start(&[
        "--config",
        &config,
        "stdio",
        "--server",
        "discourse",
        "--user-id",
        "alice",
    ]);
    let result = call_tool(&mut client, 1, "list_categories", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!text.contains("k3"), "{text}");
    assert!(
        text.contains("gumcp-actors auth --server discourse --user-id alice"),
        "{text}"
    );
    text
}

#[tokio::test]
async fn a_stored_forum_url_that_is_not_https_is_refused_before_any_request() {
    let text = refused_with("http://127.0.0.1:9/forum").await;
    assert!(
        text.contains("the Discourse URL stored for user alice must start with https://"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stored_forum_url_that_is_private_is_refused_before_any_request() {
    for private in [
        "https://127.0.0.1:9",
        "https://169.254.169.254",
        "https://localhost",
    ] {
        let text = refused_with(private).await;
        assert!(
            text.contains("names a local or private address"),
            "{private}: {text}"
        );
    }
}
