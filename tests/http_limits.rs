//! Bounds over real HTTP: a client that opens an SSE stream and stops reading it is
//! disconnected once its outbound buffer is full — its session ends and the gauge comes back —
//! instead of the server buffering without end.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::WAIT;
use serde_json::json;

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_its_session_freed() {
    let served = common::serve(
        None,
        &[
            ("GUMCP__PROTOCOL__OUTBOUND_BUFFER", "8"),
            ("GUMCP__HTTP__KEEP_ALIVE_SECS", "3600"),
        ],
    )
    .await;
    let (base, metrics) = (served.url.clone(), served.metrics_url.clone());
    let address = base.trim_start_matches("http://").to_owned();

    // Open the stream and read only up to the endpoint event, then never again.
    let stalled = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET /conformance-fixtures/stalled HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("session_id=") || !seen.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&seen).into_owned();
        let endpoint = text
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap()
            .trim()
            .to_owned();
        (stream, endpoint)
    })
    .await
    .unwrap();
    let (_stream, endpoint) = stalled;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let post = |body: serde_json::Value| {
        client
            .post(format!("{base}{endpoint}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let init = post(json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    }))
    .await
    .unwrap();
    assert_eq!(init.status(), 202);

    // Far more answers than the socket buffers and the outbound buffer hold together.
    let mut refused = false;
    for id in 1..=4000 {
        let status = post(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" }))
            .await
            .unwrap()
            .status();
        if status == 404 {
            refused = true;
            break;
        }
        assert_eq!(status, 202);
    }
    assert!(refused, "the stalled session was never ended");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("gumcp_active_connections{server=\"conformance-fixtures\"} 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gauge did not come back to 0:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sessions_past_a_users_cap_get_503_with_retry_after() {
    let served = common::serve(None, &[("GUMCP__HTTP__MAX_SESSIONS_PER_USER", "2")]).await;
    let base = served.url.clone();
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let open = |user: &str| {
        client
            .get(format!("{base}/simple-tools-server/{user}"))
            .send()
    };
    let held = [open("carol").await.unwrap(), open("carol").await.unwrap()];
    assert!(held.iter().all(|stream| stream.status() == 200));
    let refused = open("carol").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("limit of 2 sessions"));
    // Another user is not affected, and a closed stream frees its place.
    assert_eq!(open("dave").await.unwrap().status(), 200);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = open("carol").await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed streams never freed their places"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
