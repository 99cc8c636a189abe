//! Per-user bounds and state across the nodes of a cluster, through the real binary: three
//! `serve` nodes on one Redis. A user's session cap and running calls hold over the nodes
//! (each admits its share of `http.max_sessions_per_user` and `runtime.max_in_flight_per_user`),
//! and a user's server store (`simple-tools-server`)
//! is the same on every node, bounded by `runtime.max_store_bytes_per_user` over all of them,
//! and outlives the node it was written through.
//!
//! Each test has its own Redis database of the machines' Redis (11 and 10), and users unique
//! to the run.

mod common;

use std::time::Duration;

use common::{modern_meta, Served};
use serde_json::{json, Value};

const SHARED_KEYS: &str = "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Three nodes on Redis database `db`, each with `env` besides the cluster's settings.
async fn three_nodes(db: u8, env: &[(&str, &str)]) -> Vec<Served> {
    let redis = format!("redis://127.0.0.1:6379/{db}");
    let run = run_id();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let id = format!("{name}-{run}");
        let mut all = vec![
            ("GUMCP__CLUSTER__REDIS_URL", redis.as_str()),
            ("GUMCP__CLUSTER__NODE_ID", id.as_str()),
            ("GUMCP__CLUSTER__SHARED_KEYS", SHARED_KEYS),
        ];
        all.extend_from_slice(env);
        nodes.push(common::serve(None, &all).await);
    }
    let client = common::http_client();
    for node in &nodes {
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
            if seen == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, 3, "{} sees every member", node.url);
    }
    nodes
}

/// Opens a 2025 Streamable session of `user` on `base`: its id, or the refusal's status and
/// text.
async fn open_session(
    client: &reqwest::Client,
    base: &str,
    user: &str,
) -> Result<String, (u16, String)> {
    let response = client
        .post(format!("{base}/conformance-fixtures/{user}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": { "name": "bounds-test", "version": "1" }
                }
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    match response.headers().get("mcp-session-id") {
        Some(id) => Ok(id.to_str().unwrap().to_owned()),
        None => Err((response.status().as_u16(), response.text().await.unwrap())),
    }
}

/// A 2026-07-28 `tools/call` of the conformance fixtures by `user` on `base`: the answer.
async fn fixture_call(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    tool: &str,
    arguments: Value,
) -> Value {
    common::stateless_call(
        client,
        &format!("{base}/conformance-fixtures/{user}/mcp"),
        tool,
        arguments,
        modern_meta(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// Waits until `served`'s gauge of the fixtures' running calls reads `count`.
async fn running_calls(served: &Served, count: u32) {
    let client = common::http_client();
    let series = "gumcp_in_flight_requests{server=\"conformance-fixtures\"}";
    let mut seen = None;
    for _ in 0..200 {
        let text = client
            .get(&served.metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen = text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok());
        if seen == Some(f64::from(count)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} is {seen:?}, not {count}");
}

#[tokio::test]
async fn a_users_session_cap_and_running_calls_hold_over_the_nodes() {
    let nodes = three_nodes(
        11,
        &[
            ("GUMCP__HTTP__MAX_SESSIONS_PER_USER", "6"),
            ("GUMCP__RUNTIME__MAX_IN_FLIGHT_PER_USER", "6"),
        ],
    )
    .await;
    let client = common::http_client();
    let (alice, bob) = (format!("alice{}", run_id()), format!("bob{}", run_id()));

    // Six in all: two on each node, the share of each of the three.
    let mut held = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            held.push(open_session(&client, &node.url, &alice).await.unwrap());
        }
    }
    for node in &nodes {
        let (status, text) = open_session(&client, &node.url, &alice).await.unwrap_err();
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("limit of 2 sessions on this node"), "{text}");
    }
    assert!(
        open_session(&client, &nodes[0].url, &bob).await.is_ok(),
        "other users keep their own cap"
    );

    // A session of node b closed through node a frees a seat on node b.
    let closed = client
        .delete(format!("{}/conformance-fixtures/{alice}/mcp", nodes[0].url))
        .header("mcp-session-id", &held[2])
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    assert!(open_session(&client, &nodes[1].url, &alice).await.is_ok());
    assert!(open_session(&client, &nodes[1].url, &alice).await.is_err());

    // Running calls: two at once on node c, its share of six; the others still have theirs.
    let carol = format!("carol{}", run_id());
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (client, base, user) = (client.clone(), nodes[2].url.clone(), carol.clone());
            tokio::spawn(async move {
                fixture_call(&client, &base, &user, "test_slow", json!({ "ms": 60_000 })).await
            })
        })
        .collect();
    running_calls(&nodes[2], 2).await;
    let refused = fixture_call(
        &client,
        &nodes[2].url,
        &carol,
        "test_simple_text",
        json!({}),
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("2 at once on this node"), "{refused}");
    let served = fixture_call(
        &client,
        &nodes[0].url,
        &carol,
        "test_simple_text",
        json!({}),
    )
    .await;
    assert_eq!(served["result"]["isError"], false, "{served}");
    for call in slow {
        call.abort();
    }
}

/// A 2026-07-28 call of a `simple-tools-server` tool by `user` on `base`: the tool's text and
/// whether it is an error.
async fn store_call(base: &str, user: &str, tool: &str, arguments: Value) -> (String, bool) {
    let client = common::http_client();
    let answer: Value = common::stateless_call(
        &client,
        &format!("{base}/simple-tools-server/{user}/mcp"),
        tool,
        arguments,
        modern_meta(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned();
    (text, answer["result"]["isError"] == true)
}

#[tokio::test]
async fn a_users_store_is_the_same_and_bounded_on_every_node_and_outlives_a_node() {
    let mut nodes = three_nodes(10, &[("GUMCP__RUNTIME__MAX_STORE_BYTES_PER_USER", "1024")]).await;
    let (alice, bob) = (format!("alice{}", run_id()), format!("bob{}", run_id()));
    let big = "x".repeat(1000);

    let (text, failed) = store_call(
        &nodes[0].url,
        &alice,
        "store-data",
        json!({ "key": "k1", "value": big }),
    )
    .await;
    assert!(!failed, "{text}");
    let (text, _) = store_call(
        &nodes[1].url,
        &alice,
        "retrieve-data",
        json!({ "key": "k1" }),
    )
    .await;
    assert_eq!(text, format!("Value for 'k1': {big}"));

    // The bound counts what every node stored.
    let (text, failed) = store_call(
        &nodes[2].url,
        &alice,
        "store-data",
        json!({ "key": "k2", "value": "y".repeat(100) }),
    )
    .await;
    assert!(failed, "{text}");
    assert!(
        text.starts_with("Not stored: the store for this user is full (1002 of 1024 bytes"),
        "{text}"
    );
    let (text, failed) = store_call(
        &nodes[2].url,
        &alice,
        "store-data",
        json!({ "key": "k2", "value": "y".repeat(20) }),
    )
    .await;
    assert!(!failed, "{text}");

    let (text, _) = store_call(&nodes[1].url, &bob, "list-data", json!({})).await;
    assert_eq!(text, "No data stored", "another user's store is their own");

    // The node that stored k1 is gone; the data is not.
    nodes.remove(0).stop().await;
    let (text, _) = store_call(&nodes[0].url, &alice, "list-data", json!({})).await;
    assert_eq!(
        text,
        format!("Stored data:\n- k1: {big}\n- k2: {}", "y".repeat(20))
    );
}
