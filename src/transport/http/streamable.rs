//! Streamable HTTP on `/{server}/{session_key}/mcp` and `/{server}/mcp`, both eras on one
//! endpoint, told apart per request:
//!
//! - `MCP-Protocol-Version: 2026-07-28` (or any version that is not a 2025 one): a stateless
//!   request, served on the handler's own task (a listen, or a frame that is not a single
//!   request, gets a short-lived session actor), as JSON or — when the server streams
//!   progress or logs first — as SSE; closing the response cancels it. GET and DELETE have no
//!   meaning here (405).
//! - Otherwise the 2025 revisions: `initialize` without `Mcp-Session-Id` opens a session, every
//!   later request names it; a POST's answer is JSON when the reply comes first and a
//!   resumable SSE stream when notifications or server→client requests come before it; GET
//!   opens the standalone stream (or resumes one with `Last-Event-ID`); DELETE ends the session.

use std::sync::Arc;
use std::task::Poll;

use actix_web::http::header::{self, HeaderName};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::events::{self, Event, Until};
use super::replay::{self, AttachError, StreamHub, STANDALONE};
use super::sessions::{Entry, SessionKind};
use super::{reply, HttpState, Target};
use crate::actors::host::{Host, StatelessAnswer};
use crate::actors::outbox::{Outbox, Outflow};
use crate::actors::session::Expect;
use crate::actors::session::{OpenSession, SessionHandle};
use crate::protocol::error::{codes, McpError};
use crate::protocol::headers::MirroredHeaders;
use crate::protocol::jsonrpc::Outgoing;
use crate::protocol::version::ProtocolVersion;

// Header names as constants: looking one up by a string would parse the name on every request.
pub(super) const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

const VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");

const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");

const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `POST` on either MCP route. Who calls is decided from the head; only then is the body read.
pub async fn post(
    request: HttpRequest,
    state: web::Data<HttpState>,
    payload: web::Payload,
) -> HttpResponse {
    let target = match state.route_target(&request).await {
        Ok(target) => target,
        Err(refusal) => return reply::closing(refusal),
    };
    match reply::read_body(&request, payload, &state.body_limits()).await {
        Ok(body) => post_body(request, target, state, body).await,
        Err(refusal) => refusal,
    }
}

/// `GET` on either MCP route.
pub async fn get(request: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    match state.route_target(&request).await {
        Ok(target) => open_stream(&request, &target, &state),
        Err(refusal) => refusal,
    }
}

/// `DELETE` on either MCP route.
pub async fn delete(request: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    match state.route_target(&request).await {
        Ok(target) => end_session(&request, &target, &state),
        Err(refusal) => refusal,
    }
}

fn header_text(request: &HttpRequest, name: HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request is in the 2026-07-28 era: its version header names no 2025 revision.
pub(super) fn is_modern(request: &HttpRequest) -> bool {
    header_text(request, VERSION_HEADER).is_some_and(|version| {
        ProtocolVersion::parse(version).is_none_or(ProtocolVersion::is_modern)
    })
}

fn accepts(request: &HttpRequest, wanted: &[&str]) -> bool {
    let accept = header_text(request, header::ACCEPT).unwrap_or("");
    let offered = || {
        accept
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim())
    };
    offered().any(|media| media == "*/*")
        || wanted
            .iter()
            .all(|wanted| offered().any(|media| media == *wanted))
}

fn bad_request(message: impl Into<String>) -> HttpResponse {
    reply::rpc_error(StatusCode::BAD_REQUEST, McpError::invalid_request(message))
}

pub(super) fn session_not_found() -> HttpResponse {
    reply::rpc_error(
        StatusCode::NOT_FOUND,
        McpError::new(
            -32001,
            "Session not found: it ended or never existed; start a new one with initialize",
        ),
    )
}

fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type("application/json")
        .body(
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": McpError::invalid_request(
                    "Method Not Allowed: without an Mcp-Session-Id (protocol 2026-07-28) this \
                     endpoint takes POST only",
                ),
            })
            .to_string(),
        )
}

/// The session a request names, if it names one that exists for this caller.
fn named_session(
    request: &HttpRequest,
    target: &Target,
    state: &HttpState,
) -> Option<Result<Arc<Entry>, HttpResponse>> {
    let id = header_text(request, SESSION_HEADER)?;
    let found = Uuid::try_parse(id).ok().and_then(|id| {
        state.sessions.find(
            &id,
            &target.server,
            &target.caller.principal,
            SessionKind::Streamable,
        )
    });
    Some(found.ok_or_else(session_not_found))
}

/// A POST whose caller is known and whose body has been read (so no refusal from here on
/// leaves an unread body behind on a connection the client may reuse).
async fn post_body(
    request: HttpRequest,
    target: Target,
    state: web::Data<HttpState>,
    body: Vec<u8>,
) -> HttpResponse {
    let json_body = header_text(&request, header::CONTENT_TYPE)
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if !json_body {
        return reply::rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            McpError::invalid_request(
                "Unsupported Media Type: Content-Type must be application/json",
            ),
        );
    }
    if !accepts(&request, &["application/json", "text/event-stream"]) {
        return reply::rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            McpError::invalid_request(
                "Not Acceptable: Accept must list both application/json and text/event-stream",
            ),
        );
    }
    if is_modern(&request) {
        return stateless(&request, &target, &state, body).await;
    }
    if let Some(version) = header_text(&request, VERSION_HEADER) {
        if ProtocolVersion::parse(version).is_none() {
            return bad_request(format!(
                "Bad Request: unsupported MCP-Protocol-Version {version:?}; supported: {}",
                ProtocolVersion::all_names().join(", ")
            ));
        }
    }
    match named_session(&request, &target, &state) {
        Some(Ok(entry)) => in_session(&entry, &state, body).await,
        Some(Err(refusal)) => refusal,
        None if is_initialize(&body) => new_session(&target, &state, body).await,
        None => bad_request(
            "Bad Request: Mcp-Session-Id header is required (send initialize first, or use \
             protocol 2026-07-28 with its MCP-Protocol-Version header)",
        ),
    }
}

fn is_initialize(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    serde_json::from_slice::<Peek>(body).is_ok_and(|peek| peek.method == Some("initialize"))
}

async fn new_session(target: &Target, state: &web::Data<HttpState>, body: Vec<u8>) -> HttpResponse {
    let seat = match state.sessions.admit(&target.caller.principal) {
        Ok(seat) => seat,
        Err(refused) => return reply::busy(refused),
    };
    let (out, standalone) = Outbox::new(state.outbound_buffer, &state.runtime.metrics);
    let OpenSession { handle, stopped } =
        SessionHandle::open(&state.runtime, &target.server, &target.caller, out);
    let hub = StreamHub::new(state.replay_events, state.outbound_buffer);
    actix_rt::spawn(replay::pump(
        hub.clone(),
        STANDALONE,
        standalone,
        Some(stopped),
    ));
    let id = state.sessions.insert(
        seat,
        target.server.clone(),
        SessionKind::Streamable,
        handle,
        Some(hub),
    );
    let Some(entry) = state.sessions.find(
        &id,
        &target.server,
        &target.caller.principal,
        SessionKind::Streamable,
    ) else {
        return session_not_found();
    };
    let mut response = in_session(&entry, state, body).await;
    if let Ok(value) = header::HeaderValue::from_str(&id.simple().to_string()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// A POST within a 2025-revision session.
async fn in_session(entry: &Arc<Entry>, state: &HttpState, body: Vec<u8>) -> HttpResponse {
    let _in_use = entry.hold();
    let (reply_to, mut answers) = Outbox::new(state.outbound_buffer, &state.runtime.metrics);
    let refused = match entry.session.deliver(body, Some(reply_to), None).await {
        Err(_) => return session_not_found(),
        Ok(Expect::Nothing) => return HttpResponse::Accepted().finish(),
        Ok(Expect::Reply) => false,
        // "If the server cannot accept the input, it MUST return an HTTP error status code."
        Ok(Expect::Malformed | Expect::Refused) => true,
    };
    let Some(first) = answers.receiver.recv().await else {
        return session_not_found();
    };
    if refused {
        return json_reply(StatusCode::BAD_REQUEST, &first);
    }
    if first.is_reply() {
        return json_reply(StatusCode::OK, &first);
    }
    let Some(hub) = &entry.streams else {
        return session_not_found();
    };
    let (stream, live) = hub.open(first);
    actix_rt::spawn(replay::pump(hub.clone(), stream, answers, None));
    events::response(receiver_events(live), state.keep_alive)
}

fn receiver_events(live: mpsc::Receiver<Event>) -> impl futures::Stream<Item = Event> {
    futures::stream::unfold(live, |mut live| async move {
        live.recv().await.map(|event| (event, live))
    })
}

fn json_reply(status: StatusCode, message: &Outgoing) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(message.to_line())
}

/// One 2026-07-28 request. A single request is served on this task without a session (it
/// has no state to keep); anything else (a listen, a notification, a response, a batch) gets a
/// session of its own.
async fn stateless(
    request: &HttpRequest,
    target: &Target,
    state: &web::Data<HttpState>,
    body: Vec<u8>,
) -> HttpResponse {
    let text = |name| header_text(request, name).map(|v| v.trim().to_owned());
    let mirrored = MirroredHeaders {
        protocol_version: text(VERSION_HEADER),
        method: text(METHOD_HEADER),
        name: text(NAME_HEADER),
        params: request
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                let param = name.as_str().strip_prefix("mcp-param-")?;
                Some((param.to_owned(), value.to_str().ok().map(str::to_owned)))
            })
            .collect(),
    };
    let (out, answers) = Outbox::new(state.outbound_buffer, &state.runtime.metrics);
    let host = Host::new(state.runtime.clone(), &target.server, &target.caller);
    let cancellation = CancellationToken::new();
    match host.answer_stateless(body, &mirrored, &out, cancellation.clone()) {
        StatelessAnswer::Now(reply) => json_reply(modern_status(&reply), &reply),
        StatelessAnswer::Refused(refusal) => json_reply(StatusCode::BAD_REQUEST, &refusal),
        StatelessAnswer::Later(mut reply) => {
            // The reply joins the request's notifications in the outbox, in order. Most calls
            // are done on their first poll: answered here, with no task to spawn (a wake-up of
            // the worker thread per request).
            if let Poll::Ready(reply) = futures::poll!(&mut reply) {
                out.push(reply);
                return respond_stateless(state, answers, None, ()).await;
            }
            actix_rt::spawn(async move { out.push(reply.await) });
            let cancel_on_drop = cancellation.clone().drop_guard();
            respond_stateless(state, answers, None, cancel_on_drop).await
        }
        StatelessAnswer::NeedsSession(body) => {
            stateless_session(target, state, body, mirrored, out, answers).await
        }
    }
}

/// A 2026-07-28 frame that needs a session: one of its own, for as long as its response.
async fn stateless_session(
    target: &Target,
    state: &web::Data<HttpState>,
    body: Vec<u8>,
    mirrored: MirroredHeaders,
    out: Outbox,
    mut answers: Outflow,
) -> HttpResponse {
    let seat = match state.sessions.admit(&target.caller.principal) {
        Ok(seat) => seat,
        Err(refused) => return reply::busy(refused),
    };
    let OpenSession { handle, stopped } =
        SessionHandle::open(&state.runtime, &target.server, &target.caller, out);
    let guard = state.sessions.track_transient(seat, handle.clone());
    match handle.deliver(body, None, Some(mirrored)).await {
        Err(_) => {
            return reply::rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                McpError::internal("the service is shutting down"),
            )
        }
        Ok(Expect::Nothing) => return HttpResponse::Accepted().finish(),
        Ok(Expect::Refused) => {
            return match answers.receiver.recv().await {
                Some(refusal) => json_reply(StatusCode::BAD_REQUEST, &refusal),
                None => session_not_found(),
            }
        }
        Ok(Expect::Reply | Expect::Malformed) => {}
    }
    respond_stateless(state, answers, Some(stopped), guard).await
}

/// The response to a 2026-07-28 request: JSON when its reply comes first, otherwise an SSE
/// stream of its notifications that ends with the reply. `keep` is held until the response is
/// over; dropping it ends the request (everything was sent, or the client left: actix-web then
/// drops this handler, or the response body that holds `keep`).
async fn respond_stateless<K: 'static>(
    state: &web::Data<HttpState>,
    mut answers: Outflow,
    stopped: Option<oneshot::Receiver<()>>,
    keep: K,
) -> HttpResponse {
    let Some(first) = answers.receiver.recv().await else {
        return reply::rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            McpError::internal("the service is shutting down"),
        );
    };
    if first.is_reply() {
        return json_reply(modern_status(&first), &first);
    }
    let body = events::feed(
        vec![Event::message(&first, None)],
        answers,
        stopped,
        Until::Reply,
        keep,
    );
    events::response(body, state.keep_alive)
}

/// The HTTP status of a 2026-07-28 reply sent as JSON: the errors the transport spec names
/// get their own status, everything else is 200 with the JSON-RPC body saying what happened.
fn modern_status(reply: &Outgoing) -> StatusCode {
    match reply {
        Outgoing::Error { error, .. } => match error.code {
            codes::HEADER_MISMATCH
            | codes::MISSING_REQUIRED_CLIENT_CAPABILITY
            | codes::UNSUPPORTED_PROTOCOL_VERSION
            | codes::PARSE_ERROR
            | codes::INVALID_REQUEST => StatusCode::BAD_REQUEST,
            codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        },
        _ => StatusCode::OK,
    }
}

fn open_stream(request: &HttpRequest, target: &Target, state: &HttpState) -> HttpResponse {
    if is_modern(request) {
        return method_not_allowed();
    }
    let entry = match named_session(request, target, state) {
        None => return method_not_allowed(),
        Some(Err(refusal)) => return refusal,
        Some(Ok(entry)) => entry,
    };
    if !accepts(request, &["text/event-stream"]) {
        return reply::rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            McpError::invalid_request("Not Acceptable: Accept must list text/event-stream"),
        );
    }
    let Some(hub) = &entry.streams else {
        return session_not_found();
    };
    match hub.attach(header_text(request, LAST_EVENT_ID)) {
        Ok(live) => events::response(receiver_events(live), state.keep_alive),
        Err(busy @ AttachError::Busy) => reply::rpc_error(
            StatusCode::CONFLICT,
            McpError::invalid_request(format!("Conflict: {busy}")),
        ),
        Err(unknown) => bad_request(format!("Bad Request: {unknown}")),
    }
}

fn end_session(request: &HttpRequest, target: &Target, state: &HttpState) -> HttpResponse {
    if is_modern(request) {
        return method_not_allowed();
    }
    let Some(id) = header_text(request, SESSION_HEADER) else {
        return method_not_allowed();
    };
    let id = Uuid::try_parse(id).ok().filter(|id| {
        state
            .sessions
            .find(
                id,
                &target.server,
                &target.caller.principal,
                SessionKind::Streamable,
            )
            .is_some()
    });
    match id {
        Some(id) => {
            state.sessions.remove(&id);
            HttpResponse::Ok().finish()
        }
        None => session_not_found(),
    }
}
