//! Bounds that keep one user (or one upstream) from taking the memory every user shares,
//! through the real binary over stdio: upstream answers past `servers.max_response_bytes`
//! (with and without `Content-Length`, 200 MB offered) become tool errors while the process's
//! peak RSS stays bounded, and a user store past `runtime.max_store_bytes_per_user` refuses
//! inserts while keeping what it holds.

mod common;

use common::{call_tool, text_of, StdioClient, WAIT};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the mock Hacker News answers for `/item/{id}.json`: a JSON story of `bytes` bytes,
/// announced by `Content-Length` or sent chunked without one.
fn planned(id: u64) -> (usize, bool) {
    match id {
        1 => (60_000, false),
        2 => (100_000, true),
        3 => (200_000_000, false),
        4 => (200_000_000, true),
        _ => (100, false),
    }
}

/// The default `servers.max_response_bytes`.
const DEFAULT_LIMIT: usize = 16 << 20;

/// How much higher the process's peak RSS may go while it refuses a 200 MB answer: the limit
/// itself (the body read so far) plus 16 MiB for the allocator and the reader's buffers. Seen:
/// +16.4 to +16.6 MiB with chunks, under 0.1 MiB when `Content-Length` says it all.
const PEAK_GROWTH_BOUND: u64 = DEFAULT_LIMIT as u64 + (16 << 20);

/// A Hacker News stand-in written on a bare socket, so a 200 MB answer is streamed from one
/// reused buffer. Each answered request reports (item id, body bytes written before the
/// reader left).
struct Upstream {
    url: String,
    written: mpsc::UnboundedReceiver<(u64, usize)>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (report, written) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let report = report.clone();
                tokio::spawn(async move {
                    if let Some(outcome) = answer(socket).await {
                        let _ = report.send(outcome);
                    }
                });
            }
        });
        Upstream { url, written }
    }

    /// The body bytes written for item `id`, once its connection is over.
    async fn written_for(&mut self, id: u64) -> usize {
        loop {
            let (item, written) = tokio::time::timeout(WAIT, self.written.recv())
                .await
                .expect("the upstream's answer ends in time")
                .expect("the upstream is running");
            if item == id {
                return written;
            }
        }
    }
}

/// Writes `piece`, as one chunk when `chunked`.
async fn write_piece(socket: &mut TcpStream, piece: &[u8], chunked: bool) -> std::io::Result<()> {
    if chunked {
        socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await?;
        socket.write_all(piece).await?;
        socket.write_all(b"\r\n").await
    } else {
        socket.write_all(piece).await
    }
}

/// Answers one request (one per connection) with the planned story, stopping when the reader
/// leaves: `{"id":N,"title":"aaa…"}` of exactly the planned size.
async fn answer(mut socket: TcpStream) -> Option<(u64, usize)> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let request = String::from_utf8_lossy(&head);
    let id: u64 = request
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/item/"))
        .and_then(|path| path.strip_suffix(".json"))
        .and_then(|id| id.parse().ok())?;
    let (size, chunked) = planned(id);
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {size}")
    };
    let response_head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n{framing}\r\n\r\n"
    );
    socket.write_all(response_head.as_bytes()).await.ok()?;
    let prefix = format!("{{\"id\":{id},\"title\":\"");
    let suffix = "\"}";
    let filler = vec![b'a'; 64 * 1024];
    let mut written = 0;
    let outcome = async {
        write_piece(&mut socket, prefix.as_bytes(), chunked).await?;
        written += prefix.len();
        let mut left = size - prefix.len() - suffix.len();
        while left > 0 {
            let piece = &filler[..left.min(filler.len())];
            write_piece(&mut socket, piece, chunked).await?;
            written += piece.len();
            left -= piece.len();
        }
        write_piece(&mut socket, suffix.as_bytes(), chunked).await?;
        written += suffix.len();
        if chunked {
            socket.write_all(b"0\r\n\r\n").await?;
        }
        socket.flush().await
    }
    .await;
    // A write error is the reader leaving early: what counts is how far it got.
    let _ = outcome;
    Some((id, written))
}

fn hackernews(upstream: &Upstream, extra: &[(&str, &str)]) -> StdioClient {
    let mut env = vec![(
        "GUMCP__SERVERS__BASE_URLS__HACKERNEWS",
        upstream.url.as_str(),
    )];
    env.extend_from_slice(extra);
    StdioClient::start_with_env(&["stdio", "--server", "hackernews"], &env)
}

/// The peak resident set of process `pid` so far (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// Calls `get_story_details` for item `id` of a 200 MB answer and checks that it is refused
/// naming the default limit, that the process's peak RSS grew by less than
/// [`PEAK_GROWTH_BOUND`], that the upstream was cut off long before 200 MB, and that the
/// server still answers afterwards.
async fn refuses_200_mb(id: u64) {
    let mut upstream = Upstream::start().await;
    let mut client = hackernews(&upstream, &[]);
    let pid = client.child.id().expect("the server runs");
    let small = call_tool(&mut client, 1, "get_story_details", json!({ "id": 5 })).await;
    assert_eq!(small["isError"], false, "{small}");
    let before = peak_rss(pid);
    let result = call_tool(&mut client, 2, "get_story_details", json!({ "id": id })).await;
    let after = peak_rss(pid);
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(
        text.contains(&format!(
            "larger than servers.max_response_bytes ({DEFAULT_LIMIT} bytes)"
        )),
        "{text}"
    );
    assert!(!text.contains(&upstream.url), "no URL in the error: {text}");
    let sent = upstream.written_for(id).await;
    eprintln!(
        "item {id}: peak RSS {} KiB before the call, {} KiB after (+{} KiB); the upstream \
         wrote {} KiB of 200 MB",
        before / 1024,
        after / 1024,
        (after - before) / 1024,
        sent / 1024
    );
    assert!(
        after - before < PEAK_GROWTH_BOUND,
        "peak RSS grew by {} bytes",
        after - before
    );
    assert!(sent < 64 << 20, "the upstream wrote {sent} bytes");
    let again = call_tool(&mut client, 3, "get_story_details", json!({ "id": 5 })).await;
    assert_eq!(again["isError"], false, "{again}");
}

#[tokio::test]
async fn a_200_mb_answer_announced_by_content_length_is_refused_unread() {
    refuses_200_mb(3).await;
}

#[tokio::test]
async fn a_200_mb_chunked_answer_is_cut_off_at_the_limit() {
    refuses_200_mb(4).await;
}

#[tokio::test]
async fn a_configured_limit_refuses_a_100_kb_answer_and_passes_a_60_kb_one() {
    let upstream = Upstream::start().await;
    let mut client = hackernews(
        &upstream,
        &[("GUMCP__SERVERS__MAX_RESPONSE_BYTES", "65536")],
    );
    let fits = call_tool(&mut client, 1, "get_story_details", json!({ "id": 1 })).await;
    assert_eq!(fits["isError"], false, "{fits}");
    let title = fits["structuredContent"]["title"].as_str().unwrap();
    assert_eq!(title.len(), 60_000 - r#"{"id":1,"title":""}"#.len());
    let over = call_tool(&mut client, 2, "get_story_details", json!({ "id": 2 })).await;
    assert_eq!(over["isError"], true, "{over}");
    let text = text_of(&over);
    assert_eq!(
        text,
        "hackernews's answer is larger than servers.max_response_bytes (65536 bytes); ask for \
         less (a smaller limit or page, a narrower query)"
    );
}

#[tokio::test]
async fn a_full_store_refuses_inserts_and_keeps_what_it_holds() {
    let mut client = StdioClient::start_with_env(
        &["stdio", "--server", "simple-tools-server"],
        &[("GUMCP__RUNTIME__MAX_STORE_BYTES_PER_USER", "2048")],
    );
    let value = "v".repeat(500);
    // Four entries of 2 + 500 bytes: 2008 of 2048.
    for (id, key) in (1..).zip(["k0", "k1", "k2", "k3"]) {
        let stored = call_tool(
            &mut client,
            id,
            "store-data",
            json!({ "key": key, "value": value }),
        )
        .await;
        assert_eq!(stored["isError"], false, "{stored}");
    }
    let full = call_tool(
        &mut client,
        10,
        "store-data",
        json!({ "key": "k4", "value": value }),
    )
    .await;
    assert_eq!(full["isError"], true, "{full}");
    assert_eq!(
        text_of(&full),
        "Not stored: the store for this user is full (2008 of 2048 bytes of keys and values \
         used; this entry needs 502 bytes). The limit is the operator's setting \
         runtime.max_store_bytes_per_user. Storing a shorter value under an existing key \
         frees space; everything stored so far is kept."
    );
    let kept = call_tool(&mut client, 11, "retrieve-data", json!({ "key": "k0" })).await;
    assert_eq!(text_of(&kept), format!("Value for 'k0': {value}"));
    let missing = call_tool(&mut client, 12, "retrieve-data", json!({ "key": "k4" })).await;
    assert_eq!(text_of(&missing), "Key 'k4' not found");
    // Replacing counts the difference: 40 more bytes fill the store exactly, one more does not.
    let longer = "w".repeat(540);
    let exact = call_tool(
        &mut client,
        13,
        "store-data",
        json!({ "key": "k3", "value": longer }),
    )
    .await;
    assert_eq!(exact["isError"], false, "{exact}");
    let one_more = call_tool(
        &mut client,
        14,
        "store-data",
        json!({ "key": "k", "value": "x" }),
    )
    .await;
    assert_eq!(one_more["isError"], true, "{one_more}");
    let shorter = call_tool(
        &mut client,
        15,
        "store-data",
        json!({ "key": "k0", "value": "short" }),
    )
    .await;
    assert_eq!(shorter["isError"], false, "{shorter}");
    let room = call_tool(
        &mut client,
        16,
        "store-data",
        json!({ "key": "k4", "value": "u".repeat(400) }),
    )
    .await;
    assert_eq!(room["isError"], false, "{room}");
    let listed = call_tool(&mut client, 17, "list-data", json!({})).await;
    let lines = text_of(&listed)
        .lines()
        .filter(|line| line.starts_with("- "));
    assert_eq!(lines.count(), 5);
}
