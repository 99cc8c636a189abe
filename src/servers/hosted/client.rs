//! The runtime's own client side of MCP, for a hosted server: requests with ids of our own and
//! the map of those awaiting answers, the `initialize` handshake, and everything the server
//! sends unasked — progress and log notifications relayed to the callers they belong to, list
//! changes turned into server events, and its requests (sampling, elicitation, roots) asked of
//! the caller whose call is running.
//!
//! The transport only moves whole JSON-RPC messages: it hands each one it reads to
//! [`Peer::receive`] and writes what arrives on the outbound channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::InitializeResult;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::error::McpError;
use crate::protocol::meta::{self, LogLevel};
use crate::protocol::version::ProtocolVersion;
use crate::servers::context::Era;
use crate::servers::{CallError, RequestContext, ServerEvent, ServerEvents};

/// The revision the runtime's client asks a hosted server for; servers answer with the one
/// they speak, which the runtime accepts (it relays, it does not interpret).
pub const CLIENT_PROTOCOL_VERSION: &str = "2025-11-25";

/// Questions of a server (sampling, elicitation, roots) waiting for a client at once; more
/// are answered with an error straight away, so a server cannot pile up waiting tasks.
const MAX_OPEN_QUESTIONS: usize = 16;

/// One connection to a hosted server, as a client.
pub struct Peer {
    server: Arc<str>,
    outbound: mpsc::Sender<String>,
    state: Mutex<PeerState>,
    next_id: AtomicU64,
    events: ServerEvents,
    /// Set when the server said a list changed: it is read again before the next use.
    lists_stale: AtomicBool,
    /// Its questions being asked of a client right now.
    open_questions: Arc<AtomicUsize>,
    /// Set for a server that speaks only 2026-07-28: every request carries that revision's
    /// `_meta`, and there are no notifications to send it (a request ends with its answer).
    modern_only: AtomicBool,
}

#[derive(Default)]
struct PeerState {
    pending: HashMap<u64, Pending>,
    /// Why the connection is over, once it is.
    closed: Option<String>,
}

/// A request awaiting its answer, and the call it was made for (where its progress, log
/// messages and questions go).
struct Pending {
    answer: oneshot::Sender<Result<Value, McpError>>,
    caller: Option<RequestContext>,
}

/// Removes an unanswered request when its caller stops waiting, and tells the server it was
/// cancelled.
struct Awaiting<'a> {
    peer: &'a Peer,
    id: u64,
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        let was_pending = self.peer.state().pending.remove(&self.id).is_some();
        if was_pending && !self.peer.is_modern_only() {
            self.peer.send_now(notification(
                "notifications/cancelled",
                json!({ "requestId": self.id, "reason": "the caller cancelled the request" }),
            ));
        }
    }
}

impl Peer {
    pub fn new(server: Arc<str>, outbound: mpsc::Sender<String>, events: ServerEvents) -> Self {
        Peer {
            server,
            outbound,
            state: Mutex::new(PeerState::default()),
            next_id: AtomicU64::new(1),
            events,
            lists_stale: AtomicBool::new(false),
            open_questions: Arc::new(AtomicUsize::new(0)),
            modern_only: AtomicBool::new(false),
        }
    }

    /// From now on, speaks to the server in 2026-07-28 only (it refused `initialize`).
    pub fn speak_modern_only(&self) {
        self.modern_only.store(true, Ordering::Release);
    }

    fn is_modern_only(&self) -> bool {
        self.modern_only.load(Ordering::Acquire)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PeerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the connection is over (the process ended, or was cut).
    pub fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// Takes the "a list changed" mark: true once after each change the server announced.
    pub fn take_lists_stale(&self) -> bool {
        self.lists_stale.swap(false, Ordering::AcqRel)
    }

    /// Ends the connection: every request still waiting is answered with `reason`.
    pub fn close(&self, reason: String) {
        let pending = {
            let mut state = self.state();
            if state.closed.is_none() {
                state.closed = Some(reason.clone());
            }
            std::mem::take(&mut state.pending)
        };
        for (_, waiting) in pending {
            let _ = waiting.answer.send(Err(McpError::internal(reason.clone())));
        }
    }

    /// `initialize`, then `notifications/initialized`; the server's answer, or a clear error
    /// when it gives none within `timeout`.
    pub async fn initialize(&self, timeout: Duration) -> Result<InitializeResult, McpError> {
        let params = json!({
            "protocolVersion": CLIENT_PROTOCOL_VERSION,
            "capabilities": { "sampling": {}, "elicitation": {}, "roots": {} },
            "clientInfo": client_info(),
        });
        let answer = tokio::time::timeout(timeout, self.request("initialize", params, None))
            .await
            .map_err(|_| {
                McpError::internal(format!(
                    "the {} server did not answer initialize within {} s \
                     (hosted.initialize_timeout_secs); it was stopped",
                    self.server,
                    timeout.as_secs()
                ))
            })??;
        let result: InitializeResult = serde_json::from_value(answer).map_err(|err| {
            McpError::internal(format!(
                "the {} server answered initialize with an invalid result: {err}",
                self.server
            ))
        })?;
        self.notify("notifications/initialized", json!({})).await;
        Ok(result)
    }

    /// Whether the server also speaks 2026-07-28: it answers `server/discover` listing it.
    /// Then a 2026-07-28 caller's requests go to it in that revision (see
    /// [`modern_params`]), and its input requests come back to the caller as such.
    pub async fn speaks_modern(&self, timeout: Duration) -> bool {
        self.discover(timeout).await.is_some()
    }

    /// The server's `server/discover` result, if it lists 2026-07-28.
    pub async fn discover(&self, timeout: Duration) -> Option<Value> {
        let params = json!({ "_meta": {
            meta::PROTOCOL_VERSION: ProtocolVersion::MODERN.as_str(),
            meta::CLIENT_CAPABILITIES: {},
            meta::CLIENT_INFO: client_info(),
        }});
        let discovered =
            tokio::time::timeout(timeout, self.request("server/discover", params, None));
        let result = discovered.await.ok()?.ok()?;
        let versions = result.get("supportedVersions")?.as_array()?;
        versions
            .iter()
            .any(|v| v == ProtocolVersion::MODERN.as_str())
            .then_some(result)
    }

    /// Sends a request and waits for its answer. With a `caller`, the server's progress, log
    /// messages and questions during it go to that call; dropping the future cancels it at the
    /// server too.
    pub async fn request(
        &self,
        method: &str,
        mut params: Value,
        caller: Option<&RequestContext>,
    ) -> Result<Value, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.is_modern_only() {
            modern_meta(&mut params, caller);
        }
        if caller.is_some_and(|ctx| ctx.progress_token.is_some()) {
            // Our own id as the token: callers' tokens may collide, ours cannot.
            if let Some(params) = params.as_object_mut() {
                let meta = params.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert("progressToken".to_owned(), json!(id));
                }
            }
        }
        let (answer, answered) = oneshot::channel();
        {
            let mut state = self.state();
            if let Some(reason) = &state.closed {
                return Err(McpError::internal(reason.clone()));
            }
            state.pending.insert(
                id,
                Pending {
                    answer,
                    caller: caller.cloned(),
                },
            );
        }
        let awaiting = Awaiting { peer: self, id };
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.outbound.send(message.to_string()).await.is_err() {
            return Err(McpError::internal(format!(
                "the {} server's connection is closed",
                self.server
            )));
        }
        let outcome = answered.await;
        drop(awaiting);
        outcome.unwrap_or_else(|_| {
            Err(McpError::internal(format!(
                "the {} server's connection closed",
                self.server
            )))
        })
    }

    /// Sends a notification (waiting for room on the channel).
    pub async fn notify(&self, method: &str, params: Value) {
        if self.is_modern_only() {
            return;
        }
        let _ = self.outbound.send(notification(method, params)).await;
    }

    /// Sends without waiting; dropped when the channel is full (a cancellation the server
    /// would have received after a backlog anyway).
    fn send_now(&self, line: String) {
        let _ = self.outbound.try_send(line);
    }

    /// One message from the server.
    pub fn receive(self: &Arc<Self>, message: Value) {
        let Value::Object(mut message) = message else {
            tracing::debug!(server = %self.server, "hosted server sent a non-object message");
            return;
        };
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let params = message.remove("params").unwrap_or(Value::Null);
        match (method, message.remove("id")) {
            (Some(method), Some(id)) => self.answer_request(id, method, params),
            (Some(method), None) => self.on_notification(&method, params),
            (None, Some(id)) => self.on_response(&id, message),
            (None, None) => {
                tracing::debug!(server = %self.server, "hosted server sent an unknown message");
            }
        }
    }

    fn on_response(&self, id: &Value, mut message: serde_json::Map<String, Value>) {
        let Some(id) = id.as_u64() else {
            return;
        };
        let Some(waiting) = self.state().pending.remove(&id) else {
            return;
        };
        let outcome = match (message.remove("result"), message.remove("error")) {
            (Some(result), None) => Ok(result),
            (_, Some(error)) => Err(McpError::from_json(&error)),
            (None, None) => Err(McpError::internal(format!(
                "the {} server answered with neither a result nor an error",
                self.server
            ))),
        };
        let _ = waiting.answer.send(outcome);
    }

    /// The calls waiting on the server right now, most recent first.
    fn callers(&self) -> Vec<(u64, RequestContext)> {
        let mut callers: Vec<(u64, RequestContext)> = self
            .state()
            .pending
            .iter()
            .filter_map(|(id, waiting)| waiting.caller.clone().map(|ctx| (*id, ctx)))
            .collect();
        callers.sort_by_key(|caller| std::cmp::Reverse(caller.0));
        callers
    }

    fn on_notification(&self, method: &str, params: Value) {
        match method {
            "notifications/progress" => {
                let token = params.get("progressToken").and_then(Value::as_u64);
                let caller = token.and_then(|token| {
                    let state = self.state();
                    state.pending.get(&token)?.caller.clone()
                });
                if let (Some(ctx), Some(progress)) =
                    (caller, params.get("progress").and_then(Value::as_f64))
                {
                    let total = params.get("total").and_then(Value::as_f64);
                    let message = params.get("message").and_then(Value::as_str);
                    ctx.progress(progress, total, message);
                }
            }
            "notifications/message" => {
                let level: Option<LogLevel> = params
                    .get("level")
                    .cloned()
                    .and_then(|level| serde_json::from_value(level).ok());
                let Some(level) = level else {
                    return;
                };
                let logger = params.get("logger").and_then(Value::as_str);
                let data = params.get("data").cloned().unwrap_or(Value::Null);
                // stdio carries no request a log message belongs to: every running call of
                // this child (they are all its one user's) may see it, at its own level.
                for (_, ctx) in self.callers() {
                    ctx.log(level, logger, data.clone());
                }
            }
            "notifications/tools/list_changed" => self.list_changed(ServerEvent::ToolsListChanged),
            "notifications/prompts/list_changed" => {
                self.list_changed(ServerEvent::PromptsListChanged)
            }
            "notifications/resources/list_changed" => {
                self.list_changed(ServerEvent::ResourcesListChanged)
            }
            "notifications/resources/updated" => {
                if let Some(uri) = params.get("uri").and_then(Value::as_str) {
                    self.events.send(ServerEvent::ResourceUpdated {
                        uri: uri.to_owned(),
                    });
                }
            }
            _ => {}
        }
    }

    fn list_changed(&self, event: ServerEvent) {
        self.lists_stale.store(true, Ordering::Release);
        self.events.send(event);
    }

    /// A request from the server: `ping` answered here; sampling, elicitation and roots asked
    /// of the caller whose call is the most recent one running.
    fn answer_request(self: &Arc<Self>, id: Value, method: String, params: Value) {
        let asked: Option<&'static str> = match method.as_str() {
            "sampling/createMessage" => Some("sampling/createMessage"),
            "elicitation/create" => Some("elicitation/create"),
            "roots/list" => Some("roots/list"),
            _ => None,
        };
        let reply = move |outcome: Result<Value, McpError>| {
            let message = match outcome {
                Ok(result) => json!({ "jsonrpc": "2.0", "id": id.clone(), "result": result }),
                Err(error) => json!({ "jsonrpc": "2.0", "id": id.clone(), "error": error }),
            };
            message.to_string()
        };
        if method == "ping" {
            return self.send_now(reply(Ok(json!({}))));
        }
        let Some(asked) = asked else {
            return self.send_now(reply(Err(McpError::method_not_found(&method))));
        };
        let Some((call, ctx)) = self.callers().into_iter().next() else {
            return self.send_now(reply(Err(McpError::internal(format!(
                "{method} can only be relayed while a call of this server is running"
            )))));
        };
        if self.open_questions.fetch_add(1, Ordering::AcqRel) >= MAX_OPEN_QUESTIONS {
            self.open_questions.fetch_sub(1, Ordering::AcqRel);
            return self.send_now(reply(Err(McpError::busy(format!(
                "more than {MAX_OPEN_QUESTIONS} questions are already waiting for the client"
            )))));
        }
        let open = OpenQuestion(self.open_questions.clone());
        let peer = self.clone();
        tokio::spawn(async move {
            let _open = open;
            let key = format!("hosted-{call}");
            let outcome = match ctx.ask(&key, asked, params, None).await {
                Ok(answer) => Ok(answer),
                Err(CallError::Protocol(error)) => Err(error),
                Err(CallError::InputRequired(_)) => Err(McpError::internal(format!(
                    "{asked} cannot be relayed on a 2026-07-28 request"
                ))),
                Err(other) => Err(McpError::internal(other.to_string())),
            };
            let _ = peer.outbound.send(reply(outcome)).await;
        });
    }
}

/// Counts a question as open until its task ends.
struct OpenQuestion(Arc<AtomicUsize>);

impl Drop for OpenQuestion {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn client_info() -> Value {
    json!({ "name": "gumcp-actors", "version": env!("CARGO_PKG_VERSION") })
}

/// `params` as a 2026-07-28 request of `ctx`'s: the caller's version, capabilities and log
/// level in `_meta`, and the answers and state of a retry. The state is the server's own: the
/// runtime sealed it on the way out and opened it on the way back.
pub fn modern_params(mut params: Value, ctx: &RequestContext) -> Value {
    let Era::Modern {
        input_responses,
        request_state,
    } = &ctx.era
    else {
        return params;
    };
    let Some(fields) = params.as_object_mut() else {
        return params;
    };
    let meta = fields.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(
            meta::PROTOCOL_VERSION.to_owned(),
            json!(ctx.protocol.as_str()),
        );
        meta.insert(
            meta::CLIENT_CAPABILITIES.to_owned(),
            Value::Object((*ctx.client_capabilities).clone()),
        );
        meta.insert(meta::CLIENT_INFO.to_owned(), client_info());
        if let Some(level) = ctx.log_level {
            meta.insert(meta::LOG_LEVEL.to_owned(), json!(level));
        }
    }
    if !input_responses.is_empty() {
        fields.insert(
            "inputResponses".to_owned(),
            Value::Object((**input_responses).clone()),
        );
    }
    if let Some(state) = request_state {
        fields.insert("requestState".to_owned(), json!(state));
    }
    params
}

/// Gives a request to a server that speaks only 2026-07-28 the `_meta` that revision needs,
/// unless it has it (a 2026-07-28 caller's, see [`modern_params`]): the revision, the
/// caller's capabilities and log level (none for the runtime's own requests).
fn modern_meta(params: &mut Value, caller: Option<&RequestContext>) {
    if params.is_null() {
        *params = json!({});
    }
    let Some(fields) = params.as_object_mut() else {
        return;
    };
    let meta = fields.entry("_meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if meta.contains_key(meta::PROTOCOL_VERSION) {
        return;
    }
    let capabilities =
        caller.map_or_else(Default::default, |ctx| (*ctx.client_capabilities).clone());
    meta.insert(
        meta::PROTOCOL_VERSION.to_owned(),
        json!(ProtocolVersion::MODERN.as_str()),
    );
    meta.insert(
        meta::CLIENT_CAPABILITIES.to_owned(),
        Value::Object(capabilities),
    );
    meta.insert(meta::CLIENT_INFO.to_owned(), client_info());
    if let Some(level) = caller.and_then(|ctx| ctx.log_level) {
        meta.insert(meta::LOG_LEVEL.to_owned(), json!(level));
    }
}

fn notification(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
}
