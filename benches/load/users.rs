//! The virtual users: one async loop per user and transport. Each loop times whole requests
//! (from sending to the matching reply) and reconnects after a failure, so one broken stream
//! is counted as an error rather than ending the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};

use crate::http::{header, is_event_stream, read_body, Conn, Endpoint, Res};
use crate::mcp::{self, Call, Seen};
use crate::run::{histogram, timed, Shared};
use crate::sse::SseReader;

/// How a target lays out its routes.
#[derive(Clone, Debug)]
pub struct Routes {
    pub endpoint: Endpoint,
    pub server: String,
    pub user_prefix: String,
    /// rmcp's example serves one `/mcp` for everyone instead of `/{server}/{user}/mcp`.
    pub shared_mcp: bool,
    /// The tool calls the preset makes.
    pub call: Call,
    /// `cluster`: where a legacy session's messages are POSTed, when not where its stream is
    /// (another node, which forwards them to the owner).
    pub posts: Option<Endpoint>,
}

impl Routes {
    pub fn user(&self, index: usize) -> String {
        format!("{}{index}", self.user_prefix)
    }

    pub fn sse(&self, user: &str) -> String {
        self.endpoint.path(&format!("/{}/{user}", self.server))
    }

    pub fn mcp(&self, user: &str) -> String {
        if self.shared_mcp {
            self.endpoint.path("/mcp")
        } else {
            self.endpoint.path(&format!("/{}/{user}/mcp", self.server))
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const ACCEPT_BOTH: (&str, &str) = ("accept", "application/json, text/event-stream");

/// What a user does after its session failed: count the error, pause briefly, start again.
async fn after_failure(shared: &Shared, result: Res<()>) {
    if let Err(err) = result {
        if !shared.stopped() {
            shared.error(err.to_string());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Per-user state that outlives one session: the histogram and the request counter.
struct Tally {
    hist: Histogram<u64>,
    n: u64,
}

// ---------------------------------------------------------------- legacy SSE (guMCP's routes)

/// An open legacy SSE session: where to POST, and the replies arriving on the stream.
pub struct SseSession {
    pub post_path: String,
    /// The stream, read by the user's own task while it waits for a reply: a task forwarding
    /// the events would put a hand-off between tasks (often between the client's threads)
    /// into every reply's time, the client's cost and not the server's. Dropping the session
    /// closes the stream.
    reader: SseReader,
    _conn: Conn,
}

/// Opens `GET /{server}/{user}` and waits for the `endpoint` event; the session reads the
/// stream's `message` events from then on.
pub async fn open_sse(routes: &Routes, user: &str) -> Res<SseSession> {
    let mut conn = Conn::connect(&routes.endpoint).await?;
    let response = conn
        .send(
            Method::GET,
            &routes.sse(user),
            &[("accept", "text/event-stream")],
            Bytes::new(),
        )
        .await?;
    if response.status() != StatusCode::OK {
        let status = response.status();
        let body = read_body(response).await.unwrap_or_default();
        return Err(format!("GET stream: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    let mut reader = SseReader::new(response.into_body());
    let endpoint = loop {
        match reader.next_event().await? {
            Some(event) if event.event == "endpoint" => break event.data,
            Some(_) => continue,
            None => return Err("stream ended before the endpoint event".into()),
        }
    };
    Ok(SseSession {
        post_path: relative_path(&endpoint, routes),
        reader,
        _conn: conn,
    })
}

/// The endpoint event holds a path (guMCP, this runtime) or a full URL; the client needs the
/// path, under the `--url` prefix when the server sent a relative one.
fn relative_path(endpoint: &str, routes: &Routes) -> String {
    if let Some(rest) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    {
        return rest
            .find('/')
            .map_or("/".to_owned(), |at| rest[at..].to_owned());
    }
    if endpoint.starts_with(&routes.endpoint.prefix) {
        endpoint.to_owned()
    } else {
        routes.endpoint.path(endpoint)
    }
}

/// POSTs one message of a legacy SSE session; the answer is 202 with the reply on the stream.
async fn post_sse(conn: &mut Conn, path: &str, body: Bytes) -> Res<()> {
    let response = conn.send(Method::POST, path, &[JSON], body).await?;
    let status = response.status();
    let body = read_body(response).await?;
    if !status.is_success() {
        return Err(format!("POST message: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(())
}

/// Waits on the stream for the reply to `id`.
async fn sse_reply(session: &mut SseSession, id: u64) -> Res<bool> {
    while let Some(event) = session.reader.next_event().await? {
        if event.event != "message" {
            continue;
        }
        match mcp::classify(event.data.as_bytes(), id) {
            Seen::Other => continue,
            Seen::Ok => return Ok(true),
            Seen::Failed => return Ok(false),
        }
    }
    Err("SSE stream ended".into())
}

/// `sse-calls`: one legacy SSE session per user (initialize, initialized), then tools/call of
/// store-data / retrieve-data in a loop, each timed from POST to the reply on the stream.
pub async fn sse_calls(shared: Arc<Shared>, routes: Arc<Routes>, index: usize) -> Histogram<u64> {
    let mut tally = Tally {
        hist: histogram(),
        n: 0,
    };
    while !shared.stopped() {
        let result = sse_session(&shared, &routes, index, &mut tally).await;
        after_failure(&shared, result).await;
    }
    tally.hist
}

async fn sse_session(shared: &Shared, routes: &Routes, index: usize, tally: &mut Tally) -> Res<()> {
    let user = routes.user(index);
    let mut session = timed("open SSE", open_sse(routes, &user)).await?;
    let mut conn = Conn::connect(routes.posts.as_ref().unwrap_or(&routes.endpoint)).await?;
    let mut id = 1u64;
    post_sse(&mut conn, &session.post_path, mcp::initialize(id)).await?;
    if !timed("initialize", sse_reply(&mut session, id)).await? {
        return Err("initialize failed".into());
    }
    post_sse(&mut conn, &session.post_path, mcp::initialized()).await?;
    while shared.go() {
        id += 1;
        tally.n += 1;
        let started = Instant::now();
        let body = routes.call.request(id, tally.n, index, false);
        let outcome = timed("tools/call over SSE", async {
            post_sse(&mut conn, &session.post_path, body).await?;
            sse_reply(&mut session, id).await
        })
        .await;
        match outcome {
            Ok(ok) => shared.record(&mut tally.hist, started, ok),
            Err(err) => {
                shared.record(&mut tally.hist, started, false);
                return Err(err);
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------- Streamable HTTP

/// The reply to `id` in a Streamable HTTP response, JSON or SSE. An SSE body is read to its
/// end so the connection can carry the next request.
async fn streamable_reply(response: hyper::Response<hyper::body::Incoming>, id: u64) -> Res<bool> {
    let status = response.status();
    if is_event_stream(&response) {
        let mut reader = SseReader::new(response.into_body());
        let mut outcome = None;
        while let Some(event) = reader.next_event().await? {
            match mcp::classify(event.data.as_bytes(), id) {
                Seen::Other => continue,
                Seen::Ok => outcome = Some(true),
                Seen::Failed => outcome = Some(false),
            }
            break;
        }
        reader.drain().await?;
        return outcome.ok_or_else(|| "SSE reply stream ended without the reply".into());
    }
    let body = read_body(response).await?;
    match mcp::classify(&body, id) {
        Seen::Ok if status.is_success() => Ok(true),
        Seen::Ok | Seen::Failed => Ok(false),
        Seen::Other => Err(format!("POST: {status} {}", String::from_utf8_lossy(&body)).into()),
    }
}

/// One initialize → notifications/initialized → tools/call → DELETE cycle.
async fn one_cycle(conn: &mut Conn, path: &str, call: Call, n: u64, index: usize) -> Res<bool> {
    let response = conn
        .send(Method::POST, path, &[JSON, ACCEPT_BOTH], mcp::initialize(1))
        .await?;
    let session_id = header(&response, "mcp-session-id");
    if !streamable_reply(response, 1).await? {
        return Ok(false);
    }
    let session_id = session_id.ok_or("initialize answered without Mcp-Session-Id")?;
    let with_session = [
        JSON,
        ACCEPT_BOTH,
        ("mcp-session-id", session_id.as_str()),
        ("mcp-protocol-version", mcp::LEGACY_VERSION),
    ];
    let response = conn
        .send(Method::POST, path, &with_session, mcp::initialized())
        .await?;
    let status = response.status();
    read_body(response).await?;
    if !status.is_success() {
        return Err(format!("notifications/initialized: {status}").into());
    }
    let response = conn
        .send(
            Method::POST,
            path,
            &with_session,
            call.request(2, n, index, false),
        )
        .await?;
    let ok = streamable_reply(response, 2).await?;
    let response = conn
        .send(Method::DELETE, path, &with_session[2..], Bytes::new())
        .await?;
    let status = response.status();
    read_body(response).await?;
    if !status.is_success() {
        return Err(format!("DELETE session: {status}").into());
    }
    Ok(ok)
}

/// `session-cycle`: a whole Streamable HTTP session per iteration, timed as one unit.
pub async fn session_cycle(
    shared: Arc<Shared>,
    routes: Arc<Routes>,
    index: usize,
) -> Histogram<u64> {
    let mut tally = Tally {
        hist: histogram(),
        n: 0,
    };
    while !shared.stopped() {
        let result = cycles(&shared, &routes, index, &mut tally).await;
        after_failure(&shared, result).await;
    }
    tally.hist
}

async fn cycles(shared: &Shared, routes: &Routes, index: usize, tally: &mut Tally) -> Res<()> {
    let path = routes.mcp(&routes.user(index));
    let mut conn = Conn::connect(&routes.endpoint).await?;
    while shared.go() {
        tally.n += 1;
        let started = Instant::now();
        let cycle = one_cycle(&mut conn, &path, routes.call, tally.n, index);
        match timed("session cycle", cycle).await {
            Ok(ok) => shared.record(&mut tally.hist, started, ok),
            Err(err) => {
                shared.record(&mut tally.hist, started, false);
                return Err(err);
            }
        }
    }
    Ok(())
}

/// `stateless-calls`: 2026-07-28 POSTs of tools/call, with the mirrored headers and `_meta`.
pub async fn stateless_calls(
    shared: Arc<Shared>,
    routes: Arc<Routes>,
    index: usize,
) -> Histogram<u64> {
    let mut tally = Tally {
        hist: histogram(),
        n: 0,
    };
    while !shared.stopped() {
        let result = stateless(&shared, &routes, index, &mut tally).await;
        after_failure(&shared, result).await;
    }
    tally.hist
}

async fn stateless(shared: &Shared, routes: &Routes, index: usize, tally: &mut Tally) -> Res<()> {
    let path = routes.mcp(&routes.user(index));
    let mut conn = Conn::connect(&routes.endpoint).await?;
    while shared.go() {
        tally.n += 1;
        let n = tally.n;
        let started = Instant::now();
        let outcome = timed(
            "stateless tools/call",
            stateless_call(&mut conn, &path, routes.call, n, index),
        )
        .await;
        match outcome {
            Ok(ok) => shared.record(&mut tally.hist, started, ok),
            Err(err) => {
                shared.record(&mut tally.hist, started, false);
                return Err(err);
            }
        }
    }
    Ok(())
}

/// One 2026-07-28 `tools/call` on `conn`: the `n`th call of user `index`, answered in full.
pub async fn stateless_call(
    conn: &mut Conn,
    path: &str,
    call: Call,
    n: u64,
    index: usize,
) -> Res<bool> {
    let headers = [
        JSON,
        ACCEPT_BOTH,
        ("mcp-protocol-version", mcp::MODERN_VERSION),
        ("mcp-method", "tools/call"),
        ("mcp-name", call.tool(n)),
    ];
    let response = conn
        .send(
            Method::POST,
            path,
            &headers,
            call.request(n, n, index, true),
        )
        .await?;
    streamable_reply(response, n).await
}

// ------------------------------------------------------------------------- the bare upstream

/// The `bare-upstream` rows: the GET a story call makes upstream, sent by the load generator
/// to its mock itself, with no MCP server between — the round trip the servers add to.
pub async fn bare_upstream(
    shared: Arc<Shared>,
    endpoint: Arc<Endpoint>,
    index: usize,
) -> Histogram<u64> {
    let mut tally = Tally {
        hist: histogram(),
        n: index as u64,
    };
    while !shared.stopped() {
        let result = bare_gets(&shared, &endpoint, &mut tally).await;
        after_failure(&shared, result).await;
    }
    tally.hist
}

async fn bare_gets(shared: &Shared, endpoint: &Endpoint, tally: &mut Tally) -> Res<()> {
    let mut conn = Conn::connect(endpoint).await?;
    while shared.go() {
        tally.n += 1;
        let path = endpoint.path(&format!("/item/{}.json", mcp::story_id(tally.n)));
        let started = Instant::now();
        let outcome = timed("upstream GET", async {
            let response = conn.send(Method::GET, &path, &[], Bytes::new()).await?;
            let status = response.status();
            let body = read_body(response).await?;
            Ok(status == StatusCode::OK && !body.is_empty())
        })
        .await;
        match outcome {
            Ok(ok) => shared.record(&mut tally.hist, started, ok),
            Err(err) => {
                shared.record(&mut tally.hist, started, false);
                return Err(err);
            }
        }
    }
    Ok(())
}
