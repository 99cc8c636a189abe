//! The floor: what HTTP + SSE alone cost on this machine, for the load generator to compare
//! against (`cargo build --release --examples`, then `cargo bench --bench load -- --compare`).
//!
//! A raw actix-web server (the same crate and features as the runtime) that answers guMCP's
//! routes with canned replies: `GET /{server}/{key}` opens an SSE stream with the endpoint
//! event, `POST …/messages/?session_id=` answers 202 and sends a canned result echoing the
//! request id on that stream, and `POST /{server}[/{key}]/mcp` answers the same result as JSON
//! (with an `Mcp-Session-Id`, so session cycles work too). No MCP parsing beyond the id, no
//! actors, TCP_NODELAY on. Prints `listening on http://…` like `gumcp-actors serve`.
//!
//! Routes are actix-web's own (`{parameter}` patterns, each matched by a regular expression),
//! as a plain actix-web server has them; `--split-routes` matches them by splitting the path
//! instead, as `gumcp-actors` does, for a floor without that cost (BENCHMARKS.md).
//!
//! `--stdio` answers newline-delimited requests on stdin with the same canned result on
//! stdout, with blocking reads and writes on one thread: the cost of the pipes alone.

use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use dashmap::DashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// Open SSE streams by session id.
#[derive(Default)]
struct Floor {
    sessions: DashMap<u64, mpsc::UnboundedSender<Bytes>>,
    next_id: AtomicU64,
}

/// Removes a session from the table when its stream is dropped (the client went away).
struct Registered {
    floor: Arc<Floor>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.floor.sessions.remove(&self.id);
    }
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SessionQuery {
    session_id: u64,
}

/// The request's id as raw JSON text, or `None` for a notification or unreadable body.
fn request_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<IdOnly>(body)
        .ok()
        .and_then(|message| message.id)
        .map(|id| id.get().to_owned())
}

fn canned(id: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"Stored 'k' with value: v"}}],"isError":false}}}}"#
    )
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn open_stream(
    floor: web::Data<Arc<Floor>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (server, key) = path.into_inner();
    stream_for(floor, &server, &key)
}

fn stream_for(floor: web::Data<Arc<Floor>>, server: &str, key: &str) -> HttpResponse {
    let id = floor.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    floor.sessions.insert(id, tx);
    let first = Bytes::from(format!(
        "event: endpoint\ndata: /{server}/{key}/messages/?session_id={id}\n\n"
    ));
    let registered = Registered {
        floor: floor.get_ref().clone(),
        id,
    };
    let rest = futures::stream::unfold((rx, registered), |(mut rx, registered)| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), (rx, registered)))
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<_, Infallible>(first) }),
        rest,
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream)
}

async fn post_message(
    floor: web::Data<Arc<Floor>>,
    query: web::Query<SessionQuery>,
    body: Bytes,
) -> HttpResponse {
    message_for(floor, query.into_inner(), body)
}

fn message_for(floor: web::Data<Arc<Floor>>, query: SessionQuery, body: Bytes) -> HttpResponse {
    let Some(session) = floor.sessions.get(&query.session_id).map(|s| s.clone()) else {
        return HttpResponse::NotFound().body("Could not find session");
    };
    if let Some(id) = request_id(&body) {
        let event = format!("event: message\ndata: {}\n\n", canned(&id));
        if session.send(Bytes::from(event)).is_err() {
            return HttpResponse::NotFound().body("Could not find session");
        }
    }
    HttpResponse::Accepted().body("Accepted")
}

async fn post_mcp(floor: web::Data<Arc<Floor>>, body: Bytes) -> HttpResponse {
    mcp_reply(floor, body)
}

fn mcp_reply(floor: web::Data<Arc<Floor>>, body: Bytes) -> HttpResponse {
    match request_id(&body) {
        Some(id) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                "mcp-session-id",
                floor.next_id.fetch_add(1, Ordering::Relaxed).to_string(),
            ))
            .body(canned(&id)),
        None => HttpResponse::Accepted().finish(),
    }
}

async fn delete_mcp() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// `--split-routes`: every request, told apart by its method and path segments.
async fn split_routes(
    floor: web::Data<Arc<Floor>>,
    request: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let segments: Vec<&str> = request.path().trim_start_matches('/').split('/').collect();
    match (request.method().as_str(), segments.as_slice()) {
        ("GET", ["health_check"]) => health().await,
        ("POST", [_, "mcp"] | [_, _, "mcp"]) => mcp_reply(floor, body),
        ("DELETE", [_, "mcp"] | [_, _, "mcp"]) => delete_mcp().await,
        ("POST", [_, _, "messages", ""]) => {
            match web::Query::<SessionQuery>::from_query(request.query_string()) {
                Ok(query) => message_for(floor, query.into_inner(), body),
                Err(_) => HttpResponse::BadRequest().body("session_id is required"),
            }
        }
        ("GET", [server, key]) => stream_for(floor, server, key),
        _ => HttpResponse::NotFound().finish(),
    }
}

fn port_arg() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--port")
        .and_then(|at| args.get(at + 1))
        .and_then(|port| port.parse().ok())
        .unwrap_or(0)
}

/// `--stdio`: every line with an id gets the canned result, flushed at once.
fn serve_stdio() -> std::io::Result<()> {
    let mut output = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        if let Some(id) = request_id(line?.as_bytes()) {
            writeln!(output, "{}", canned(&id))?;
            output.flush()?;
        }
    }
    Ok(())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    if std::env::args().any(|arg| arg == "--stdio") {
        return serve_stdio();
    }
    let floor = Arc::new(Floor::default());
    let split = std::env::args().any(|arg| arg == "--split-routes");
    let server = HttpServer::new(move || {
        let app = App::new().app_data(web::Data::new(floor.clone()));
        if split {
            return app.default_service(web::to(split_routes));
        }
        app.route("/health_check", web::get().to(health))
            .route("/{server}/mcp", web::post().to(post_mcp))
            .route("/{server}/mcp", web::delete().to(delete_mcp))
            .route("/{server}/{key}/mcp", web::post().to(post_mcp))
            .route("/{server}/{key}/mcp", web::delete().to(delete_mcp))
            .route("/{server}/{key}/messages/", web::post().to(post_message))
            .route("/{server}/{key}", web::get().to(open_stream))
    })
    .tcp_nodelay(true)
    .backlog(4096)
    .bind(("127.0.0.1", port_arg()))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    std::io::stdout().flush()?;
    server.run().await
}
