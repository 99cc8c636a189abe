//! The real binary over stdio: lifecycle of both eras, bad input, batches, and exit on EOF.

mod common;

use common::{modern_meta, StdioClient};
use serde_json::{json, Value};

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("an error reply: {reply}"))
}

#[tokio::test]
async fn initialize_negotiates_every_legacy_version() {
    for (asked, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let mut client = StdioClient::server("simple-tools-server");
        let reply = client.initialize(asked, json!({})).await;
        assert_eq!(reply["result"]["protocolVersion"], answered, "{reply}");
        assert_eq!(reply["result"]["serverInfo"]["name"], "simple-tools-server");
        assert!(reply["result"]["capabilities"]["tools"].is_object());
        assert!(reply["result"].get("resultType").is_none(), "{reply}");
        let (status, _) = client.close().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn a_request_before_initialize_is_an_error_and_the_connection_lives_on() {
    let mut client = StdioClient::server("simple-tools-server");
    let early = client.request(1, "tools/list", json!({})).await;
    assert_eq!(error_code(&early), -32600);
    assert!(early["error"]["message"]
        .as_str()
        .unwrap()
        .contains("initialize"));
    let ping = client.request(2, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    let init = client.initialize("2025-11-25", json!({})).await;
    assert!(init.get("result").is_some());
    let again = client
        .request(
            3,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
        )
        .await;
    assert_eq!(error_code(&again), -32600);
    let tools = client.request(4, "tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bad_input_gets_the_right_error_and_the_process_keeps_serving() {
    let mut client = StdioClient::start_with_env(
        &["stdio", "--server", "simple-tools-server"],
        &[("GUMCP__PROTOCOL__MAX_MESSAGE_BYTES", "2048")],
    );
    client.initialize("2025-11-25", json!({})).await;

    client.send_raw("{not json").await;
    let parse = client.next().await;
    assert_eq!(error_code(&parse), -32700);
    assert_eq!(parse["id"], Value::Null);

    client
        .send_raw(r#"{"jsonrpc":"1.0","id":5,"method":"ping"}"#)
        .await;
    let wrong = client.next().await;
    assert_eq!(error_code(&wrong), -32600);
    assert_eq!(wrong["id"], 5);

    let unknown = client.request(6, "no/such/method", json!({})).await;
    assert_eq!(error_code(&unknown), -32601);

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    client.send_raw(&huge).await;
    let too_large = client.next().await;
    assert_eq!(error_code(&too_large), -32600);
    assert!(too_large["error"]["message"]
        .as_str()
        .unwrap()
        .contains("2048"));

    let no_tool = client
        .request(
            8,
            "tools/call",
            json!({"name": "no-such-tool", "arguments": {}}),
        )
        .await;
    assert_eq!(error_code(&no_tool), -32602);
    assert!(no_tool["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no-such-tool"));

    let bad_args = client
        .request(
            9,
            "tools/call",
            json!({"name": "store-data", "arguments": {"key": "k"}}),
        )
        .await;
    assert_eq!(bad_args["result"]["isError"], true);
    let text = bad_args["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("value"), "{text}");

    let ping = client.request(10, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    let (status, _) = client.close().await;
    assert!(status.success());
}

#[tokio::test]
async fn batches_are_answered_as_arrays_only_in_2025_03_26() {
    let mut client = StdioClient::server("simple-tools-server");
    client.initialize("2025-03-26", json!({})).await;
    client
        .send(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "store-data", "arguments": {"key": "a", "value": "1"}}},
            {"jsonrpc": "2.0", "id": 3, "method": "nope"}
        ]))
        .await;
    let replies = client.next().await;
    let replies = replies.as_array().expect("a batch reply is an array");
    assert_eq!(replies.len(), 3);
    let by_id = |id: i64| replies.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id(1)["result"], json!({}));
    assert_eq!(
        by_id(2)["result"]["content"][0]["text"],
        "Stored 'a' with value: 1"
    );
    assert_eq!(error_code(&by_id(3)), -32601);

    let mut newer = StdioClient::server("simple-tools-server");
    newer.initialize("2025-11-25", json!({})).await;
    newer
        .send(json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]))
        .await;
    let refused = newer.next().await;
    assert_eq!(error_code(&refused), -32600);
}

#[tokio::test]
async fn modern_requests_need_no_handshake_and_are_checked() {
    let mut client = StdioClient::server("simple-tools-server");
    let discover = client
        .request(1, "server/discover", json!({"_meta": modern_meta()}))
        .await;
    let result = &discover["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"][0], "2026-07-28");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "simple-tools-server"
    );
    assert!(result["ttlMs"].as_u64().is_some());
    assert_eq!(result["cacheScope"], "public");

    let call = client
        .request(
            2,
            "tools/call",
            json!({"_meta": modern_meta(), "name": "store-data",
                   "arguments": {"key": "k", "value": "v"}}),
        )
        .await;
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(
        call["result"]["content"][0]["text"],
        "Stored 'k' with value: v"
    );

    let mut no_caps = modern_meta();
    no_caps
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let missing = client
        .request(3, "tools/list", json!({"_meta": no_caps}))
        .await;
    assert_eq!(error_code(&missing), -32602);

    let mut old = modern_meta();
    old["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let unsupported = client.request(4, "tools/list", json!({"_meta": old})).await;
    assert_eq!(error_code(&unsupported), -32022);
    assert_eq!(unsupported["error"]["data"]["requested"], "1900-01-01");

    let bare_discover = client.request(5, "server/discover", json!({})).await;
    assert_eq!(error_code(&bare_discover), -32602);

    let ping = client
        .request(6, "ping", json!({"_meta": modern_meta()}))
        .await;
    assert_eq!(error_code(&ping), -32601);

    let mut bad_level = modern_meta();
    bad_level["io.modelcontextprotocol/logLevel"] = json!("shouting");
    let level = client
        .request(7, "tools/list", json!({"_meta": bad_level}))
        .await;
    assert_eq!(error_code(&level), -32602);
}

#[tokio::test]
async fn requests_in_flight_at_end_of_input_are_answered_before_exit() {
    let mut client = StdioClient::server("simple-tools-server");
    client.initialize("2025-11-25", json!({})).await;
    for id in 1..=20 {
        client
            .send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": "list-data", "arguments": {}}}))
            .await;
    }
    let (status, rest) = client.close().await;
    assert!(status.success());
    let answered: Vec<i64> = rest.iter().filter_map(|m| m["id"].as_i64()).collect();
    assert_eq!(answered.len(), 20, "{rest:?}");
}

#[tokio::test]
async fn user_data_is_per_process_user_and_logs_stay_off_stdout() {
    let mut client = StdioClient::start(&[
        "stdio",
        "--server",
        "simple-tools-server",
        "--user-id",
        "alice",
    ]);
    client.initialize("2025-11-25", json!({})).await;
    let listed = client
        .request(
            1,
            "tools/call",
            json!({"name": "list-data", "arguments": {}}),
        )
        .await;
    assert_eq!(listed["result"]["content"][0]["text"], "No data stored");
    let (status, rest) = client.close().await;
    assert!(status.success());
    assert!(rest.is_empty(), "nothing but replies on stdout: {rest:?}");
}

#[tokio::test]
async fn a_cancelled_request_gets_no_reply_and_the_session_goes_on() {
    let mut client = StdioClient::server("conformance-fixtures");
    client.initialize("2025-11-25", json!({})).await;
    client
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "test_slow", "arguments": {"ms": 30000},
                                "_meta": {"progressToken": "slow"}}}))
        .await;
    let first_progress = client.next().await;
    assert_eq!(first_progress["method"], "notifications/progress");
    client
        .notify(
            "notifications/cancelled",
            json!({"requestId": 1, "reason": "test"}),
        )
        .await;
    let ping = client.request(2, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    assert!(!client
        .seen
        .iter()
        .any(|m| m.get("id") == Some(&json!(1)) && m.get("method").is_none()));
    let (status, rest) = client.close().await;
    assert!(status.success());
    let replies_to_cancelled: Vec<&Value> = rest
        .iter()
        .filter(|m| m.get("id") == Some(&json!(1)))
        .collect();
    assert!(replies_to_cancelled.is_empty(), "{replies_to_cancelled:?}");
}

#[tokio::test]
async fn a_legacy_tool_can_ask_the_client_and_gets_its_answer() {
    let mut client = StdioClient::server("conformance-fixtures");
    client
        .initialize("2025-11-25", json!({"sampling": {}}))
        .await;
    client
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "test_sampling", "arguments": {"prompt": "2+2?"}}}))
        .await;
    let asked = client.next().await;
    assert_eq!(asked["method"], "sampling/createMessage");
    assert_eq!(asked["params"]["messages"][0]["content"]["text"], "2+2?");
    assert_eq!(asked["params"]["maxTokens"], 100);
    client
        .send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "role": "assistant", "content": {"type": "text", "text": "4"}, "model": "m"}}))
        .await;
    let reply = client.wait_for_id(&json!(1)).await;
    assert_eq!(reply["result"]["content"][0]["text"], "LLM response: 4");

    let refused = client
        .request(
            2,
            "tools/call",
            json!({"name": "test_elicitation", "arguments": {"message": "hi"}}),
        )
        .await;
    assert_eq!(
        error_code(&refused),
        -32021,
        "elicitation was not declared: {refused}"
    );
}

#[tokio::test]
async fn a_modern_multi_round_call_carries_sealed_state() {
    let mut client = StdioClient::server("conformance-fixtures");
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let call = |id: i64, extra: Value| {
        let mut params = json!({"_meta": meta.clone(), "name": "test_input_required_result_multi_round", "arguments": {}});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        (id, params)
    };
    let (id, params) = call(1, json!({}));
    let round1 = client.request(id, "tools/call", params).await;
    assert_eq!(round1["result"]["resultType"], "input_required");
    assert!(round1["result"]["inputRequests"]["step1"].is_object());
    let state1 = round1["result"]["requestState"].clone();

    let (id, params) = call(
        2,
        json!({
            "inputResponses": {"step1": {"action": "accept", "content": {"name": "Ada"}}},
            "requestState": state1
        }),
    );
    let round2 = client.request(id, "tools/call", params).await;
    assert!(
        round2["result"]["inputRequests"]["step2"].is_object(),
        "{round2}"
    );
    let state2 = round2["result"]["requestState"].clone();

    let (id, params) = call(
        3,
        json!({
            "inputResponses": {"step2": {"action": "accept", "content": {"color": "green"}}},
            "requestState": state2
        }),
    );
    let done = client.request(id, "tools/call", params).await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Hello, Ada! Your favorite color is green."
    );

    let (id, params) = call(4, json!({"requestState": "forged"}));
    let forged = client.request(id, "tools/call", params).await;
    assert_eq!(error_code(&forged), -32602);
}

#[tokio::test]
async fn resource_updates_reach_subscribers_only() {
    let mut client = StdioClient::server("conformance-fixtures");
    client.initialize("2025-11-25", json!({})).await;
    let trigger = json!({"name": "test_trigger_resource_update", "arguments": {}});
    client
        .request(
            1,
            "resources/subscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
    client.request(2, "tools/call", trigger.clone()).await;
    client.request(3, "ping", json!({})).await;
    let updates = |seen: &[Value]| {
        seen.iter()
            .filter(|m| m["method"] == "notifications/resources/updated")
            .count()
    };
    assert_eq!(updates(&client.seen), 1, "{:?}", client.seen);
    assert_eq!(client.seen[0]["params"]["uri"], "test://watched-resource");
    client
        .request(
            4,
            "resources/unsubscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
    client.request(5, "tools/call", trigger).await;
    client.request(6, "ping", json!({})).await;
    assert_eq!(updates(&client.seen), 1, "no update after unsubscribing");
}

#[tokio::test]
async fn a_modern_listen_is_acknowledged_tagged_and_cancelled() {
    let mut client = StdioClient::server("conformance-fixtures");
    client
        .send(
            json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
                     "params": {"_meta": modern_meta(), "notifications": {
                         "toolsListChanged": true,
                         "resourceSubscriptions": ["test://watched-resource"]}}}),
        )
        .await;
    let ack = client.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);

    let trigger = |name: &str| json!({"_meta": modern_meta(), "name": name, "arguments": {}});
    client
        .request(1, "tools/call", trigger("test_trigger_resource_update"))
        .await;
    client
        .request(2, "tools/call", trigger("test_trigger_tool_change"))
        .await;
    client
        .request(3, "tools/list", json!({"_meta": modern_meta()}))
        .await;
    let tagged: Vec<&Value> = client
        .seen
        .iter()
        .filter(|m| m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1")
        .collect();
    let methods: Vec<&str> = tagged.iter().filter_map(|m| m["method"].as_str()).collect();
    assert!(
        methods.contains(&"notifications/resources/updated"),
        "{methods:?}"
    );
    assert!(
        methods.contains(&"notifications/tools/list_changed"),
        "{methods:?}"
    );

    client
        .notify("notifications/cancelled", json!({"requestId": "listen-1"}))
        .await;
    client.seen.clear();
    client
        .request(4, "tools/call", trigger("test_trigger_tool_change"))
        .await;
    client
        .request(5, "tools/list", json!({"_meta": modern_meta()}))
        .await;
    assert!(
        client.seen.is_empty(),
        "nothing after the listen was cancelled: {:?}",
        client.seen
    );
}

#[tokio::test]
async fn lists_are_paginated_with_opaque_cursors() {
    let mut client = StdioClient::start_with_env(
        &["stdio", "--server", "conformance-fixtures"],
        &[("GUMCP__PROTOCOL__PAGE_SIZE", "7")],
    );
    client.initialize("2025-11-25", json!({})).await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for id in 1..=20 {
        let params = if cursor.is_null() {
            json!({})
        } else {
            json!({"cursor": cursor})
        };
        let page = client.request(id, "tools/list", params).await;
        let tools = page["result"]["tools"].as_array().unwrap();
        assert!(tools.len() <= 7);
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        cursor = page["result"]
            .get("nextCursor")
            .cloned()
            .unwrap_or(Value::Null);
        if cursor.is_null() {
            break;
        }
    }
    assert!(names.len() > 7 && names.contains(&"json_schema_2020_12_tool".to_owned()));
    let bad = client
        .request(99, "tools/list", json!({"cursor": "not-a-cursor"}))
        .await;
    assert_eq!(error_code(&bad), -32602);
}

/// Pipes are served through the runtime's epoll; stdin and stdout that are plain files (a
/// script's redirections) go through tokio's stdio instead, and are served just the same.
#[test]
fn stdin_and_stdout_may_be_files() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in.jsonl");
    let output = root.path().join("out.jsonl");
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params":
            {"protocolVersion": "2025-11-25", "capabilities": {},
             "clientInfo": {"name": "files", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    ];
    let lines: Vec<String> = requests.iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let status = std::process::Command::new(common::binary())
        .args(["stdio", "--server", "simple-tools-server"])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let written = std::fs::read_to_string(&output).unwrap();
    let replies: Vec<Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(replies.len(), 2, "{written}");
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(replies[0]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(replies[1], json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

/// Node's child_process (and so the TypeScript SDK's stdio client) hands a child UNIX socket
/// pairs, not pipes, as stdin and stdout: they are served too, and end of input still ends it.
#[test]
fn stdin_and_stdout_may_be_a_socket_pair() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let theirs_out = theirs.try_clone().unwrap();
    let mut child = std::process::Command::new(common::binary())
        .args(["stdio", "--server", "simple-tools-server"])
        .stdin(OwnedFd::from(theirs))
        .stdout(OwnedFd::from(theirs_out))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    ours.set_read_timeout(Some(common::WAIT)).unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params":
        {"protocolVersion": "2025-11-25", "capabilities": {},
         "clientInfo": {"name": "socket", "version": "1"}}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    for message in [initialize, initialized, ping] {
        writeln!(ours, "{message}").unwrap();
    }
    let mut replies = BufReader::new(ours.try_clone().unwrap()).lines();
    let first: Value = serde_json::from_str(&replies.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["result"]["protocolVersion"], "2025-11-25", "{first}");
    let second: Value = serde_json::from_str(&replies.next().unwrap().unwrap()).unwrap();
    assert_eq!(second, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
