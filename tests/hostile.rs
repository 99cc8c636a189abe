//! Hostile input over every transport (stdio, legacy SSE, Streamable HTTP sessions, 2026-07-28
//! stateless POSTs): broken and deeply nested JSON, huge and invalid ids, unknown and borrowed
//! session ids, header injection and path traversal in the URL. Each gets a clear refusal, never
//! a crash, and the connection or the service keeps serving afterwards.

mod common;

use common::{modern_meta, StdioClient, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER: &str = "conformance-fixtures";

fn simple_call(id: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "test_simple_text", "arguments": {}, "_meta": modern_meta() }
    })
}

/// The bodies every transport must refuse, with the JSON-RPC code each gets.
fn hostile_bodies() -> Vec<(&'static str, String, i64)> {
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(100_000);
    let huge_integer = simple_call(json!(1)).to_string().replacen(
        "\"id\":1",
        &format!("\"id\":{}", "9".repeat(30)),
        1,
    );
    vec![
        (
            "truncated JSON",
            "{\"jsonrpc\":\"2.0\",\"id\":1,".to_owned(),
            -32700,
        ),
        ("deeply nested array", deep_array, -32700),
        ("deeply nested object", deep_object, -32700),
        ("not an object", "42".to_owned(), -32600),
        ("an id too large", huge_integer, -32600),
        ("a null id", simple_call(Value::Null).to_string(), -32600),
        (
            "a fractional id",
            simple_call(json!(1.5)).to_string(),
            -32600,
        ),
    ]
}

/// A huge string id is answered under the very same id.
fn huge_string_id() -> String {
    "x".repeat(200_000)
}

#[tokio::test]
async fn stdio_refuses_each_hostile_line_and_keeps_serving() {
    let mut client = StdioClient::start(&["stdio", "--server", SERVER]);
    for (what, body, code) in hostile_bodies() {
        client.send_raw(&body).await;
        let refusal = client.next().await;
        assert_eq!(refusal["error"]["code"], code, "{what}: {refusal}");
    }
    let id = huge_string_id();
    client.send(simple_call(json!(id))).await;
    let answer = client.wait_for_id(&json!(id)).await;
    assert!(
        answer["id"] == json!(id),
        "the huge id comes back as it was"
    );
    assert_eq!(answer["result"]["isError"], false);
}

#[tokio::test]
async fn stateless_posts_refuse_each_hostile_body_and_keep_serving() {
    let served = common::serve(None, &[]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let url = format!("{}/{SERVER}/alice/mcp", served.url);
    let post = |body: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "test_simple_text")
            .body(body)
            .send()
    };
    for (what, body, code) in hostile_bodies() {
        let response = post(body).await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let refusal: Value = response.json().await.unwrap();
        assert_eq!(refusal["error"]["code"], code, "{what}: {refusal}");
    }
    let id = huge_string_id();
    let answer: Value = post(simple_call(json!(id)).to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        answer["id"] == json!(id),
        "the huge id comes back as it was"
    );
    assert_eq!(answer["result"]["isError"], false);
}

/// Opens a legacy SSE stream for `user`; the stream and its message endpoint.
async fn open_sse(client: &reqwest::Client, base: &str, user: &str) -> (reqwest::Response, String) {
    let mut response = client
        .get(format!("{base}/{SERVER}/{user}"))
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

/// The next `event: message` data of an SSE stream, as JSON.
async fn next_message(stream: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find("\r\n\r\n") {
            let event: String = buffer.drain(..end + 4).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                if event.contains("event: message") {
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

#[tokio::test]
async fn legacy_sse_refuses_hostile_posts_and_borrowed_sessions() {
    let served = common::serve(None, &[]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let base = &served.url;
    let (mut stream, endpoint) = open_sse(&client, base, "alice").await;
    let post = |path: String, body: String| {
        client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    assert_eq!(
        post(endpoint.clone(), init.to_string())
            .await
            .unwrap()
            .status(),
        202
    );
    let mut buffer = String::new();
    next_message(&mut stream, &mut buffer).await;

    // guMCP's transport answers a body it cannot parse with 400 and keeps the stream.
    for (what, body, _) in hostile_bodies().into_iter().take(3) {
        let status = post(endpoint.clone(), body).await.unwrap().status();
        assert_eq!(status, 400, "{what}");
    }
    let session = endpoint.rsplit("session_id=").next().unwrap().to_owned();
    let unknown = format!("/{SERVER}/alice/messages/?session_id={}", "ab".repeat(16));
    let not_hex = format!("/{SERVER}/alice/messages/?session_id=../../etc");
    let borrowed = format!("/{SERVER}/bob/messages/?session_id={session}");
    let call = simple_call(json!(1)).to_string();
    assert_eq!(post(unknown, call.clone()).await.unwrap().status(), 404);
    assert_eq!(post(not_hex, call.clone()).await.unwrap().status(), 400);
    assert_eq!(
        post(borrowed, call.clone()).await.unwrap().status(),
        404,
        "alice's session id with bob's key is as unknown as a made-up one"
    );

    let id = huge_string_id();
    let big = simple_call(json!(id)).to_string();
    assert_eq!(post(endpoint, big).await.unwrap().status(), 202);
    let answer = loop {
        let message = next_message(&mut stream, &mut buffer).await;
        if !message["id"].is_null() {
            break message;
        }
    };
    assert!(
        answer["id"] == json!(id),
        "the huge id comes back as it was"
    );
    assert_eq!(
        answer["result"]["isError"], false,
        "the stream still serves"
    );
}

#[tokio::test]
async fn streamable_sessions_refuse_unknown_and_borrowed_ids() {
    let served = common::serve(None, &[]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let post = |user: &str, session: Option<&str>, body: String| {
        let mut request = client
            .post(format!("{}/{SERVER}/{user}/mcp", served.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        request.send()
    };
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    let opened = post("alice", None, init.to_string()).await.unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
    for unknown in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "../../etc",
    ] {
        let status = post("alice", Some(unknown), list.clone())
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "session id {unknown:?}");
    }
    let borrowed = post("bob", Some(&session), list.clone()).await.unwrap();
    assert_eq!(borrowed.status(), 404, "alice's session id with bob's key");
    for (what, body, code) in hostile_bodies() {
        let response = post("alice", Some(&session), body).await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let refusal: Value = response.json().await.unwrap();
        assert_eq!(refusal["error"]["code"], code, "{what}: {refusal}");
    }
    let still = post("alice", Some(&session), list).await.unwrap();
    assert_eq!(still.status(), 200, "the session still serves");
}

/// Sends one request exactly as written (no client resolves `..` or `%2e%2e` first); the
/// status and the response head.
async fn raw_request(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = format!("Host: {address}\r\n");
    raw_request_with(address, &host, method, path, body).await
}

/// [`raw_request`] with these header lines (each ending in CRLF) instead of the `Host` line.
async fn raw_request_with(
    address: &str,
    headers: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Accept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        if read == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

#[tokio::test]
async fn injection_and_traversal_in_any_path_segment_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(&config, "[auth]\nlocal_dir = \"local_auth\"\n").unwrap();
    let served = common::serve(Some(&config), &[]).await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let body = simple_call(json!(1)).to_string();
    let hostile_segments = [
        "..",
        "%2e%2e",
        "..%2F..%2Fetc",
        "%2F",
        "alice%0d%0aX-Injected:%201",
        "alice%00",
        &"a".repeat(5000),
    ];
    for segment in hostile_segments {
        for (method, path) in [
            ("POST", format!("/{segment}/alice/mcp")),
            ("POST", format!("/{SERVER}/{segment}/mcp")),
            ("GET", format!("/{SERVER}/{segment}")),
            (
                "POST",
                format!("/{SERVER}/{segment}/messages/?session_id=00"),
            ),
        ] {
            let sent = if method == "POST" { body.as_str() } else { "" };
            let (status, head) = raw_request(&address, method, &path, sent).await;
            let shown = &path[..path.len().min(80)];
            assert!(
                matches!(status, 400 | 404),
                "{method} {shown}: {status} (a refusal, never a session or a server error)"
            );
            assert!(
                !head.to_ascii_lowercase().contains("x-injected"),
                "{shown}: no header injected"
            );
        }
    }
    assert!(
        !root.path().join("local_auth").exists(),
        "nothing was written for any hostile user id"
    );
    let (status, _) = raw_request(&address, "GET", "/health_check", "").await;
    assert_eq!(status, 200, "the service still serves");
}

/// The metrics listener sits behind the same DNS-rebinding guard as the API: a page that
/// rebinds its own name to this address cannot read either.
#[tokio::test]
async fn metrics_refuse_a_foreign_host_or_origin_like_the_api() {
    let served = common::serve(None, &[]).await;
    let api = served.url.trim_start_matches("http://").to_owned();
    let metrics = served
        .metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    for (address, path) in [(&metrics, "/metrics"), (&api, "/health_check")] {
        for headers in [
            "Host: evil.example\r\n".to_owned(),
            format!(
                "Host: evil.example:{}\r\n",
                address.rsplit(':').next().unwrap()
            ),
            format!("Host: {address}\r\nOrigin: http://evil.example\r\n"),
        ] {
            let (status, head) = raw_request_with(address, &headers, "GET", path, "").await;
            assert_eq!(status, 403, "{path} with {headers:?}: {head}");
        }
        let (status, head) = raw_request(address, "GET", path, "").await;
        assert_eq!(status, 200, "{path} from loopback: {head}");
        let localhost = "Host: localhost\r\nOrigin: http://localhost:3000\r\n";
        let (status, head) = raw_request_with(address, localhost, "GET", path, "").await;
        assert_eq!(status, 200, "{path} as localhost: {head}");
    }
    served.stop().await;
}
