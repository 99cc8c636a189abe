//! Cluster mode (`cluster.redis_url`) through the real binary: three `serve` nodes on one Redis,
//! a session opened on one node and driven through the others (legacy SSE messages and
//! Streamable HTTP 2025 requests are forwarded to the owner), a killed owner's sessions
//! answering 404 elsewhere, and a Redis that goes away and comes back.
//!
//! The shared Redis of the machines (127.0.0.1:6379) is used with a database number of its own
//! (13); the test that stops Redis starts its own `redis-server` on a free port.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{modern_meta, stateless_call, Served, WAIT};
use serde_json::{json, Value};

const SERVER: &str = "conformance-fixtures";

/// `cluster.shared_keys` of every node: a new key that seals and an old one still accepted.
const SHARED_KEYS: &str = "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
                           old:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Starts a node of the cluster at `redis`, called `id`.
async fn node(redis: &str, id: &str) -> Served {
    common::serve(
        None,
        &[
            ("GUMCP__CLUSTER__REDIS_URL", redis),
            ("GUMCP__CLUSTER__NODE_ID", id),
            ("GUMCP__CLUSTER__REDIS_TIMEOUT_MS", "300"),
            ("GUMCP__CLUSTER__SHARED_KEYS", SHARED_KEYS),
        ],
    )
    .await
}

/// Three nodes on database 13 of the machines' Redis, with ids unique to this run.
async fn three_nodes(redis: &str) -> Vec<Served> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(node(redis, &format!("{name}-{run}")).await);
    }
    nodes
}

/// Waits until every node's `/health_check` lists `count` members.
async fn members_seen(nodes: &[&Served], count: usize) {
    let client = common::http_client();
    for node in nodes {
        let mut seen = 0;
        for _ in 0..100 {
            let health: Value = client
                .get(format!("{}/health_check", node.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seen = health["cluster"]["members"].as_array().map_or(0, Vec::len);
            if seen == count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, count, "{} sees every member", node.url);
    }
}

fn call(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "test_simple_text", "arguments": {} }
    })
}

fn initialize(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": { "name": "cluster-test", "version": "1" }
        }
    })
}

/// Opens a legacy SSE stream on `base`; the stream and its message endpoint.
async fn open_sse(client: &reqwest::Client, base: &str) -> (reqwest::Response, String) {
    let mut response = client
        .get(format!("{base}/{SERVER}/alice"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("session_id=") || !seen.ends_with("\r\n\r\n") {
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let endpoint = seen
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap()
        .trim()
        .to_owned();
    (response, endpoint)
}

/// The next `event: message` of an SSE stream, as JSON.
async fn next_message(stream: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find("\r\n\r\n") {
            let event: String = buffer.drain(..end + 4).collect();
            if event.contains("event: message") {
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).unwrap();
                }
            }
            continue;
        }
        let chunk = tokio::time::timeout(WAIT, stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A POST to a 2025 Streamable session on `base`.
fn streamable_post(
    client: &reqwest::Client,
    base: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = client
        .post(format!("{base}/{SERVER}/alice/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request
}

/// The JSON-RPC answer of a Streamable POST, whether it came as JSON or as an SSE stream.
async fn answer_of(response: reqwest::Response) -> Value {
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|kind| kind.to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !sse {
        return serde_json::from_str(&text).unwrap();
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str::<Value>(data).unwrap())
        .find(|message| message.get("id").is_some() && message.get("method").is_none())
        .unwrap()
}

#[tokio::test]
async fn a_session_on_one_node_is_driven_through_every_node() {
    let nodes = three_nodes("redis://127.0.0.1:6379/13").await;
    members_seen(&nodes.iter().collect::<Vec<_>>(), 3).await;
    let client = common::http_client();

    // Legacy SSE: the stream on node a, every message POSTed to another node.
    let (mut stream, endpoint) = open_sse(&client, &nodes[0].url).await;
    let mut buffer = String::new();
    let post = |base: &str, body: Value| {
        client
            .post(format!("{base}{endpoint}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let accepted = post(&nodes[1].url, initialize("2024-11-05")).await.unwrap();
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.text().await.unwrap(), "Accepted");
    assert_eq!(
        next_message(&mut stream, &mut buffer).await["result"]["protocolVersion"],
        "2024-11-05"
    );
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(
        post(&nodes[2].url, initialized).await.unwrap().status(),
        202
    );
    for (id, node) in [(1, &nodes[1]), (2, &nodes[2]), (3, &nodes[0])] {
        assert_eq!(post(&node.url, call(id)).await.unwrap().status(), 202);
        let answer = next_message(&mut stream, &mut buffer).await;
        assert_eq!(answer["id"], id);
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let metrics = client
        .get(&nodes[1].metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "gumcp_cluster_node{node=\"b-",
        "gumcp_cluster_redis_up{node=\"b-",
        "gumcp_cluster_forwarded_requests_total{outcome=\"forwarded\"}",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(metrics.contains("} 3\n") && metrics.contains("gumcp_cluster_members"));
    // A made-up session id with a live node's tag is the SDK's 404 wherever it lands.
    let real = endpoint.rsplit("session_id=").next().unwrap();
    let made_up = format!(
        "{}{}",
        &real[..8],
        &uuid::Uuid::new_v4().simple().to_string()[8..]
    );
    let unknown = endpoint.replace(real, &made_up);
    let lost = client
        .post(format!("{}{unknown}", nodes[1].url))
        .body(call(9).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(lost.status(), 404);
    assert_eq!(lost.text().await.unwrap(), "Could not find session");

    // Streamable HTTP 2025: initialize on node b, then each request on another node.
    let opened = streamable_post(&client, &nodes[1].url, None, &initialize("2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    answer_of(opened).await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let noted = streamable_post(&client, &nodes[2].url, Some(&session), &initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(noted.status(), 202);
    for (id, node) in [(1, &nodes[0]), (2, &nodes[2]), (3, &nodes[1])] {
        let answer = streamable_post(&client, &node.url, Some(&session), &call(id))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer = answer_of(answer).await;
        assert_eq!(answer["id"], id);
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    // The standalone stream opens through node c.
    let listen = client
        .get(format!("{}/{SERVER}/alice/mcp", nodes[2].url))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(listen.status(), 200);
    drop(listen);
    // DELETE through node a ends it on node b; it is then unknown everywhere.
    let ended = client
        .delete(format!("{}/{SERVER}/alice/mcp", nodes[0].url))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    for node in &nodes {
        let gone = streamable_post(&client, &node.url, Some(&session), &call(4))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
    }

    // The owner of the legacy session killed: its messages answer 404 on the others, at once.
    let mut nodes = nodes;
    let owner = nodes.remove(0);
    drop(stream);
    owner.stop().await;
    for node in &nodes {
        let lost = tokio::time::timeout(WAIT, post(&node.url, call(5)))
            .await
            .expect("no request hangs on a dead owner")
            .unwrap();
        assert_eq!(lost.status(), 404);
    }
    members_seen(&nodes.iter().collect::<Vec<_>>(), 2).await;
    for node in nodes {
        node.stop().await;
    }
}

/// 2026-07-28 requests are served where they land: a multi-round call whose `requestState`
/// was sealed on one node continues on the others, and a node without the shared keys refuses
/// to start.
#[tokio::test]
async fn a_sealed_request_state_opens_on_every_node() {
    let nodes = three_nodes("redis://127.0.0.1:6379/13").await;
    let client = common::http_client();
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let round = |node: usize, arguments: Value| {
        let mut body: Value = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": "test_input_required_result_multi_round",
                "arguments": {}, "_meta": meta.clone()
            }
        });
        for (key, value) in arguments.as_object().unwrap() {
            body["params"][key] = value.clone();
        }
        let request = stateless_call(
            &client,
            &format!("{}/{SERVER}/alice/mcp", nodes[node].url),
            "test_input_required_result_multi_round",
            json!({}),
            meta.clone(),
        )
        .body(body.to_string());
        async move { answer_of(request.send().await.unwrap()).await }
    };
    let first = round(0, json!({})).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let second = round(
        1,
        json!({
            "inputResponses": {"step1": {"action": "accept", "content": {"name": "Ada"}}},
            "requestState": first["result"]["requestState"]
        }),
    )
    .await;
    assert!(
        second["result"]["inputRequests"]["step2"].is_object(),
        "{second}"
    );
    let done = round(
        2,
        json!({
            "inputResponses": {"step2": {"action": "accept", "content": {"color": "green"}}},
            "requestState": second["result"]["requestState"]
        }),
    )
    .await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, Ada! Your favorite color is green.",
        "{done}"
    );
    for node in nodes {
        node.stop().await;
    }

    let refused = tokio::process::Command::new(common::binary())
        .args(["serve", "--port", "0", "--metrics-port", "0"])
        .env("GUMCP__CLUSTER__REDIS_URL", "redis://127.0.0.1:6379/13")
        .env(
            "GUMCP__SERVERS__DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/servers"),
        )
        .stdin(Stdio::null())
        .output();
    let refused = tokio::time::timeout(WAIT, refused).await.unwrap().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cluster.shared_keys"));
}

/// A resource update announced by alice's server instance on one node reaches alice's session
/// subscribed on another node (Redis pub/sub); that other users' channels stay apart is
/// checked in `cluster::events`.
#[tokio::test]
async fn a_users_notifications_reach_their_sessions_on_other_nodes() {
    let nodes = three_nodes("redis://127.0.0.1:6379/13").await;
    let client = common::http_client();
    let (mut stream, endpoint) = open_sse(&client, &nodes[0].url).await;
    let mut buffer = String::new();
    let post = |body: Value| {
        client
            .post(format!("{}{endpoint}", nodes[0].url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    post(initialize("2025-06-18")).await.unwrap();
    next_message(&mut stream, &mut buffer).await;
    post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .await
        .unwrap();
    let subscribe = json!({
        "jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
        "params": { "uri": "test://watched-resource" }
    });
    post(subscribe).await.unwrap();
    assert_eq!(next_message(&mut stream, &mut buffer).await["id"], 1);

    let trigger = |node: usize| {
        stateless_call(
            &client,
            &format!("{}/{SERVER}/alice/mcp", nodes[node].url),
            "test_trigger_resource_update",
            json!({}),
            modern_meta(),
        )
        .send()
    };
    // The nodes' pub/sub subscriptions may still be starting: the trigger is repeated, a
    // bounded number of times.
    let mut update = None;
    for _ in 0..50 {
        assert_eq!(trigger(2).await.unwrap().status(), 200);
        let waited = tokio::time::timeout(
            Duration::from_millis(200),
            next_message(&mut stream, &mut buffer),
        )
        .await;
        if let Ok(message) = waited {
            update = Some(message);
            break;
        }
    }
    let update = update.expect("alice's update reached her session on node a");
    assert_eq!(update["method"], "notifications/resources/updated");
    assert_eq!(update["params"]["uri"], "test://watched-resource");
    drop(stream);
    for node in nodes {
        node.stop().await;
    }
}

/// A `redis-server` of this test's own, on a free port, without persistence.
struct OwnRedis {
    child: tokio::process::Child,
    port: u16,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return OwnRedis { child, port };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {port}");
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("redis-server stops");
    }
}

#[tokio::test]
async fn without_redis_foreign_sessions_get_503_and_everything_recovers() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let redis = OwnRedis::start(port).await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let nodes = three_nodes(&url).await;
    members_seen(&nodes.iter().collect::<Vec<_>>(), 3).await;
    let client = common::http_client();
    let opened = streamable_post(&client, &nodes[0].url, None, &initialize("2025-06-18"))
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    answer_of(opened).await;
    let status_through = |node: usize, id: i64| {
        let request = streamable_post(&client, &nodes[node].url, Some(&session), &call(id));
        async move {
            let answer = tokio::time::timeout(WAIT, request.send())
                .await
                .expect("no request hangs while Redis is away")
                .unwrap();
            (
                answer.status().as_u16(),
                answer
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    assert_eq!(status_through(1, 1).await.0, 200);

    redis.stop().await;
    let mut refused = None;
    for id in 0..100 {
        let (status, retry) = status_through(1, 10 + id).await;
        if status == 503 {
            refused = retry;
            break;
        }
        assert_eq!(
            status, 200,
            "until the view goes stale, the request goes through"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused.as_deref(), Some("1"), "503 with Retry-After");
    // The owner itself keeps serving its session.
    assert_eq!(status_through(0, 200).await.0, 200);

    let redis = OwnRedis::start(port).await;
    let mut recovered = false;
    for id in 0..100 {
        if status_through(2, 300 + id).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "forwarding works again once Redis is back");
    for node in nodes {
        node.stop().await;
    }
    redis.stop().await;
}
