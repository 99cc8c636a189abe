//! Soak and shutdown through the real binary over loopback: ten thousand SSE sessions held at
//! once with calls flowing, then ten thousand connect/disconnect cycles — the connection gauge
//! and the live session actors come back to zero and memory stays within a stated bound; and a
//! SIGTERM with a thousand sessions and calls in flight answers every call that was accepted.

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use futures::{stream, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SERVER: &str = "simple-tools-server";
const FIXTURES: &str = "conformance-fixtures";
/// How much the service's RSS may grow over ten thousand connect/disconnect cycles.
const CYCLE_GROWTH_BOUND_KIB: u64 = 64 * 1024;

/// A legacy SSE stream read as raw bytes (HTTP/1.0, so the body is not chunked).
struct Sse {
    lines: BufReader<TcpStream>,
    endpoint: String,
}

impl Sse {
    async fn open(address: &str, server: &str, user: &str) -> Sse {
        let mut socket = TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET /{server}/{user} HTTP/1.0\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(socket);
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(WAIT, lines.read_line(&mut line))
                .await
                .expect("the endpoint event in time")
                .unwrap();
            assert!(read > 0, "the stream ended before its endpoint event");
            if let Some(endpoint) = line.strip_prefix("data: ") {
                return Sse {
                    lines,
                    endpoint: endpoint.trim().to_owned(),
                };
            }
        }
    }

    /// The next `message` event's data.
    async fn next_message(&mut self) -> Value {
        let mut line = String::new();
        let mut is_message = false;
        loop {
            line.clear();
            let read = tokio::time::timeout(WAIT, self.lines.read_line(&mut line))
                .await
                .expect("a message in time")
                .unwrap();
            assert!(read > 0, "the stream ended before the message");
            if line.starts_with("event: message") {
                is_message = true;
            } else if let Some(data) = line.strip_prefix("data: ") {
                if is_message {
                    return serde_json::from_str(data.trim()).unwrap();
                }
            }
        }
    }
}

async fn post(client: &reqwest::Client, base: &str, endpoint: &str, message: Value) {
    let status = client
        .post(format!("{base}{endpoint}"))
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "soak", "version": "1" } }
    })
}

/// The sum of the samples of `metric` whose line contains `label` (all when empty).
async fn metric(client: &reqwest::Client, metrics_url: &str, metric: &str, label: &str) -> f64 {
    let text = client
        .get(metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(metric) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (bounded) until `metric` reads `wanted`.
async fn settles(
    client: &reqwest::Client,
    metrics_url: &str,
    name: &str,
    label: &str,
    wanted: f64,
) {
    let started = Instant::now();
    loop {
        let now = metric(client, metrics_url, name, label).await;
        if now == wanted {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{name}{{{label}}} stayed at {now}, expected {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// As many sessions as the open-file limits allow, up to `wanted`: the service (which inherits
/// this process's limits, raised here as far as allowed) and this client each hold one
/// descriptor per SSE session.
fn sessions_allowed(wanted: usize) -> usize {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let allowed = usize::try_from(hard.saturating_sub(1024)).unwrap_or(usize::MAX);
    if allowed < wanted {
        eprintln!("open-file limit {hard}: soaking with {allowed} sessions instead of {wanted}");
    }
    wanted.min(allowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sessions_held_with_calls_flowing_then_ten_thousand_cycles() {
    let sessions = sessions_allowed(10_000);
    let served = common::serve(
        None,
        &[
            ("GUMCP__HTTP__MAX_SESSIONS_PER_USER", "20000"),
            ("GUMCP__HTTP__KEEP_ALIVE_SECS", "3600"),
        ],
    )
    .await;
    let pid = served.child.id().unwrap();
    let address = served.url.trim_start_matches("http://").to_owned();
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let (base, metrics_url) = (&served.url, &served.metrics_url);
    let idle_rss = rss_kib(pid);

    let mut held: Vec<Sse> = stream::iter(0..sessions)
        .map(|n| {
            let address = address.clone();
            async move { Sse::open(&address, SERVER, &format!("user{}", n % 100)).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    settles(
        &client,
        metrics_url,
        "gumcp_active_connections",
        SERVER,
        sessions as f64,
    )
    .await;
    let held_rss = rss_kib(pid);
    eprintln!(
        "{sessions} SSE sessions held: RSS {held_rss} KiB ({:.1} KiB per session over idle)",
        (held_rss.saturating_sub(idle_rss)) as f64 / sessions as f64
    );

    // Calls flow on every 20th session while all of them are held.
    let answered: usize = stream::iter(held.iter_mut().step_by(20).enumerate())
        .map(|(n, sse)| {
            let client = client.clone();
            async move {
                post(&client, base, &sse.endpoint, initialize()).await;
                sse.next_message().await;
                let key = format!("k{n}");
                let store = json!({
                    "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": { "name": "store-data", "arguments": { "key": key, "value": "v" } }
                });
                post(&client, base, &sse.endpoint, store).await;
                let answer = sse.next_message().await;
                usize::from(answer["result"]["isError"] == false)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(answered, sessions.div_ceil(20), "every call answered");

    held.clear();
    settles(
        &client,
        metrics_url,
        "gumcp_active_connections",
        SERVER,
        0.0,
    )
    .await;
    settles(&client, metrics_url, "gumcp_live_actors", "session", 0.0).await;
    let before_cycles = rss_kib(pid);

    let cycles = 10_000;
    stream::iter(0..cycles)
        .map(|n| {
            let address = address.clone();
            async move { drop(Sse::open(&address, SERVER, &format!("cycler{}", n % 50)).await) }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    settles(
        &client,
        metrics_url,
        "gumcp_active_connections",
        SERVER,
        0.0,
    )
    .await;
    settles(&client, metrics_url, "gumcp_live_actors", "session", 0.0).await;
    let opened = metric(&client, metrics_url, "gumcp_connection_total", SERVER).await;
    assert_eq!(opened, (sessions + cycles) as f64);
    let after_cycles = rss_kib(pid);
    eprintln!("RSS idle {idle_rss} KiB, before cycles {before_cycles} KiB, after {cycles} cycles {after_cycles} KiB");
    assert!(
        after_cycles.saturating_sub(before_cycles) < CYCLE_GROWTH_BOUND_KIB,
        "RSS grew by {} KiB over {cycles} cycles",
        after_cycles.saturating_sub(before_cycles)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_thousand_sessions_answers_every_accepted_call() {
    let sessions = sessions_allowed(1_000);
    let served = common::serve(
        None,
        &[
            ("GUMCP__HTTP__MAX_SESSIONS_PER_USER", "2000"),
            ("GUMCP__RUNTIME__SHUTDOWN_GRACE_SECS", "10"),
        ],
    )
    .await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = &served.url;
    let mut held: Vec<Sse> = stream::iter(0..sessions)
        .map(|n| {
            let (address, client) = (address.clone(), client.clone());
            async move {
                let mut sse = Sse::open(&address, FIXTURES, &format!("user{}", n % 10)).await;
                post(&client, base, &sse.endpoint, initialize()).await;
                sse.next_message().await;
                sse
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    // Every session has a call in flight that outlasts the signal.
    for sse in &held {
        let call = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "test_slow", "arguments": { "ms": 2000 } }
        });
        post(&client, base, &sse.endpoint, call).await;
    }
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &served.child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let answered: usize = stream::iter(held.iter_mut())
        .map(|sse| async move { usize::from(sse.next_message().await["id"] == 7) })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(answered, sessions, "every accepted call answered");
    let mut child = served.child;
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the service exits within the grace period")
        .unwrap();
    assert!(exit.success(), "{exit}");
    eprintln!(
        "{sessions} sessions: exit {:?} after SIGTERM",
        signalled.elapsed()
    );
}
