//! A client that goes away is noticed over loopback through the real binary — its legacy SSE
//! session ends, its slow 2026-07-28 call is cancelled — as soon as its connection closes, not
//! at the next keep-alive: keep-alives are an hour apart here, and the bound is seconds. What
//! notices is actix-web itself (half-closed connections refused), with no per-OS code: macOS
//! and Windows get the same (compiled for, not run: ARCHITECTURE.md, "Platforms").

mod common;

use std::time::{Duration, Instant};

use common::{modern_meta, WAIT};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How soon a connection must be let go of once its client has closed it.
const NOTICED_WITHIN: Duration = Duration::from_secs(5);

/// Keep-alives too far apart to be what ends a stream within [`NOTICED_WITHIN`].
const NO_KEEP_ALIVE: (&str, &str) = ("GUMCP__HTTP__KEEP_ALIVE_SECS", "3600");

/// Reads lines of `stream` until one starts with `prefix`; that line.
async fn line_starting(stream: &mut BufReader<TcpStream>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(WAIT, stream.read_line(&mut line))
            .await
            .expect("the stream sends in time")
            .expect("the stream is readable");
        assert!(
            read > 0,
            "the stream ended before a line starting {prefix:?}"
        );
        if line.starts_with(prefix) {
            return line;
        }
    }
}

/// Opens `request` (a whole HTTP/1.1 request) on a new connection to `address`.
async fn send(address: &str, request: &str) -> BufReader<TcpStream> {
    let mut socket = TcpStream::connect(address)
        .await
        .expect("the service accepts");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    BufReader::new(socket)
}

/// Waits until the metrics at `url` show `series` with `value`; how long that took.
async fn settles(url: &str, series: &str, value: f64) -> Duration {
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let started = Instant::now();
    loop {
        let text = client
            .get(url)
            .send()
            .await
            .expect("the metrics answer")
            .text()
            .await
            .expect("the metrics are text");
        let now = text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok());
        if now == Some(value) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < NOTICED_WITHIN,
            "{series} is {now:?}, not {value}, {NOTICED_WITHIN:?} on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_closed_legacy_sse_stream_ends_its_session_at_once() {
    let served = common::serve(None, &[NO_KEEP_ALIVE]).await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let connections = "gumcp_active_connections{server=\"simple-tools-server\"}";
    let sessions = "gumcp_live_actors{kind=\"session\"}";
    let mut stream = send(
        &address,
        &format!(
            "GET /simple-tools-server/alice HTTP/1.1\r\nHost: {address}\r\n\
             Accept: text/event-stream\r\n\r\n"
        ),
    )
    .await;
    line_starting(&mut stream, "data: ").await;
    settles(&served.metrics_url, connections, 1.0).await;

    drop(stream);
    let took = settles(&served.metrics_url, connections, 0.0).await;
    settles(&served.metrics_url, sessions, 0.0).await;
    eprintln!("a closed SSE stream was let go of {took:?} after its client left");
}

#[tokio::test]
async fn a_client_leaving_a_slow_stateless_call_cancels_the_call() {
    let served = common::serve(None, &[NO_KEEP_ALIVE]).await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let in_flight = "gumcp_in_flight_requests{server=\"conformance-fixtures\"}";
    // No progress token: the call sends nothing until its answer, a minute on.
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "test_slow", "arguments": { "ms": 60_000 }, "_meta": modern_meta() }
    })
    .to_string();
    let stream = send(
        &address,
        &format!(
            "POST /conformance-fixtures/alice/mcp HTTP/1.1\r\nHost: {address}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
             Mcp-Name: test_slow\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    settles(&served.metrics_url, in_flight, 1.0).await;

    drop(stream);
    let took = settles(&served.metrics_url, in_flight, 0.0).await;
    eprintln!("a left call was cancelled {took:?} after its client left");
}
