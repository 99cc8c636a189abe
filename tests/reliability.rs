//! Fault isolation and fair shares through the real binary: a server that keeps panicking is
//! paused (not restarted in a tight loop) while other users keep working; one user past their
//! share of running calls is refused while another is served; a session past its in-flight
//! limit is refused while it keeps answering pings. Each bound shows in the metrics.

mod common;

use std::time::{Duration, Instant};

use common::{modern_meta, stateless_call, StdioClient, WAIT};
use serde_json::{json, Value};

/// A 2026-07-28 stateless `tools/call` of conformance-fixtures as `user`; the JSON-RPC answer.
async fn call(client: &reqwest::Client, base: &str, user: &str, tool: &str, args: Value) -> Value {
    let url = format!("{base}/conformance-fixtures/{user}/mcp");
    stateless_call(client, &url, tool, args, modern_meta())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The value of the sample of `metric` whose labels include every one of `labels`, or 0.
async fn metric(client: &reqwest::Client, metrics_url: &str, metric: &str, labels: &[&str]) -> f64 {
    let text = client
        .get(metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(metric) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_server_that_keeps_panicking_is_paused_and_other_users_are_not() {
    let served = common::serve(None, &[("GUMCP__RUNTIME__MAX_RESTARTS_PER_MINUTE", "1")]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = &served.url;

    let first = call(&client, base, "alice", "test_panic", json!({})).await;
    assert_eq!(first["error"]["code"], -32603, "{first}");
    assert!(first["error"]["message"]
        .as_str()
        .unwrap()
        .contains("restarted"));
    let working = call(&client, base, "alice", "test_simple_text", json!({})).await;
    assert_eq!(
        working["result"]["isError"], false,
        "restarted once: {working}"
    );

    let second = call(&client, base, "alice", "test_panic", json!({})).await;
    assert_eq!(second["error"]["code"], -32603, "{second}");
    let paused = call(&client, base, "alice", "test_simple_text", json!({})).await;
    let message = paused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("keeps failing") && message.contains("max_restarts_per_minute"),
        "a second panic within the minute pauses the server: {paused}"
    );

    let other = call(&client, base, "bob", "test_simple_text", json!({})).await;
    assert_eq!(
        other["result"]["isError"], false,
        "bob is unaffected: {other}"
    );

    let metrics = &served.metrics_url;
    let restarts = "gumcp_server_restarts_total";
    let label = "server=\"conformance-fixtures\"";
    assert_eq!(
        metric(&client, metrics, restarts, &[label, "restarted"]).await,
        1.0
    );
    assert_eq!(
        metric(&client, metrics, restarts, &[label, "paused"]).await,
        1.0
    );
    let refused = metric(
        &client,
        metrics,
        "gumcp_rejections_total",
        &["server_failing"],
    )
    .await;
    assert_eq!(refused, 1.0);
}

#[tokio::test]
async fn a_user_past_their_share_is_refused_while_others_are_served() {
    let served = common::serve(None, &[("GUMCP__RUNTIME__MAX_IN_FLIGHT_PER_USER", "2")]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = served.url.clone();

    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                call(&client, &base, "alice", "test_slow", json!({ "ms": 3000 })).await
            })
        })
        .collect();
    let gauge = "gumcp_in_flight_requests";
    let started = Instant::now();
    while metric(&client, &served.metrics_url, gauge, &[]).await < 2.0 {
        assert!(started.elapsed() < WAIT, "the slow calls never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = call(&client, &base, "alice", "test_simple_text", json!({})).await;
    assert_eq!(refused["error"]["code"], -32000, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_in_flight_per_user"), "{message}");
    let other = call(&client, &base, "bob", "test_simple_text", json!({})).await;
    assert_eq!(other["result"]["isError"], false, "bob is served: {other}");

    for finished in slow {
        let answer = finished.await.unwrap();
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let again = call(&client, &base, "alice", "test_simple_text", json!({})).await;
    assert_eq!(
        again["result"]["isError"], false,
        "places come back: {again}"
    );
    let counted = metric(
        &client,
        &served.metrics_url,
        "gumcp_rejections_total",
        &["in_flight_per_user"],
    )
    .await;
    assert_eq!(counted, 1.0);
    assert_eq!(metric(&client, &served.metrics_url, gauge, &[]).await, 0.0);
}

#[tokio::test]
async fn a_session_past_its_in_flight_limit_is_refused_and_still_answers_pings() {
    let mut client = StdioClient::start_with_env(
        &["stdio", "--server", "conformance-fixtures"],
        &[("GUMCP__PROTOCOL__MAX_IN_FLIGHT_PER_SESSION", "2")],
    );
    client.initialize("2025-11-25", json!({})).await;
    for id in [1, 2] {
        client
            .send(json!({
                "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": "test_slow", "arguments": { "ms": 2000 } }
            }))
            .await;
    }
    let third = client
        .request(
            3,
            "tools/call",
            json!({ "name": "test_simple_text", "arguments": {} }),
        )
        .await;
    assert_eq!(third["error"]["code"], -32000, "{third}");
    assert!(third["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_in_flight_per_session"));
    let ping = client.request(4, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    for id in [1, 2] {
        let done = client.wait_for_id(&json!(id)).await;
        assert_eq!(done["result"]["isError"], false, "{done}");
    }
    let after = client
        .request(
            5,
            "tools/call",
            json!({ "name": "test_simple_text", "arguments": {} }),
        )
        .await;
    assert_eq!(after["result"]["isError"], false, "{after}");
}
