//! Hosted `kind = "mcp"` servers through the real binary: a remote Streamable HTTP MCP server
//! reached with each user's credential, its session re-initialized when the upstream drops it.
//! Upstreams: our own `serve` (a second process, API keys required) and a server built with
//! the official Python SDK (tests/fixtures/hosted_echo_server.py over Streamable HTTP).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{StdioClient, WAIT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A downstream project in `root`: the `remote` server at `url`, and alice's and bob's keys.
fn project(root: &Path, url: &str) -> PathBuf {
    let dir = root.join("servers/remote");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "name = \"remote\"\ndescription = \"A remote MCP server\"\nversion = \"1\"\n\
             kind = \"mcp\"\n[auth]\nkind = \"api_key\"\n[mcp]\nurl = \"{url}\"\n"
        ),
    )
    .unwrap();
    let creds = root.join("local_auth/credentials/remote");
    std::fs::create_dir_all(&creds).unwrap();
    for (user, key) in [("alice", "alice-upstream-key"), ("bob", "not-a-key")] {
        std::fs::write(
            creds.join(format!("{user}_credentials.json")),
            json!({ "api_key": key }).to_string(),
        )
        .unwrap();
    }
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        "[servers]\ndir = \"servers\"\n[auth]\nlocal_dir = \"local_auth\"\n",
    )
    .unwrap();
    config
}

fn downstream(config: &Path, user: &str) -> StdioClient {
    let config = config.to_str().unwrap();
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args([
            "--config",
            config,
            "stdio",
            "--server",
            "remote",
            "--user-id",
            user,
        ])
        .env("RUST_LOG", "warn");
    StdioClient::spawn(command)
}

fn text(reply: &Value) -> &str {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("not a tool result: {reply}"))
}

async fn call(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    let params = json!({ "name": tool, "arguments": arguments });
    client.request(id, "tools/call", params).await
}

/// `gumcp_connection_total` of `server` on a served metrics endpoint.
async fn sessions_opened(metrics_url: &str, server: &str) -> u64 {
    let body = common::http_client()
        .get(metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("gumcp_connection_total{{server=\"{server}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn our_own_serve_upstream_gets_each_users_key_and_a_dropped_session_is_renewed() {
    let upstream_root = tempfile::tempdir().unwrap();
    let upstream_config = upstream_root.path().join("gumcp.toml");
    let digest = hex::encode(Sha256::digest(b"alice-upstream-key"));
    std::fs::write(
        &upstream_config,
        format!(
            "[access]\nmode = \"api_keys\"\n[[access.api_keys]]\nuser_id = \"alice\"\nsha256 = \"{digest}\"\n"
        ),
    )
    .unwrap();
    let upstream = common::serve(
        Some(&upstream_config),
        &[("GUMCP__HTTP__SESSION_IDLE_SECS", "1")],
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &format!("{}/simple-tools-server/mcp", upstream.url),
    );

    let mut alice = downstream(&config, "alice");
    let init = alice.initialize("2025-06-18", json!({})).await;
    assert!(init.get("result").is_some(), "{init}");
    let tools = alice.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"store-data"), "{tools}");
    let stored = call(
        &mut alice,
        2,
        "store-data",
        json!({"key": "k", "value": "v"}),
    )
    .await;
    assert_eq!(text(&stored), "Stored 'k' with value: v");
    assert_eq!(
        sessions_opened(&upstream.metrics_url, "simple-tools-server").await,
        1
    );

    // The upstream ends the session once it has had no request for a second (its standalone
    // stream, open to us, does not keep it).
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut id = 3;
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let read = call(&mut alice, id, "retrieve-data", json!({"key": "k"})).await;
        assert_eq!(text(&read), "Value for 'k': v", "{read}");
        if sessions_opened(&upstream.metrics_url, "simple-tools-server").await >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream never dropped the session"
        );
        id += 1;
    }
    alice.close().await;

    let mut bob = downstream(&config, "bob");
    let refused = bob.initialize("2025-06-18", json!({})).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the credentials (HTTP 401)"),
        "{refused}"
    );
    bob.close().await;
    upstream.stop().await;
}

#[tokio::test]
async fn a_2026_caller_is_relayed_statelessly_to_our_own_serve_with_its_input_requests() {
    let upstream = common::serve(None, &[]).await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &format!("{}/conformance-fixtures/alice/mcp", upstream.url),
    );
    let mut alice = downstream(&config, "alice");
    let mut meta = common::modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let params = |extra: Value| {
        let mut params = json!({
            "_meta": meta.clone(),
            "name": "test_input_required_result_multi_round",
            "arguments": {}
        });
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        params
    };
    let round1 = alice.request(1, "tools/call", params(json!({}))).await;
    assert_eq!(round1["result"]["resultType"], "input_required", "{round1}");
    let round2 = alice
        .request(
            2,
            "tools/call",
            params(json!({
                "inputResponses": {"step1": {"action": "accept", "content": {"name": "Ada"}}},
                "requestState": round1["result"]["requestState"]
            })),
        )
        .await;
    assert!(
        round2["result"]["inputRequests"]["step2"].is_object(),
        "{round2}"
    );
    let done = alice
        .request(
            3,
            "tools/call",
            params(json!({
                "inputResponses": {"step2": {"action": "accept", "content": {"color": "green"}}},
                "requestState": round2["result"]["requestState"]
            })),
        )
        .await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, Ada! Your favorite color is green.",
        "{done}"
    );
    alice.close().await;
    upstream.stop().await;
}

/// The Python fixture serving Streamable HTTP on a free loopback port: the process, and its
/// MCP endpoint.
async fn python_upstream(mode: &str) -> (tokio::process::Child, String) {
    let venv = Path::new(ROOT).join(".tools/venv/bin/python");
    let status = std::process::Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/python-env.sh"))
        .status()
        .unwrap();
    assert!(status.success());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = tokio::process::Command::new(venv)
        .arg(Path::new(ROOT).join("tests/fixtures/hosted_echo_server.py"))
        .env("HOSTED_FIXTURE_HTTP_PORT", port.to_string())
        .env("HOSTED_TOKEN", "upstream's own")
        .env("HOSTED_FIXTURE_MODE", mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Python upstream never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (upstream, format!("http://127.0.0.1:{port}/mcp"))
}

#[tokio::test]
async fn a_python_sdk_upstream_is_relayed_with_progress_and_questions() {
    let (mut upstream, url) = python_upstream("").await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &url);
    let mut alice = downstream(&config, "alice");
    alice
        .initialize("2025-06-18", json!({"elicitation": {}}))
        .await;
    let said = call(&mut alice, 1, "whoami", json!({})).await;
    let said: Value = serde_json::from_str(text(&said)).unwrap();
    assert_eq!(said["token"], "upstream's own");
    let modern = alice
        .request(
            9,
            "tools/call",
            json!({"name": "whoami", "arguments": {}, "_meta": common::modern_meta()}),
        )
        .await;
    let modern: Value = serde_json::from_str(text(&modern)).unwrap();
    assert_eq!(modern["token"], "upstream's own");

    alice
        .send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "slow", "arguments": {"seconds": 0.1}, "_meta": {"progressToken": "p"}
            }}),
        )
        .await;
    let done = alice.wait_for_id(&json!(2)).await;
    assert_eq!(text(&done), "done");
    let progress = alice
        .seen
        .iter()
        .find(|message| message["method"] == "notifications/progress")
        .unwrap_or_else(|| panic!("no progress among {:?}", alice.seen));
    assert_eq!(progress["params"]["progressToken"], "p");

    alice
        .send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "ask_user", "arguments": {}}}))
        .await;
    let asked = loop {
        let message = alice.next().await;
        if message["method"] == "elicitation/create" {
            break message;
        }
    };
    alice
        .send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "action": "accept", "content": {"answer": "over http"}
        }}))
        .await;
    let reply = alice.wait_for_id(&json!(3)).await;
    assert_eq!(text(&reply), "user said over http");
    alice.close().await;
    upstream.kill().await.unwrap();
}

/// A 2026-07-28 request that declares the tasks extension.
fn with_tasks(params: Value) -> Value {
    let mut meta = common::modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] =
        json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let mut params = params;
    params["_meta"] = meta;
    params
}

#[tokio::test]
async fn tools_of_a_remote_mcp_server_run_as_tasks() {
    let upstream = common::serve(None, &[]).await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &format!("{}/conformance-fixtures/alice/mcp", upstream.url),
    );
    let mut alice = downstream(&config, "alice");
    let listed = alice.request(1, "tools/list", with_tasks(json!({}))).await;
    let support = |name: &str| {
        let tools = listed["result"]["tools"].as_array().unwrap();
        let tool = tools.iter().find(|tool| tool["name"] == name).unwrap();
        tool["execution"]["taskSupport"].clone()
    };
    assert_eq!(support("slow_compute"), "optional", "{listed}");
    assert_eq!(support("failing_job"), "required", "{listed}");

    // Optional: run as our own task; required: the upstream's own task, followed to its end.
    let calls = [
        (
            "slow_compute",
            json!({ "seconds": 0.3, "label": "r" }),
            "Computed r in 0.3 s",
        ),
        ("failing_job", json!({}), "failing_job fails on purpose"),
    ];
    let mut id = 1;
    for (tool, arguments, expected) in calls {
        id += 1;
        let call = with_tasks(json!({ "name": tool, "arguments": arguments }));
        let created = alice.request(id, "tools/call", call).await;
        assert_eq!(created["result"]["resultType"], "task", "{created}");
        let task = created["result"]["taskId"].as_str().unwrap().to_owned();
        let mut done = Value::Null;
        for _ in 0..200 {
            id += 1;
            let got = alice
                .request(id, "tasks/get", with_tasks(json!({ "taskId": task })))
                .await;
            if got["result"]["status"] == "completed" || got["result"]["status"] == "failed" {
                done = got["result"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = done["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains(expected), "{tool}: {done}");
    }
    alice.close().await;
    upstream.stop().await;
}

#[tokio::test]
async fn subscriptions_reach_the_upstream_and_its_standalone_stream_reaches_the_session() {
    let (mut upstream, url) = python_upstream("").await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &url);
    let mut alice = downstream(&config, "alice");
    let init = alice.initialize("2025-06-18", json!({})).await;
    assert_eq!(
        init["result"]["capabilities"]["resources"]["subscribe"], true,
        "{init}"
    );
    let greeting = json!({"uri": "fixture://greeting"});
    let subscribed = alice.request(1, "resources/subscribe", greeting).await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    let asked = call(&mut alice, 2, "asked", json!({})).await;
    assert_eq!(text(&asked), r#"[["subscribe", "fixture://greeting"]]"#);
    // The update is related to no request: the upstream sends it on its standalone stream.
    let touched = call(&mut alice, 3, "touch", json!({"uri": "fixture://greeting"})).await;
    assert_eq!(text(&touched), "touched");
    let updated = "notifications/resources/updated";
    let mut seen = std::mem::take(&mut alice.seen).into_iter();
    let updated = match seen.find(|message| message["method"] == updated) {
        Some(message) => message,
        None => loop {
            let message = alice.next().await;
            if message["method"] == updated {
                break message;
            }
        },
    };
    assert_eq!(updated["params"]["uri"], "fixture://greeting", "{updated}");
    alice.close().await;
    upstream.kill().await.unwrap();
}

#[tokio::test]
async fn an_upstream_that_speaks_only_2026_is_spoken_to_statelessly_for_every_caller() {
    let (mut upstream, url) = python_upstream("modern-only").await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &url);
    let mut alice = downstream(&config, "alice");
    // A 2025 caller: its session is ours; each of its requests reaches the upstream alone.
    let init = alice.initialize("2025-06-18", json!({})).await;
    assert!(
        init["result"]["capabilities"].get("tools").is_some(),
        "{init}"
    );
    let tools = alice.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"))
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"whoami"), "{tools}");
    let said = call(&mut alice, 2, "whoami", json!({})).await;
    let said: Value = serde_json::from_str(text(&said)).unwrap();
    assert_eq!(said["token"], "upstream's own");
    let read = alice
        .request(3, "resources/read", json!({"uri": "fixture://greeting"}))
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "hello from the fixture",
        "{read}"
    );
    // A 2026-07-28 caller, with its own `_meta`.
    let modern = alice
        .request(
            4,
            "tools/call",
            json!({"name": "whoami", "arguments": {}, "_meta": common::modern_meta()}),
        )
        .await;
    let modern: Value = serde_json::from_str(text(&modern)).unwrap();
    assert_eq!(modern["token"], "upstream's own");
    alice.close().await;
    upstream.kill().await.unwrap();
}
