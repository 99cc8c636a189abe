//! Bluesky's password session through the real binary: `auth` trades the handle and an app
//! password for a session (createSession) and keeps no password; an expired access JWT is
//! renewed once with the refresh JWT (refreshSession, which rotates both) and saved; a refused
//! renewal asks to reconnect. The manifest's endpoints point at a mock (a servers folder's
//! manifest replaces the built-in one). The tools' requests are covered by `tests/fixtures.rs`.

mod common;

use std::process::Stdio;

use base64::Engine;
use common::{binary, call_tool, saved_credentials, StdioClient, WAIT};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An unsigned JWT whose claims say it expires at `exp` (only the claims are read here).
fn jwt(exp: i64) -> String {
    let encode =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.sig",
        encode(json!({ "alg": "ES256K" })),
        encode(json!({ "sub": "did:plc:ada", "exp": exp }))
    )
}

/// A project whose bluesky manifest sends everything to `upstream`; its config's path.
fn project(root: &std::path::Path, upstream: &MockServer) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servers/bluesky/server.toml"
    ))
    .unwrap();
    let folder = root.join("servers/bluesky");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("server.toml"),
        shipped.replace("https://bsky.social/xrpc", &upstream.uri()),
    )
    .unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers]\ndir = \"{}\"\n[auth]\nlocal_dir = \"local_auth\"\n",
            root.join("servers").display()
        ),
    )
    .unwrap();
    config
}

fn bluesky_for_alice(root: &std::path::Path, upstream: &MockServer, session: Value) -> StdioClient {
    let config = project(root, upstream);
    let creds = root.join("local_auth/credentials/bluesky");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("alice_credentials.json"), session.to_string()).unwrap();
    let config = config.to_string_lossy().into_owned();
    StdioClient::start(&[
        "--config",
        &config,
        "stdio",
        "--server",
        "bluesky",
        "--user-id",
        "alice",
    ])
}

/// A session as guMCP stores it, its access JWT expired.
fn expired_session() -> Value {
    json!({ "accessJwt": jwt(1), "refreshJwt": "refresh-1",
            "handle": "ada.bsky.social", "did": "did:plc:ada", "active": true })
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_saved() {
    let upstream = MockServer::start().await;
    let fresh = jwt(4_102_444_800);
    Mock::given(method("POST"))
        .and(path("/com.atproto.server.refreshSession"))
        .and(header("authorization", "Bearer refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": fresh, "refreshJwt": "refresh-2",
            "handle": "ada.bsky.social", "did": "did:plc:ada"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/app.bsky.actor.getProfile"))
        .and(query_param("actor", "did:plc:ada"))
        .and(header("authorization", format!("Bearer {fresh}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "did": "did:plc:ada", "handle": "ada.bsky.social"
        })))
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = bluesky_for_alice(root.path(), &upstream, expired_session());
    for id in 1..=2 {
        let result = call_tool(&mut client, id, "get_my_profile", json!({})).await;
        assert_eq!(result["isError"], false, "{result}");
    }
    let saved = saved_credentials(root.path(), "bluesky");
    assert_eq!(saved["access_token"], fresh.as_str());
    assert_eq!(saved["refresh_token"], "refresh-2");
    assert_eq!(saved["expires_at"], 4_102_444_800_i64);
    assert_eq!(saved["did"], "did:plc:ada");
    upstream.verify().await;
}

#[tokio::test]
async fn a_refused_refresh_asks_to_reconnect() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/com.atproto.server.refreshSession"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "ExpiredToken", "message": "Token has been revoked"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = bluesky_for_alice(root.path(), &upstream, expired_session());
    let result = call_tool(&mut client, 1, "get_my_profile", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("Token has been revoked"), "{text}");
    assert!(
        text.contains("gumcp-actors auth --server bluesky"),
        "{text}"
    );
    assert!(!text.contains("refresh-1"), "{text}");
    upstream.verify().await;
}

#[tokio::test]
async fn connecting_trades_the_handle_and_app_password_for_a_session() {
    let upstream = MockServer::start().await;
    let access = jwt(4_102_444_800);
    Mock::given(method("POST"))
        .and(path("/com.atproto.server.createSession"))
        .and(body_json(
            json!({ "identifier": "ada.bsky.social", "password": "abcd-efgh-ijkl-mnop" }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": access, "refreshJwt": "refresh-1",
            "handle": "ada.bsky.social", "did": "did:plc:ada", "active": true
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &upstream);
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "bluesky", "--user-id", "alice"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"ada.bsky.social\nabcd-efgh-ijkl-mnop\n")
        .await
        .unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Signing in to bluesky for a session"),
        "{stdout}"
    );
    let file = root
        .path()
        .join("local_auth/credentials/bluesky/alice_credentials.json");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        !text.contains("abcd-efgh"),
        "the app password is not kept: {text}"
    );
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["access_token"], access.as_str());
    assert_eq!(saved["refresh_token"], "refresh-1");
    assert_eq!(saved["handle"], "ada.bsky.social");
    upstream.verify().await;
}
