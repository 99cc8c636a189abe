//! Who may call `serve`, over real HTTP: API keys (in the session key or as a Bearer token)
//! decide the user, everything else gets 401, and no key ever reaches the logs.

mod common;

use common::{binary, modern_meta, Served, WAIT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::process::Command;

const KEY: &str = "alice-secret-key-0001";

/// `serve` with `config`, logging at debug (so the test can show no key reaches the logs).
async fn serve(config: &str) -> (Served, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("gumcp.toml");
    std::fs::write(&path, config).unwrap();
    (
        common::serve(Some(&path), &[("RUST_LOG", "debug")]).await,
        root,
    )
}

fn keys_config() -> String {
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    format!("[access]\nmode = \"api_keys\"\napi_keys = [{{ user_id = \"alice\", sha256 = \"{digest}\" }}]\n")
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    tool: &str,
    arguments: Value,
) -> reqwest::Response {
    let mut request = common::stateless_call(client, url, tool, arguments, modern_meta());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

async fn text_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn api_keys_decide_the_user_and_everything_else_is_refused() {
    let (served, _root) = serve(&keys_config()).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = &served.url;

    let stored = post(
        &client,
        &format!("{base}/simple-tools-server/mcp"),
        Some(KEY),
        "store-data",
        json!({ "key": "k", "value": "v" }),
    )
    .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(text_of(stored).await, "Stored 'k' with value: v");

    // The same user through the session key in the path sees the data.
    let read = post(
        &client,
        &format!("{base}/simple-tools-server/alice:{KEY}/mcp"),
        None,
        "retrieve-data",
        json!({ "key": "k" }),
    )
    .await;
    assert_eq!(text_of(read).await, "Value for 'k': v");

    for (url, bearer) in [
        (format!("{base}/simple-tools-server/mcp"), None),
        (format!("{base}/simple-tools-server/mcp"), Some("wrong-key")),
        (format!("{base}/simple-tools-server/alice/mcp"), None),
        (
            format!("{base}/simple-tools-server/mallory:{KEY}/mcp"),
            None,
        ),
    ] {
        let refused = post(&client, &url, bearer, "list-data", json!({})).await;
        assert_eq!(refused.status(), 401, "{url}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        let body = refused.text().await.unwrap();
        assert!(body.starts_with("Unauthorized: "), "{body}");
        assert!(!body.contains(KEY), "{body}");
    }

    // The legacy SSE route takes the key in the session key too.
    let stream = client
        .get(format!("{base}/simple-tools-server/alice:{KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);
    let refused = client
        .get(format!("{base}/simple-tools-server/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let logs = served.stop().await;
    assert!(!logs.is_empty(), "debug logging produced nothing to check");
    assert!(!logs.contains(KEY), "a key reached the logs");
}

#[tokio::test]
async fn open_access_on_loopback_needs_no_key() {
    let (served, _root) = serve("").await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let response = post(
        &client,
        &format!("{}/simple-tools-server/mcp", served.url),
        None,
        "list-data",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_malformed_digest_in_the_config_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("gumcp.toml");
    std::fs::write(
        &path,
        "[access]\nmode = \"api_keys\"\napi_keys = [{ user_id = \"alice\", sha256 = \"abc\" }]\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .args(["serve", "--port", "0", "--metrics-port", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("access.api_keys.sha256"));
}

#[tokio::test]
async fn remote_access_needs_a_key_and_the_user_in_the_path() {
    // simple-tools-server fetches no credentials, so the store is never reached here.
    let (served, _root) =
        serve("[access]\nmode = \"remote\"\n[auth]\nbackend = \"remote\"\nremote_base_url = \"http://127.0.0.1:9\"\n").await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = &served.url;
    let with_key = post(
        &client,
        &format!("{base}/simple-tools-server/alice:{KEY}/mcp"),
        None,
        "list-data",
        json!({}),
    )
    .await;
    assert_eq!(with_key.status(), 200);
    for (url, bearer) in [
        (format!("{base}/simple-tools-server/alice/mcp"), None),
        (format!("{base}/simple-tools-server/mcp"), Some(KEY)),
    ] {
        let refused = post(&client, &url, bearer, "list-data", json!({})).await;
        assert_eq!(refused.status(), 401, "{url}");
    }
}
