//! A hosted remote server's connection: the client's messages POSTed to a Streamable HTTP MCP
//! endpoint (2025 revisions), with the user's credential, the session id the upstream gave at
//! `initialize`, and the negotiated protocol version; each answer — JSON, or an SSE stream
//! carrying the server's notifications and requests before the response — read within
//! `servers.max_response_bytes` and handed to the client. A session the upstream has dropped
//! (404) is initialized again and the message sent once more. Once the session is initialized,
//! the upstream's standalone GET stream — what it sends outside any request — is read into the
//! client the same way, reopened (with `Last-Event-ID`) when it ends, and closed with the
//! session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::client::Peer;
use super::Connection;
use crate::servers::manifest::AuthSpec;
use crate::servers::ServerEvents;

/// Messages queued for the upstream.
const OUTBOUND_QUEUE: usize = 256;

/// Times in a row the standalone stream is reopened without a message between; past them it
/// stays closed until the session is initialized again.
const MAX_STREAM_RETRIES: u32 = 5;

/// The pause before reopening the standalone stream; it doubles with each retry in a row.
const FIRST_STREAM_BACKOFF: Duration = Duration::from_millis(250);

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Where and how to reach the upstream.
pub struct Endpoint {
    pub url: String,
    pub client: reqwest::Client,
    pub auth: AuthSpec,
    pub secret: Option<String>,
    pub max_response_bytes: usize,
}

/// One (server, principal)'s session with the upstream.
struct Session {
    endpoint: Endpoint,
    server: Arc<str>,
    state: Mutex<SessionState>,
    /// Held while the session is initialized again, so concurrent 404s do it once.
    renewing: tokio::sync::Mutex<()>,
    /// Set while the standalone stream's task runs.
    streaming: AtomicBool,
    /// Cancelled when the connection ends: the standalone stream closes with it.
    closed: CancellationToken,
    /// Turns true once the standalone stream was first answered (open, refused, or none to
    /// open), so the connection is not used before it can carry the server's messages.
    settled: watch::Sender<bool>,
}

#[derive(Default, Clone)]
struct SessionState {
    id: Option<String>,
    protocol: Option<String>,
    /// The `initialize` message the client sent, sent again to renew the session.
    initialize: Option<String>,
}

/// Keeps the session's tasks alive; dropping it ends them.
struct Running {
    _stop: oneshot::Sender<()>,
    _stream: DropGuard,
}

/// Opens the connection (the handshake is the caller's, through the returned client).
pub fn connect(
    endpoint: Endpoint,
    server: Arc<str>,
    events: ServerEvents,
    fingerprint: Option<[u8; 32]>,
) -> Connection {
    let (outbound, mut lines) = mpsc::channel::<String>(OUTBOUND_QUEUE);
    let peer = Arc::new(Peer::new(server.clone(), outbound, events));
    let session = Arc::new(Session {
        endpoint,
        server,
        state: Mutex::new(SessionState::default()),
        renewing: tokio::sync::Mutex::new(()),
        streaming: AtomicBool::new(false),
        closed: CancellationToken::new(),
        settled: watch::channel(false).0,
    });
    let settled = session.settled.subscribe();
    let stream = session.closed.clone().drop_guard();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let weak = Arc::downgrade(&peer);
    tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                _ = &mut stopped => break,
                line = lines.recv() => line,
            };
            let (Some(line), Some(peer)) = (line, weak.upgrade()) else {
                break;
            };
            let session = session.clone();
            tokio::spawn(async move { session.deliver(line, &peer).await });
        }
        session.close().await;
    });
    let running = Running {
        _stop: stop,
        _stream: stream,
    };
    Connection::new(peer, fingerprint, Box::new(running)).settled_by(settled)
}

impl Session {
    fn state(&self) -> SessionState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends one message of the client's and hands what comes back to it; a request that gets
    /// no answer is answered with the reason, so no caller waits for ever. Once the
    /// upstream took `notifications/initialized`, its standalone stream is opened.
    async fn deliver(self: &Arc<Self>, line: String, peer: &Arc<Peer>) {
        let message: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        // A request of ours: something must answer it.
        let id = message
            .get("method")
            .and_then(|_| message.get("id"))
            .cloned();
        let initializing = message["method"] == "initialize";
        if initializing {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .initialize = Some(line.clone());
        }
        let outcome = self.exchange(&line, initializing, peer).await;
        let answered = match outcome {
            Ok(answered) => answered,
            Err(reason) => {
                tracing::warn!(server = %self.server, "hosted upstream: {reason}");
                if let Some(id) = &id {
                    peer.receive(json!({
                        "jsonrpc": "2.0", "id": id,
                        "error": { "code": -32603, "message": format!("the {} server {reason}", self.server) }
                    }));
                }
                return;
            }
        };
        if message["method"] == "notifications/initialized" {
            self.open_stream(peer);
        }
        let unanswered = id.filter(|id| !answered.contains(id));
        if let Some(id) = unanswered {
            peer.receive(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": -32603, "message": format!(
                    "the {} server ended its answer without a response", self.server
                ) }
            }));
        }
    }

    /// Starts reading the upstream's standalone stream, unless it is being read already.
    fn open_stream(self: &Arc<Self>, peer: &Arc<Peer>) {
        if self.streaming.swap(true, Ordering::AcqRel) {
            return;
        }
        let session = self.clone();
        let peer = Arc::downgrade(peer);
        tokio::spawn(async move {
            tokio::select! {
                _ = session.closed.cancelled() => {}
                _ = session.stream(peer) => {}
            }
            session.settled.send_replace(true);
            session.streaming.store(false, Ordering::Release);
        });
    }

    /// Reads the standalone stream until the upstream says it has none (405), or it failed
    /// [`MAX_STREAM_RETRIES`] times in a row; each message goes to the client as one on a
    /// POST's answer would.
    async fn stream(&self, peer: Weak<Peer>) {
        let mut failures = 0u32;
        let mut last_event: Option<String> = None;
        loop {
            let state = self.state();
            let Some(id) = state.id.clone() else {
                return;
            };
            let mut request = self
                .endpoint
                .client
                .get(&self.endpoint.url)
                .header(ACCEPT, "text/event-stream")
                .header(SESSION_HEADER, id);
            if let Some(protocol) = &state.protocol {
                request = request.header(VERSION_HEADER, protocol);
            }
            if let Some(event) = &last_event {
                request = request.header("last-event-id", event);
            }
            let mut query = Vec::new();
            if let Some(secret) = &self.endpoint.secret {
                request = crate::servers::http::call::authorize(
                    request,
                    &mut query,
                    &self.endpoint.auth,
                    secret,
                );
            }
            if !query.is_empty() {
                request = request.query(&query);
            }
            let response = request.send().await;
            self.settled.send_replace(true);
            let received = match response {
                Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                Ok(response) if response.status().is_success() => {
                    self.read_stream(response, &peer, &mut last_event).await
                }
                Ok(response) => {
                    tracing::debug!(server = %self.server, status = response.status().as_u16(), "hosted upstream refused its standalone stream");
                    false
                }
                Err(err) => {
                    tracing::debug!(server = %self.server, "hosted upstream's standalone stream: {}", err.without_url());
                    false
                }
            };
            if peer.strong_count() == 0 {
                return;
            }
            failures = if received { 0 } else { failures + 1 };
            if failures > MAX_STREAM_RETRIES {
                tracing::warn!(server = %self.server, "hosted upstream's standalone stream keeps failing; it stays closed");
                return;
            }
            let backoff = FIRST_STREAM_BACKOFF.saturating_mul(2u32.saturating_pow(failures));
            tokio::time::sleep(backoff).await;
        }
    }

    /// Reads one opening of the standalone stream; whether it carried any message.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        peer: &Weak<Peer>,
        last_event: &mut Option<String>,
    ) -> bool {
        let limit = self.endpoint.max_response_bytes;
        let mut pending = Vec::new();
        let mut received = false;
        while let Ok(Some(chunk)) = response.chunk().await {
            pending.extend(chunk.iter().filter(|byte| **byte != b'\r'));
            while let Some(end) = pending.windows(2).position(|pair| pair == b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                if let Some(id) = event_id(&event) {
                    *last_event = Some(id);
                }
                let (Some(message), Some(peer)) = (event_data(&event), peer.upgrade()) else {
                    continue;
                };
                received = true;
                peer.receive(message);
            }
            if pending.len() > limit {
                tracing::warn!(server = %self.server, "hosted upstream sent an event larger than {limit} bytes (servers.max_response_bytes) on its standalone stream");
                return received;
            }
        }
        received
    }

    /// POSTs `line` (once more after renewing a dropped session); the ids of the responses
    /// that came back.
    async fn exchange(
        self: &Arc<Self>,
        line: &str,
        initializing: bool,
        peer: &Arc<Peer>,
    ) -> Result<Vec<Value>, String> {
        if let Some(headers) = serde_json::from_str(line)
            .ok()
            .and_then(|m| modern_headers(&m))
        {
            // A 2026-07-28 request stands alone: no session, its revision in the headers.
            let response = self.post(line, &SessionState::default(), &headers).await?;
            let mut answered = Vec::new();
            self.read(response, false, &mut |message| {
                if message.get("method").is_none() {
                    if let Some(id) = message.get("id") {
                        answered.push(id.clone());
                    }
                }
                peer.receive(message);
            })
            .await?;
            return Ok(answered);
        }
        let before = self.state();
        let mut response = self.post(line, &before, &[]).await?;
        if response.status() == StatusCode::NOT_FOUND && before.id.is_some() && !initializing {
            self.renew(before.id.as_deref()).await?;
            // The new session's standalone stream (reopened, if the old one gave up).
            self.open_stream(peer);
            response = self.post(line, &self.state(), &[]).await?;
        }
        let mut answered = Vec::new();
        self.read(response, initializing, &mut |message| {
            if message.get("method").is_none() {
                if let Some(id) = message.get("id") {
                    answered.push(id.clone());
                }
            }
            peer.receive(message);
        })
        .await?;
        Ok(answered)
    }

    async fn post(
        &self,
        line: &str,
        state: &SessionState,
        headers: &[(&'static str, String)],
    ) -> Result<reqwest::Response, String> {
        let endpoint = &self.endpoint;
        let mut request = endpoint
            .client
            .post(&endpoint.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(line.to_owned());
        if let Some(id) = &state.id {
            request = request.header(SESSION_HEADER, id);
        }
        if let Some(protocol) = &state.protocol {
            request = request.header(VERSION_HEADER, protocol);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut query = Vec::new();
        if let Some(secret) = &endpoint.secret {
            request =
                crate::servers::http::call::authorize(request, &mut query, &endpoint.auth, secret);
        }
        if !query.is_empty() {
            request = request.query(&query);
        }
        request
            .send()
            .await
            .map_err(|err| format!("could not be reached: {}", err.without_url()))
    }

    /// The upstream dropped the session (404): initialize again, unless another call already
    /// did since `dropped` was in use.
    async fn renew(&self, dropped: Option<&str>) -> Result<(), String> {
        let _renewing = self.renewing.lock().await;
        let state = self.state();
        if state.id.as_deref() != dropped {
            return Ok(());
        }
        let Some(initialize) = state.initialize else {
            return Err("dropped the session before it was initialized".to_owned());
        };
        tracing::info!(server = %self.server, "hosted upstream dropped the session; initializing again");
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.id = None;
            state.protocol = None;
        }
        let response = self.post(&initialize, &self.state(), &[]).await?;
        self.read(response, true, &mut |_| {}).await?;
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let response = self
            .post(&initialized.to_string(), &self.state(), &[])
            .await?;
        self.read(response, false, &mut |_| {}).await
    }

    /// Reads one answer: a status without a body, JSON, or an SSE stream of messages.
    async fn read(
        &self,
        mut response: reqwest::Response,
        initializing: bool,
        deliver: &mut (dyn FnMut(Value) + Send),
    ) -> Result<(), String> {
        self.remember_session(response.headers());
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(format!(
                "refused the credentials (HTTP {})",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("answered HTTP {}", status.as_u16()));
        }
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let limit = self.endpoint.max_response_bytes;
        let mut take = |message: Value| {
            if initializing {
                self.remember_protocol(&message);
            }
            deliver(message);
        };
        if !streamed {
            let body = crate::upstream::read_capped(response, limit)
                .await
                .map_err(|err| format!("answered unreadably: {err}"))?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            return match serde_json::from_slice(&body) {
                Ok(Value::Array(batch)) => {
                    batch.into_iter().for_each(&mut take);
                    Ok(())
                }
                Ok(message) => {
                    take(message);
                    Ok(())
                }
                Err(_) => Err("answered with something that is not JSON".to_owned()),
            };
        }
        let mut pending = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("broke off its answer: {}", err.without_url()))?
        {
            pending.extend(chunk.iter().filter(|byte| **byte != b'\r'));
            while let Some(end) = pending.windows(2).position(|pair| pair == b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                if let Some(message) = event_data(&event) {
                    take(message);
                }
            }
            if pending.len() > limit {
                return Err(format!(
                    "sent an event larger than {limit} bytes (servers.max_response_bytes)"
                ));
            }
        }
        Ok(())
    }

    fn remember_session(&self, headers: &HeaderMap) {
        if let Some(id) = headers
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
        {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).id = Some(id.to_owned());
        }
    }

    fn remember_protocol(&self, message: &Value) {
        if let Some(version) = message
            .get("result")
            .and_then(|result| result.get("protocolVersion"))
            .and_then(Value::as_str)
        {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .protocol = Some(version.to_owned());
        }
    }

    /// Ends the session at the upstream (DELETE), as the transport asks of a client leaving.
    async fn close(&self) {
        let Some(id) = self.state().id else {
            return;
        };
        let endpoint = &self.endpoint;
        let mut request = endpoint
            .client
            .delete(&endpoint.url)
            .header(SESSION_HEADER, id);
        let mut query = Vec::new();
        if let Some(secret) = &endpoint.secret {
            request =
                crate::servers::http::call::authorize(request, &mut query, &endpoint.auth, secret);
        }
        if !query.is_empty() {
            request = request.query(&query);
        }
        let _ = request.send().await;
    }
}

/// The headers a 2026-07-28 request must mirror (`MCP-Protocol-Version`, `Mcp-Method`,
/// `Mcp-Name`), if `message` is one: its `_meta` names the revision.
fn modern_headers(message: &Value) -> Option<Vec<(&'static str, String)>> {
    let method = message.get("method")?.as_str()?;
    let params = message.get("params")?;
    let version = params
        .get("_meta")?
        .get(crate::protocol::meta::PROTOCOL_VERSION)?
        .as_str()?;
    let mut headers = vec![
        (VERSION_HEADER, version.to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    let field = crate::protocol::headers::named_field(method);
    if let Some(name) = field.and_then(|field| params.get(field)?.as_str()) {
        let plain = name.bytes().all(|byte| (0x20..0x7f).contains(&byte));
        let value = if plain && name.trim() == name {
            name.to_owned()
        } else {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(name);
            format!("=?base64?{encoded}?=")
        };
        headers.push(("mcp-name", value));
    }
    Some(headers)
}

/// The `id:` of one SSE event, if it has one.
fn event_id(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("id:"))
        .map(|id| id.strip_prefix(' ').unwrap_or(id).to_owned())
}

/// The JSON message of one SSE event (its `data:` lines), if it has one.
fn event_data(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| data.strip_prefix(' ').unwrap_or(data))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}
