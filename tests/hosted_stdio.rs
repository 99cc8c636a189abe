//! Hosted `kind = "stdio"` servers through the real binary: a small server written with the
//! official Python SDK (tests/fixtures/hosted_echo_server.py) run as one child per user with
//! that user's credential, relayed tools, progress, logs, questions and cancellation, and the
//! bounds: a killed child, a child that never answers `initialize`, a flooding child, idle
//! stop, and the caps on live children.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{http_client, modern_meta, stateless_call, StdioClient, WAIT};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The venv's Python with the official SDK, installed once by scripts/python-env.sh.
fn python() -> PathBuf {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let status = std::process::Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/python-env.sh"))
            .status()
            .expect("bash runs");
        assert!(status.success(), "scripts/python-env.sh failed");
    });
    Path::new(ROOT).join(".tools/venv/bin/python")
}

/// A project in `root`: hosted servers `names` running the fixture (with `extra_env` in
/// their `[stdio] env`), API keys stored for alice, bob and carol, and a config file with
/// `extra_config` appended.
fn project(root: &Path, names: &[&str], extra_env: &str, extra_config: &str) -> PathBuf {
    let fixture = Path::new(ROOT).join("tests/fixtures/hosted_echo_server.py");
    let marker = root.join("cancelled-marker");
    for name in names {
        let dir = root.join("servers").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("server.toml"),
            format!(
                r#"name = "{name}"
description = "The hosted echo fixture"
version = "1.0.0"
kind = "stdio"
[auth]
kind = "api_key"
service = "echo"
[stdio]
command = "{python}"
args = ["{fixture}", "--token-arg", "{{credential}}"]
credential_env = "HOSTED_TOKEN"
env = {{ HOSTED_MARKER = "{marker}"{extra_env} }}
"#,
                python = python().display(),
                fixture = fixture.display(),
                marker = marker.display(),
            ),
        )
        .unwrap();
    }
    let creds = root.join("local_auth/credentials/echo");
    std::fs::create_dir_all(&creds).unwrap();
    for user in ["alice", "bob", "carol"] {
        std::fs::write(
            creds.join(format!("{user}_credentials.json")),
            json!({ "api_key": format!("{user}-secret") }).to_string(),
        )
        .unwrap();
    }
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!("[servers]\ndir = \"servers\"\n[auth]\nlocal_dir = \"local_auth\"\n{extra_config}"),
    )
    .unwrap();
    config
}

fn stdio_client(config: &Path, env: &[(&str, &str)]) -> StdioClient {
    let config = config.to_str().unwrap();
    let args = [
        "--config",
        config,
        "stdio",
        "--server",
        "echo",
        "--user-id",
        "alice",
    ];
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    StdioClient::spawn(command)
}

/// A legacy-session `tools/call` without arguments: the whole reply.
async fn call(client: &mut StdioClient, id: i64, tool: &str) -> Value {
    let params = json!({ "name": tool, "arguments": {} });
    client.request(id, "tools/call", params).await
}

/// What `whoami` says, over stdio.
async fn whoami(client: &mut StdioClient, id: i64) -> Value {
    let reply = call(client, id, "whoami").await;
    let text = reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami answered: {reply}"));
    serde_json::from_str(text).unwrap()
}

/// Reads messages until one with `method` (keeping the others in `seen`).
async fn wait_for_method(client: &mut StdioClient, method: &str) -> Value {
    loop {
        let message = client.next().await;
        if message["method"] == method {
            return message;
        }
        client.seen.push(message);
    }
}

/// A 2026-07-28 call of `tool` on `server` for `user` over HTTP: the JSON-RPC answer.
async fn http_call(url: &str, server: &str, user: &str, tool: &str) -> Value {
    let endpoint = format!("{url}/{server}/{user}/mcp");
    let response = stateless_call(&http_client(), &endpoint, tool, json!({}), modern_meta())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn process_exists(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn two_users_get_two_children_with_their_own_credentials_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let servers = root.path().join("servers");
    let env = [
        ("GUMCP_SECRET_OF_THE_HOST", "hidden"),
        ("GUMCP__SERVERS__DIR", servers.to_str().unwrap()),
    ];
    let served = common::serve(Some(&config), &env).await;
    let mut seen = Vec::new();
    for user in ["alice", "bob", "alice"] {
        let answer = http_call(&served.url, "echo", user, "whoami").await;
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        let said: Value = serde_json::from_str(text).unwrap();
        assert_eq!(said["token"], format!("{user}-secret"));
        assert_eq!(
            said["args"],
            json!(["--token-arg", format!("{user}-secret")])
        );
        assert_eq!(said["leaked"], Value::Null, "the host's environment leaked");
        let folder = root.path().join("servers/echo").canonicalize().unwrap();
        assert_eq!(said["cwd"], folder.to_str().unwrap());
        seen.push(said["pid"].as_u64().unwrap());
    }
    assert_ne!(seen[0], seen[1], "alice and bob share a process");
    assert_eq!(
        seen[0], seen[2],
        "alice's second call started another process"
    );
    let metrics = common::http_client()
        .get(&served.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gumcp_live_actors{kind=\"hosted_child\"} 2"),
        "{metrics}"
    );
    served.stop().await;
}

#[tokio::test]
async fn children_are_capped_in_all_and_per_user_with_clear_refusals() {
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &["echo", "echo2"],
        "",
        "[hosted]\nmax_children = 2\nmax_children_per_user = 1\n",
    );
    let servers = root.path().join("servers");
    let env = [("GUMCP__SERVERS__DIR", servers.to_str().unwrap())];
    let served = common::serve(Some(&config), &env).await;
    let first = http_call(&served.url, "echo", "alice", "whoami").await;
    assert!(first.get("result").is_some(), "{first}");
    let refused = http_call(&served.url, "echo2", "alice", "whoami").await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("max_children_per_user"), "{refused}");
    let other = http_call(&served.url, "echo2", "bob", "whoami").await;
    assert!(other.get("result").is_some(), "{other}");
    let refused = http_call(&served.url, "echo", "carol", "whoami").await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("hosted.max_children"), "{refused}");
    served.stop().await;
}

#[tokio::test]
async fn a_child_killed_mid_call_fails_that_call_and_the_next_call_gets_a_new_child() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[]);
    client.initialize("2025-06-18", json!({})).await;
    let first = whoami(&mut client, 1).await["pid"].as_u64().unwrap();
    client
        .send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "slow", "arguments": {"seconds": 30}, "_meta": {"progressToken": "p"}
            }}),
        )
        .await;
    let progress = wait_for_method(&mut client, "notifications/progress").await;
    assert_eq!(progress["params"]["progressToken"], "p");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let failed = client.wait_for_id(&json!(2)).await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exited") && message.contains("next call starts it again"),
        "{failed}"
    );
    let second = whoami(&mut client, 3).await["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    client.close().await;
}

#[tokio::test]
async fn a_child_that_never_answers_initialize_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &["echo"],
        ", HOSTED_FIXTURE_MODE = \"silent\"",
        "",
    );
    let mut client = stdio_client(&config, &[("GUMCP__HOSTED__INITIALIZE_TIMEOUT_SECS", "1")]);
    let reply = client.initialize("2025-06-18", json!({})).await;
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not answer initialize within 1 s"),
        "{reply}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_flooding_child_is_cut_off_and_the_next_call_works() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(
        &config,
        &[
            ("GUMCP__HOSTED__MAX_LINES_PER_SEC", "200"),
            ("GUMCP__HOSTED__MAX_LINE_BYTES", "65536"),
        ],
    );
    client.initialize("2025-06-18", json!({})).await;
    let lines = call(&mut client, 1, "flood_lines").await;
    let message = lines["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("hosted.max_lines_per_sec"), "{lines}");
    let bytes = call(&mut client, 2, "flood_bytes").await;
    let message = bytes["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("hosted.max_line_bytes"), "{bytes}");
    assert!(whoami(&mut client, 3).await["pid"].as_u64().is_some());
    client.close().await;
}

#[tokio::test]
async fn progress_logs_and_cancellation_travel_between_client_and_child() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[]);
    client.initialize("2025-06-18", json!({})).await;
    client
        .send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "slow", "arguments": {"seconds": 30}, "_meta": {"progressToken": 7}
            }}),
        )
        .await;
    let progress = wait_for_method(&mut client, "notifications/progress").await;
    assert_eq!(progress["params"]["progressToken"], 7);
    assert_eq!(progress["params"]["message"], "halfway");
    let log = wait_for_method(&mut client, "notifications/message").await;
    assert_eq!(log["params"]["data"], "slow started");
    client
        .notify("notifications/cancelled", json!({"requestId": 1}))
        .await;
    let marker = root.path().join("cancelled-marker");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !marker.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancellation never reached the child"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
}

#[tokio::test]
async fn sampling_and_elicitation_from_the_child_are_answered_by_the_client() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[]);
    client
        .initialize("2025-06-18", json!({"sampling": {}, "elicitation": {}}))
        .await;
    client
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "ask_user", "arguments": {}}}))
        .await;
    let asked = wait_for_method(&mut client, "elicitation/create").await;
    assert_eq!(asked["params"]["message"], "What is your answer?");
    client
        .send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "action": "accept", "content": {"answer": "42"}
        }}))
        .await;
    let reply = client.wait_for_id(&json!(1)).await;
    assert_eq!(common::text_of(&reply["result"]), "user said 42", "{reply}");
    client
        .send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                     "params": {"name": "ask_model", "arguments": {}}}))
        .await;
    let asked = wait_for_method(&mut client, "sampling/createMessage").await;
    client
        .send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "role": "assistant", "content": {"type": "text", "text": "pong"}, "model": "m"
        }}))
        .await;
    let reply = client.wait_for_id(&json!(2)).await;
    assert_eq!(
        common::text_of(&reply["result"]),
        "model said pong",
        "{reply}"
    );
    client.close().await;
}

#[tokio::test]
async fn resources_and_prompts_are_relayed_and_an_idle_child_is_stopped() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[("GUMCP__RUNTIME__SERVER_IDLE_TTL_SECS", "1")]);
    let init = client.initialize("2025-06-18", json!({})).await;
    let capabilities = &init["result"]["capabilities"];
    assert!(capabilities.get("resources").is_some(), "{init}");
    assert!(capabilities.get("prompts").is_some(), "{init}");
    let listed = client.request(1, "resources/list", json!({})).await;
    assert_eq!(
        listed["result"]["resources"][0]["uri"],
        "fixture://greeting"
    );
    let read = client
        .request(2, "resources/read", json!({"uri": "fixture://greeting"}))
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "hello from the fixture"
    );
    let prompt = client
        .request(
            3,
            "prompts/get",
            json!({"name": "greet", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "Say hello to Ada"
    );
    let pid = whoami(&mut client, 4).await["pid"].as_u64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while process_exists(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle child was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.close().await;
}

#[tokio::test]
async fn a_refreshed_token_starts_a_fresh_child_with_the_new_one() {
    // alice's token expires 8 s from now (time for the first call to use it); once it has,
    // the next call's credentials are refreshed, and the child with the old token replaced.
    let provider = wiremock::MockServer::start().await;
    common::mount_google_refresh(&provider, "repo").await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let manifest = root.path().join("servers/echo/server.toml");
    let oauth = format!(
        "[auth]\nkind = \"oauth2\"\nauthorize_url = \"{url}/authorize\"\ntoken_url = \"{url}/token\"",
        url = provider.uri()
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("[auth]\nkind = \"api_key\"", &oauth),
    )
    .unwrap();
    common::google_app(root.path(), "echo", &provider);
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 8;
    std::fs::write(
        root.path()
            .join("local_auth/credentials/echo/alice_credentials.json"),
        json!({ "access_token": "old", "refresh_token": "r1", "expires_at": expires_at })
            .to_string(),
    )
    .unwrap();
    let mut client = stdio_client(&config, &[("GUMCP__AUTH__REFRESH_MARGIN_SECS", "0")]);
    client.initialize("2025-06-18", json!({})).await;
    let before = whoami(&mut client, 1).await;
    assert_eq!(before["token"], "old");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut id = 2;
    let after = loop {
        let said = whoami(&mut client, id).await;
        if said["token"] != "old" {
            break said;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token was never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        id += 1;
    };
    assert_eq!(after["token"], "ya29.fresh");
    assert_ne!(before["pid"], after["pid"], "the child kept the old token");
    client.close().await;
}

#[tokio::test]
async fn the_servers_command_shows_the_hosted_kind_and_what_it_runs() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let config = config.to_str().unwrap();
    let listed = tokio::process::Command::new(common::binary())
        .args(["--config", config, "servers"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let row = text
        .lines()
        .find(|line| line.starts_with("echo "))
        .unwrap_or_else(|| panic!("{text}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[..3], ["echo", "stdio", "api_key"], "{row}");
    let verbose = tokio::process::Command::new(common::binary())
        .args(["--config", config, "servers", "--verbose"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&verbose.stdout);
    assert!(text.contains("== echo (stdio, auth: api_key;"), "{text}");
    assert!(text.contains("for each user over stdio"), "{text}");
    assert!(!text.contains("{credential}"), "{text}");
}

/// Our own `conformance-fixtures` as a hosted child (`gumcp-actors stdio`), served to alice.
fn hosted_fixtures(root: &Path) -> StdioClient {
    let dir = root.join("servers/hosted-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "name = \"hosted-fixtures\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"stdio\"\n\
             [stdio]\ncommand = \"{}\"\nargs = [\"stdio\", \"--server\", \"conformance-fixtures\"]\n",
            common::binary().display()
        ),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(["stdio", "--server", "hosted-fixtures", "--user-id", "alice"])
        .env("GUMCP__SERVERS__DIR", root.join("servers"))
        .env("RUST_LOG", "warn");
    StdioClient::spawn(command)
}

#[tokio::test]
async fn a_2026_multi_round_call_reaches_a_child_that_speaks_2026_and_its_state_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let mut client = hosted_fixtures(root.path());
    let mut meta = modern_meta();
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
    let round1 = client.request(1, "tools/call", params(json!({}))).await;
    assert_eq!(round1["result"]["resultType"], "input_required", "{round1}");
    assert!(round1["result"]["inputRequests"]["step1"].is_object());
    let round2 = client
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
    let done = client
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
    let tampered = client
        .request(
            4,
            "tools/call",
            params(json!({
                "inputResponses": {"step2": {"action": "accept", "content": {"color": "red"}}},
                "requestState": "not-a-sealed-state"
            })),
        )
        .await;
    assert_eq!(tampered["error"]["code"], -32602, "{tampered}");
    client.close().await;
}

#[tokio::test]
async fn a_child_runs_under_the_configured_limits() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(
        &config,
        &[
            ("GUMCP__HOSTED__MAX_OPEN_FILES", "128"),
            ("GUMCP__HOSTED__MAX_ADDRESS_SPACE_MIB", "4096"),
            ("GUMCP__HOSTED__MAX_CPU_SECS", "120"),
        ],
    );
    client.initialize("2025-06-18", json!({})).await;
    let said = whoami(&mut client, 1).await;
    assert_eq!(
        said["limits"],
        json!({"open_files": 128, "address_space": 4096u64 << 20, "cpu_secs": 120}),
        "{said}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_childs_stderr_is_logged_with_the_server_and_a_user_digest() {
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        &["echo"],
        "",
        "[logging]\nhash_user_ids = true\n",
    );
    let servers = root.path().join("servers");
    let env = [
        ("GUMCP__SERVERS__DIR", servers.to_str().unwrap()),
        ("RUST_LOG", "warn,gumcp_actors::hosted=info"),
    ];
    let served = common::serve(Some(&config), &env).await;
    let answer = http_call(&served.url, "echo", "alice", "whoami").await;
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    let pid = serde_json::from_str::<Value>(text).unwrap()["pid"].clone();
    let logs = served.stop().await;
    let line = logs
        .lines()
        .find(|line| line.contains(&format!("hosted-echo starting as pid {pid}")))
        .unwrap_or_else(|| panic!("the child's stderr is not in the log:\n{logs}"));
    assert!(line.contains("server=echo"), "{line}");
    assert!(line.contains("user=u:"), "{line}");
    assert!(line.contains("with token [redacted]"), "{line}");
    assert!(
        !logs.contains("alice-secret"),
        "the credential reached the log:\n{logs}"
    );
    assert!(
        !logs.contains("alice"),
        "the user id reached the log:\n{logs}"
    );
}

#[tokio::test]
async fn a_child_that_keeps_failing_is_paused_past_the_restart_budget() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(
        &config,
        &[
            ("GUMCP__RUNTIME__MAX_RESTARTS_PER_MINUTE", "1"),
            ("GUMCP__HOSTED__MAX_LINES_PER_SEC", "200"),
        ],
    );
    client.initialize("2025-06-18", json!({})).await;
    let first = call(&mut client, 1, "flood_lines").await;
    assert!(first.get("error").is_some(), "{first}");
    assert!(
        whoami(&mut client, 2).await["pid"].is_u64(),
        "one restart is allowed"
    );
    let second = call(&mut client, 3, "flood_lines").await;
    assert!(second.get("error").is_some(), "{second}");
    let paused = call(&mut client, 4, "whoami").await;
    let message = paused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("keeps failing") && message.contains("runtime.max_restarts_per_minute"),
        "{paused}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_child_cannot_pile_up_questions_for_the_client() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[]);
    client
        .initialize("2025-06-18", json!({"sampling": {}}))
        .await;
    client
        .send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "ask_model_many", "arguments": {"count": 40, "refusals": 24}
            }}),
        )
        .await;
    // The client answers nothing: 16 questions wait for it, the other 24 are refused at once.
    let reply = client.wait_for_id(&json!(1)).await;
    assert_eq!(common::text_of(&reply["result"]), "24 refused", "{reply}");
    let asked = client
        .seen
        .iter()
        .filter(|message| message["method"] == "sampling/createMessage")
        .count();
    assert_eq!(asked, 16);
    client.close().await;
}

#[tokio::test]
async fn the_example_hosted_servers_load_with_their_kinds_and_readmes() {
    let examples = Path::new(ROOT).join("examples/hosted-servers");
    let listed = tokio::process::Command::new(common::binary())
        .args(["servers", "--verbose"])
        .env("GUMCP__SERVERS__DIR", &examples)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let logs = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{logs}");
    assert!(
        !logs.contains("hosted-servers"),
        "a manifest was refused: {logs}"
    );
    for (name, kind) in [
        ("everything", "stdio"),
        ("github-mcp", "stdio"),
        ("deepwiki", "mcp"),
    ] {
        assert!(
            text.contains(&format!("== {name} ({kind}, ")),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!("# {name} (hosted")),
            "{name}'s README: {text}"
        );
    }
}

/// The `value` of the hidden input named `name` in an HTML page.
fn form_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn a_missing_account_is_answered_with_the_connect_link_and_the_child_starts_once_connected() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let servers = root.path().join("servers");
    let env = [("GUMCP__SERVERS__DIR", servers.to_str().unwrap())];
    let served = common::serve(Some(&config), &env).await;
    let client = http_client();
    let endpoint = format!("{}/echo/dave/mcp", served.url);
    // No URL elicitation: the tool's error names the link, as for a server that reads its
    // credentials inside the tool.
    let plain = http_call(&served.url, "echo", "dave", "whoami").await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    let text = common::text_of(&plain["result"]);
    assert!(
        text.contains("no echo account is connected for user dave"),
        "{text}"
    );
    assert!(text.contains("connect one at http://"), "{text}");
    // With it: an InputRequiredResult carrying the URL elicitation.
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {"url": {}}});
    let asked: Value = stateless_call(&client, &endpoint, "whoami", json!({}), meta)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let request = &asked["result"]["inputRequests"]["connect_account"];
    assert_eq!(request["params"]["mode"], "url", "{asked}");
    let link = request["params"]["url"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/connect/echo?t=", served.url)),
        "{link}"
    );
    // Over stdio there is no page to link to: the tool's error names the `auth` command.
    let mut session = common::StdioClient::start_with_env(
        &[
            "--config",
            config.to_str().unwrap(),
            "stdio",
            "--server",
            "echo",
            "--user-id",
            "dave",
        ],
        &[
            ("RUST_LOG", "warn"),
            ("GUMCP__SERVERS__DIR", servers.to_str().unwrap()),
        ],
    );
    let init = session.initialize("2025-11-25", json!({})).await;
    assert!(init.get("result").is_some(), "{init}");
    let refused = call(&mut session, 1, "whoami").await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = common::text_of(&refused["result"]);
    assert!(
        text.contains("gumcp-actors auth --server echo --user-id dave"),
        "{text}"
    );
    // Connect dave's account on the page the link opens.
    let page = client
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_field(&page, "csrf");
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let saved = client
        .post(format!("{}/connect/echo", served.url))
        .form(&[
            ("t", token.as_str()),
            ("csrf", &csrf),
            ("api_key", "dave-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let answer = http_call(&served.url, "echo", "dave", "whoami").await;
    let said: Value = serde_json::from_str(common::text_of(&answer["result"])).unwrap();
    assert_eq!(said["token"], "dave-secret", "{answer}");
    session.close().await;
    served.stop().await;
}

/// What the fixture says the host passed on to it (`asked`), over stdio.
async fn asked_over_stdio(client: &mut StdioClient, id: i64) -> Value {
    let reply = call(client, id, "asked").await;
    serde_json::from_str(common::text_of(&reply["result"])).unwrap_or_else(|_| panic!("{reply}"))
}

#[tokio::test]
async fn subscriptions_and_the_log_level_reach_the_child_and_its_updates_reach_the_session() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let mut client = stdio_client(&config, &[]);
    let init = client.initialize("2025-06-18", json!({})).await;
    assert_eq!(
        init["result"]["capabilities"]["resources"]["subscribe"], true,
        "{init}"
    );
    let greeting = json!({"uri": "fixture://greeting"});
    let subscribed = client
        .request(1, "resources/subscribe", greeting.clone())
        .await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    let level = client
        .request(2, "logging/setLevel", json!({"level": "debug"}))
        .await;
    assert_eq!(level["result"], json!({}), "{level}");
    assert_eq!(
        asked_over_stdio(&mut client, 3).await,
        json!([["subscribe", "fixture://greeting"], ["setLevel", "debug"]])
    );
    let params = json!({"name": "touch", "arguments": {"uri": "fixture://greeting"}});
    client
        .send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params}))
        .await;
    let updated = wait_for_method(&mut client, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], "fixture://greeting", "{updated}");
    let unsubscribed = client.request(5, "resources/unsubscribe", greeting).await;
    assert_eq!(unsubscribed["result"], json!({}), "{unsubscribed}");
    let asked = asked_over_stdio(&mut client, 6).await;
    assert_eq!(
        asked[2],
        json!(["unsubscribe", "fixture://greeting"]),
        "{asked}"
    );
    client.close().await;
}

/// A legacy Streamable HTTP session with `serve`.
struct HttpSession {
    client: reqwest::Client,
    url: String,
    id: String,
}

/// The JSON-RPC answer in a Streamable HTTP body (JSON, or the SSE event with an id).
fn answer_of(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in {body}"))
}

impl HttpSession {
    async fn open(url: &str) -> HttpSession {
        let client = http_client();
        let initialized = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "tests", "version": "1"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let id = initialized.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = initialized.text().await;
        let session = HttpSession {
            client,
            url: url.to_owned(),
            id,
        };
        session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        session
    }

    async fn post(&self, body: Value) -> String {
        self.client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn request(&self, id: i64, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        answer_of(&self.post(body).await)
    }

    async fn asked(&self, id: i64) -> Value {
        let params = json!({"name": "asked", "arguments": {}});
        let reply = self.request(id, "tools/call", params).await;
        serde_json::from_str(common::text_of(&reply["result"]))
            .unwrap_or_else(|_| panic!("{reply}"))
    }

    async fn close(self) {
        let closed = self
            .client
            .delete(&self.url)
            .header("mcp-session-id", &self.id)
            .send()
            .await
            .unwrap();
        assert!(closed.status().is_success(), "{}", closed.status());
    }
}

#[tokio::test]
async fn a_principals_sessions_share_one_upstream_subscription_and_the_most_verbose_level() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let servers = root.path().join("servers");
    let env = [("GUMCP__SERVERS__DIR", servers.to_str().unwrap())];
    let served = common::serve(Some(&config), &env).await;
    let url = format!("{}/echo/alice/mcp", served.url);
    let (a, b) = (HttpSession::open(&url).await, HttpSession::open(&url).await);
    let greeting = json!({"uri": "fixture://greeting"});
    for (session, id) in [(&a, 1), (&b, 2)] {
        let reply = session
            .request(id, "resources/subscribe", greeting.clone())
            .await;
        assert_eq!(reply["result"], json!({}), "{reply}");
    }
    a.request(3, "resources/subscribe", json!({"uri": "fixture://other"}))
        .await;
    a.request(4, "logging/setLevel", json!({"level": "error"}))
        .await;
    b.request(5, "logging/setLevel", json!({"level": "debug"}))
        .await;
    // A third session that asks for less changes nothing upstream.
    let c = HttpSession::open(&url).await;
    c.request(6, "logging/setLevel", json!({"level": "warning"}))
        .await;
    let before = json!([
        ["subscribe", "fixture://greeting"],
        ["subscribe", "fixture://other"],
        ["setLevel", "error"],
        ["setLevel", "debug"]
    ]);
    assert_eq!(a.asked(7).await, before);
    // b still wants the greeting; once b leaves, nobody does, and the level goes back to the
    // most verbose one left.
    a.request(8, "resources/unsubscribe", greeting).await;
    assert_eq!(a.asked(9).await, before);
    b.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut id = 10;
    let after = loop {
        let asked = a.asked(id).await;
        if asked.as_array().unwrap().len() >= 6 {
            break asked;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "b's leaving never reached the child: {asked}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        id += 1;
    };
    assert_eq!(
        after[4],
        json!(["unsubscribe", "fixture://greeting"]),
        "{after}"
    );
    assert_eq!(after[5], json!(["setLevel", "warning"]), "{after}");
    a.close().await;
    c.close().await;
    served.stop().await;
}

/// Reads SSE events from a streamed answer until one carries a message with `method`.
async fn next_event_with(
    response: &mut reqwest::Response,
    pending: &mut String,
    method: &str,
) -> Value {
    loop {
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            let message = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok());
            if let Some(message) = message.filter(|message| message["method"] == method) {
                return message;
            }
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {method} in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before {method}"));
        pending.push_str(&String::from_utf8_lossy(&chunk).replace('\r', ""));
    }
}

#[tokio::test]
async fn a_2026_listens_resource_subscriptions_reach_the_child_until_it_ends() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), &["echo"], "", "");
    let servers = root.path().join("servers");
    let env = [("GUMCP__SERVERS__DIR", servers.to_str().unwrap())];
    let served = common::serve(Some(&config), &env).await;
    let client = http_client();
    let endpoint = format!("{}/echo/alice/mcp", served.url);
    let listen = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "notifications": {"resourceSubscriptions": ["fixture://greeting"]},
        "_meta": modern_meta()
    }});
    let mut stream = client
        .post(&endpoint)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(listen.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut pending = String::new();
    let acknowledged = next_event_with(
        &mut stream,
        &mut pending,
        "notifications/subscriptions/acknowledged",
    )
    .await;
    assert_eq!(
        acknowledged["params"]["notifications"]["resourceSubscriptions"],
        json!(["fixture://greeting"]),
        "{acknowledged}"
    );
    // The listen's subscription reaches the child (passed on after the acknowledgement).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let asked = http_call(&served.url, "echo", "alice", "asked").await;
        if common::text_of(&asked["result"]).contains("subscribe") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listen's subscription never reached the child"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let touch = json!({"uri": "fixture://greeting"});
    let touched = stateless_call(&client, &endpoint, "touch", touch, modern_meta())
        .send()
        .await
        .unwrap();
    assert_eq!(touched.status(), 200);
    let updated =
        next_event_with(&mut stream, &mut pending, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], "fixture://greeting", "{updated}");
    // The listen ends with its connection: nobody wants the greeting any more.
    drop(stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let asked = http_call(&served.url, "echo", "alice", "asked").await;
        if common::text_of(&asked["result"]).contains("unsubscribe") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ended listen's subscription stayed: {asked}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served.stop().await;
}
