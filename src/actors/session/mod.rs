//! The session actor: one per connection (a stdio pipe, a legacy SSE stream, a Streamable HTTP
//! session, or a stateless request that needs one). It owns that connection's protocol state —
//! negotiated version, client capabilities, log level, resource subscriptions,
//! `subscriptions/listen` streams, requests in flight (for cancellation) and server→client
//! requests awaiting an answer — and nothing else.
//!
//! Each request is answered either at once (lifecycle methods) or by a future spawned beside
//! the mailbox, so one slow tool never holds up a ping, a cancellation, or the next call.
//!
//! - this file: the actor, its state, and how each frame is answered;
//! - [`messages`]: what transports and tools send it, one handler each, and [`SessionHandle`],
//!   the actor as plain calls for the transports;
//! - [`listen`]: `subscriptions/listen` streams and the server events that feed them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;
use rmcp::model::JsonObject;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::host::{self, rejection, Host, Terms};
use super::outbox::Outbox;
use super::runtime::{Interest, Runtime};
use crate::auth::access::Caller;
use crate::metrics::Rejection;
use crate::protocol::dispatch;
use crate::protocol::error::McpError;
use crate::protocol::jsonrpc::{
    Frame, Message, Notification, Outgoing, Rejected, Request, RequestId, Response,
};
use crate::protocol::meta::{self, LogLevel, ModernMeta};
use crate::protocol::version::ProtocolVersion;
use crate::servers::context::{ClientLink, Era};

use listen::Listen;
use messages::SessionLink;
pub use messages::{
    AskClient, Close, Drain, Expect, Inbound, InboundTooLarge, OpenSession, SessionEnded,
    SessionHandle,
};

mod listen;
mod messages;

/// State that exists once `initialize` has been answered.
struct LegacyState {
    version: ProtocolVersion,
    client_capabilities: Arc<JsonObject>,
}

/// A request being worked on: its cancellation switch and, for single requests, the future
/// whose reply is dropped if the client cancels.
struct InFlight {
    cancellation: CancellationToken,
    task: Option<SpawnHandle>,
}

/// How a request is answered.
enum Answer {
    Now(Outgoing),
    Later(LocalBoxFuture<'static, Outgoing>, CancellationToken),
    /// Answered by its own follow-up (a listen is answered only when it ends).
    Pending,
}

/// The longest resource URI a session may subscribe to.
const MAX_SUBSCRIBED_URI_BYTES: usize = 8192;

pub struct SessionActor {
    /// `mcp.session`: server and user, for everything the session does.
    span: tracing::Span,
    /// The user's server, as this session's requests are served by it (and the runtime).
    host: Host,
    out: Outbox,
    legacy: Option<LegacyState>,
    log_level: Option<LogLevel>,
    resource_subscriptions: HashSet<String>,
    /// At a server that passes subscriptions and log levels on (a hosted server): the
    /// session's name there, which lets go of them when the session ends.
    interest: Option<Interest>,
    listens: HashMap<RequestId, Listen>,
    in_flight: HashMap<RequestId, InFlight>,
    awaiting_client: HashMap<RequestId, oneshot::Sender<Result<Value, McpError>>>,
    next_client_request: u64,
    watching_events: bool,
    draining: bool,
    on_stop: Option<oneshot::Sender<()>>,
    /// Every request is served by 2026-07-28 rules, whatever it looks like (a stateless HTTP
    /// request's session: `initialize` there is an unknown method, not a handshake).
    stateless: bool,
    /// The `Mcp-Param-*` headers of the frame being handled right now (set and taken within one
    /// `Inbound`), so the request they came with can check them once it knows the tool.
    frame_param_headers: Option<Vec<(String, Option<String>)>>,
}

impl SessionActor {
    /// A session for `caller` on `server_name` writing to `out`; `on_stop` fires when it ends.
    pub fn new(
        runtime: Runtime,
        server_name: &str,
        caller: &Caller,
        out: Outbox,
        on_stop: oneshot::Sender<()>,
    ) -> Self {
        let log_level = Some(runtime.settings.protocol.default_log_level);
        let host = Host::new(runtime, server_name, caller);
        let interest = host
            .passes_interest_on()
            .then(|| Interest::new(&host.runtime, &host.key));
        SessionActor {
            interest,
            span: tracing::info_span!(
                "mcp.session",
                server = server_name,
                user = %crate::telemetry::user_label(&caller.principal.user),
            ),
            log_level,
            host,
            out,
            legacy: None,
            resource_subscriptions: HashSet::new(),
            listens: HashMap::new(),
            in_flight: HashMap::new(),
            awaiting_client: HashMap::new(),
            next_client_request: 0,
            watching_events: false,
            draining: false,
            on_stop: Some(on_stop),
            stateless: false,
            frame_param_headers: None,
        }
    }

    /// Adds a resource subscription within the session's bounds: subscriptions are kept for the
    /// session's life, so their number and size are what a client could grow without end.
    fn subscribe(&mut self, uri: &str) -> Result<Value, McpError> {
        self.admit_subscription(uri)?;
        self.resource_subscriptions.insert(uri.to_owned());
        Ok(json!({}))
    }

    /// Whether the session may subscribe to `uri` (within its bounds).
    fn admit_subscription(&self, uri: &str) -> Result<(), McpError> {
        let limit = self
            .host
            .runtime
            .settings
            .protocol
            .max_subscriptions_per_session;
        if uri.len() > MAX_SUBSCRIBED_URI_BYTES {
            return Err(McpError::invalid_params(format!(
                "the resource URI is longer than {MAX_SUBSCRIBED_URI_BYTES} bytes"
            )));
        }
        if self.resource_subscriptions.len() >= limit && !self.resource_subscriptions.contains(uri)
        {
            self.host
                .runtime
                .metrics
                .rejected(Rejection::SubscriptionsPerSession);
            return Err(McpError::invalid_params(format!(
                "this session is subscribed to {limit} resources already \
                 (protocol.max_subscriptions_per_session); unsubscribe from some first"
            )));
        }
        Ok(())
    }

    /// Sends on the session-wide stream (server-initiated notifications).
    fn send(&self, message: Outgoing) {
        deliver(&self.out, message);
    }

    fn link(&self, out: &Outbox, ctx: &Context<Self>) -> Arc<dyn ClientLink> {
        Arc::new(SessionLink {
            out: out.clone(),
            session: ctx.address(),
        })
    }

    /// Handles one frame whose answers go to `out`; tells whether any answer will come.
    fn on_frame(&mut self, frame: Frame, out: &Outbox, ctx: &mut Context<Self>) -> Expect {
        match frame {
            Frame::Single(Ok(message)) => self.on_message(message, out, ctx),
            Frame::Single(Err(rejected)) => {
                deliver(out, rejection(rejected));
                Expect::Malformed
            }
            Frame::Batch(items) => self.on_batch(items, out, ctx),
        }
    }

    fn on_message(&mut self, message: Message, out: &Outbox, ctx: &mut Context<Self>) -> Expect {
        match message {
            Message::Request(request) => {
                let id = request.id.clone();
                match self.answer(request, out, ctx) {
                    Answer::Now(reply) => deliver(out, reply),
                    Answer::Later(reply, cancellation) => {
                        self.spawn_reply(id, reply, cancellation, out.clone(), ctx)
                    }
                    Answer::Pending => {}
                }
                Expect::Reply
            }
            Message::Notification(notification) => {
                self.on_notification(notification, ctx);
                Expect::Nothing
            }
            Message::Response(response) => {
                self.on_response(response);
                Expect::Nothing
            }
        }
    }

    /// Batches exist only in 2025-03-26: every member is answered, and the replies go out
    /// together as one array once all are done.
    fn on_batch(
        &mut self,
        items: Vec<Result<Message, Rejected>>,
        out: &Outbox,
        ctx: &mut Context<Self>,
    ) -> Expect {
        if !self
            .legacy
            .as_ref()
            .is_some_and(|l| l.version.allows_batches())
        {
            deliver(
                out,
                Outgoing::Error {
                    id: None,
                    error: McpError::invalid_request(
                        "JSON-RPC batches are only allowed with protocol version 2025-03-26",
                    ),
                },
            );
            return Expect::Reply;
        }
        let mut replies: Vec<LocalBoxFuture<'static, Outgoing>> = Vec::new();
        for item in items {
            match item {
                Err(rejected) => replies.push(FutureExt::boxed_local(futures::future::ready(
                    rejection(rejected),
                ))),
                Ok(Message::Request(request)) if request.method == "initialize" => {
                    replies.push(FutureExt::boxed_local(futures::future::ready(
                        Outgoing::Error {
                            id: Some(request.id),
                            error: McpError::invalid_request(
                                "initialize must not be part of a batch",
                            ),
                        },
                    )));
                }
                Ok(Message::Request(request)) => {
                    let id = request.id.clone();
                    match self.answer(request, out, ctx) {
                        Answer::Now(reply) => {
                            replies.push(FutureExt::boxed_local(futures::future::ready(reply)))
                        }
                        Answer::Later(reply, cancellation) => {
                            self.in_flight.insert(
                                id,
                                InFlight {
                                    cancellation,
                                    task: None,
                                },
                            );
                            replies.push(reply);
                        }
                        Answer::Pending => {}
                    }
                }
                Ok(other) => {
                    self.on_message(other, out, ctx);
                }
            }
        }
        if replies.is_empty() {
            return Expect::Nothing;
        }
        let out = out.clone();
        let all = join_all(replies)
            .into_actor(self)
            .map(move |replies, act, ctx| {
                for reply in &replies {
                    if let Outgoing::Result { id, .. } | Outgoing::Error { id: Some(id), .. } =
                        reply
                    {
                        act.in_flight.remove(id);
                    }
                }
                deliver(&out, Outgoing::Batch(replies));
                act.stop_if_drained(ctx);
            });
        ctx.spawn(all);
        Expect::Reply
    }

    fn spawn_reply(
        &mut self,
        id: RequestId,
        reply: LocalBoxFuture<'static, Outgoing>,
        cancellation: CancellationToken,
        out: Outbox,
        ctx: &mut Context<Self>,
    ) {
        let key = id.clone();
        let task = ctx.spawn(reply.into_actor(self).map(move |reply, act, ctx| {
            act.in_flight.remove(&key);
            deliver(&out, reply);
            act.stop_if_drained(ctx);
        }));
        self.in_flight.insert(
            id,
            InFlight {
                cancellation,
                task: Some(task),
            },
        );
    }

    fn answer(&mut self, request: Request, out: &Outbox, ctx: &mut Context<Self>) -> Answer {
        let Request { id, method, params } = request;
        if self.in_flight.contains_key(&id) || self.listens.contains_key(&id) {
            return Answer::Now(Outgoing::Error {
                id: Some(id.clone()),
                error: McpError::invalid_request(format!(
                    "request id {id} is already used by a request in flight"
                )),
            });
        }
        if self.draining {
            return Answer::Now(Outgoing::Error {
                id: Some(id),
                error: McpError::internal("the connection is closing"),
            });
        }
        if self.stateless || meta::is_modern_request(&method, params.as_ref()) {
            return self.answer_modern(id, method, params.unwrap_or_default(), out, ctx);
        }
        if method == "initialize" {
            return self.initialize(id, params.unwrap_or_default(), ctx);
        }
        if method == "ping" {
            return Answer::Now(Outgoing::reply(id, Ok(json!({}))));
        }
        let Some(legacy) = &self.legacy else {
            return Answer::Now(Outgoing::Error {
                id: Some(id),
                error: McpError::invalid_request(format!(
                    "the session is not initialized: send `initialize` before `{method}` (or use \
                     protocol 2026-07-28, which carries its version in `_meta` of every request)"
                )),
            });
        };
        let params = params.unwrap_or_default();
        match method.as_str() {
            "logging/setLevel" => match (self.set_level(&params), &self.interest) {
                (Ok(_), Some(interest)) => self.pass_on_level(id, interest.holder(), out, ctx),
                (outcome, _) => Answer::Now(Outgoing::reply(id, outcome)),
            },
            "resources/subscribe" | "resources/unsubscribe" if self.interest.is_some() => {
                self.pass_on_subscription(id, &method, &params, out, ctx)
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let outcome = match params.get("uri").and_then(Value::as_str) {
                    Some(uri) if method == "resources/subscribe" => self.subscribe(uri),
                    Some(uri) => {
                        self.resource_subscriptions.remove(uri);
                        Ok(json!({}))
                    }
                    None => Err(McpError::invalid_params("missing required parameter `uri`")),
                };
                Answer::Now(Outgoing::reply(id, outcome))
            }
            "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel"
                if legacy.version.has_legacy_tasks() =>
            {
                match self.host.answer_legacy_task(id, &method, &params) {
                    host::Answer::Now(reply) => Answer::Now(reply),
                    host::Answer::Later(reply) => Answer::Later(reply, CancellationToken::new()),
                }
            }
            server_method if dispatch::is_server_method(server_method) => {
                let terms = Terms {
                    protocol: legacy.version,
                    client_capabilities: legacy.client_capabilities.clone(),
                    era: Era::Legacy,
                    log_level: self.log_level,
                    param_headers: None,
                    session_link: Some(self.link(&self.out, ctx)),
                };
                self.serve(id, method, params, terms, out, ctx)
            }
            _ => Answer::Now(Outgoing::reply(
                id,
                Err(McpError::method_not_found(&method)),
            )),
        }
    }

    /// The error for one request too many in flight on this session, if it is one.
    fn too_busy(&self) -> Option<McpError> {
        let limit = self
            .host
            .runtime
            .settings
            .protocol
            .max_in_flight_per_session;
        if self.in_flight.len() < limit {
            return None;
        }
        self.host
            .runtime
            .metrics
            .rejected(Rejection::InFlightPerSession);
        Some(McpError::busy(format!(
            "too many requests in flight on this session ({limit} at once, \
             protocol.max_in_flight_per_session); retry when some have been answered"
        )))
    }

    /// Runs a server method beside the mailbox and shapes its reply for the era.
    fn serve(
        &self,
        id: RequestId,
        method: String,
        params: JsonObject,
        terms: Terms,
        out: &Outbox,
        ctx: &Context<Self>,
    ) -> Answer {
        if let Some(busy) = self.too_busy() {
            return Answer::Now(Outgoing::reply(id, Err(busy)));
        }
        let cancellation = CancellationToken::new();
        let link = self.link(out, ctx);
        let reply = self
            .host
            .serve(id, method, params, terms, cancellation.clone(), link);
        Answer::Later(reply.boxed_local(), cancellation)
    }

    fn initialize(&mut self, id: RequestId, params: JsonObject, ctx: &mut Context<Self>) -> Answer {
        if self.legacy.is_some() {
            return Answer::Now(Outgoing::Error {
                id: Some(id),
                error: McpError::invalid_request(
                    "initialize was already received on this connection",
                ),
            });
        }
        let requested = match params.get("protocolVersion") {
            Some(Value::String(version)) => version.clone(),
            _ => {
                return Answer::Now(Outgoing::Error {
                    id: Some(id),
                    error: McpError::invalid_params(
                        "initialize needs `protocolVersion` (a string such as \"2025-11-25\")",
                    ),
                })
            }
        };
        let client_capabilities = match params.get("capabilities") {
            None => JsonObject::new(),
            Some(Value::Object(caps)) => caps.clone(),
            Some(_) => {
                return Answer::Now(Outgoing::Error {
                    id: Some(id),
                    error: McpError::invalid_params("`capabilities` must be an object"),
                })
            }
        };
        let version = ProtocolVersion::negotiate(&requested);
        self.legacy = Some(LegacyState {
            version,
            client_capabilities: Arc::new(client_capabilities),
        });
        self.watch_events(ctx);
        let server = self.host.server();
        let reply = async move {
            let outcome = async {
                let desc = server.await?.describe().await?;
                Ok(dispatch::initialize_result(&desc, version))
            }
            .await;
            Outgoing::reply(id, outcome)
        };
        Answer::Later(reply.boxed_local(), CancellationToken::new())
    }

    fn set_level(&mut self, params: &JsonObject) -> Result<Value, McpError> {
        let level = params
            .get("level")
            .ok_or_else(|| McpError::invalid_params("missing required parameter `level`"))?;
        self.log_level = Some(LogLevel::parse(level)?);
        Ok(json!({}))
    }

    fn answer_modern(
        &mut self,
        id: RequestId,
        method: String,
        params: JsonObject,
        out: &Outbox,
        ctx: &mut Context<Self>,
    ) -> Answer {
        if method == "subscriptions/listen" {
            if let Err(error) = ModernMeta::parse(Some(&params)) {
                return Answer::Now(Outgoing::reply(id, Err(error)));
            }
            return self.listen(id, &params, out.clone(), ctx);
        }
        if dispatch::is_server_method(&method) {
            if let Some(busy) = self.too_busy() {
                return Answer::Now(Outgoing::reply(id, Err(busy)));
            }
        }
        let cancellation = CancellationToken::new();
        let link = self.link(out, ctx);
        let param_headers = self.frame_param_headers.take();
        match self.host.answer_modern(
            id,
            method,
            params,
            param_headers,
            cancellation.clone(),
            link,
        ) {
            host::Answer::Now(reply) => Answer::Now(reply),
            host::Answer::Later(reply) => Answer::Later(reply, cancellation),
        }
    }

    fn on_notification(&mut self, notification: Notification, ctx: &mut Context<Self>) {
        match notification.method.as_str() {
            "notifications/cancelled" => {
                let id = notification
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(RequestId::from_json);
                if let Some(id) = id {
                    self.cancel(&id, ctx);
                }
            }
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(method = other, "ignoring client notification"),
        }
    }

    fn cancel(&mut self, id: &RequestId, ctx: &mut Context<Self>) {
        if let Some(in_flight) = self.in_flight.remove(id) {
            in_flight.cancellation.cancel();
            if let Some(task) = in_flight.task {
                ctx.cancel_future(task);
            }
            tracing::debug!(request = %id, "request cancelled by the client");
        }
        self.listens.remove(id);
        self.stop_if_drained(ctx);
    }

    fn on_response(&mut self, response: Response) {
        match self.awaiting_client.remove(&response.id) {
            Some(waiter) => {
                let _ = waiter.send(response.outcome);
            }
            None => tracing::debug!(id = %response.id, "ignoring a response to no pending request"),
        }
    }

    fn stop_if_drained(&mut self, ctx: &mut Context<Self>) {
        if self.draining && self.in_flight.is_empty() {
            ctx.stop();
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.host
            .runtime
            .metrics
            .live_actors
            .with_label_values(&["session"])
            .inc();
        // A client that stopped reading its stream is gone as far as this session can tell.
        let overflow = self.out.overflow();
        ctx.spawn(
            async move { overflow.cancelled().await }
                .into_actor(self)
                .map(|(), _, ctx| ctx.stop()),
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.host
            .runtime
            .metrics
            .live_actors
            .with_label_values(&["session"])
            .dec();
        for (_, in_flight) in self.in_flight.drain() {
            in_flight.cancellation.cancel();
        }
        if let Some(on_stop) = self.on_stop.take() {
            let _ = on_stop.send(());
        }
    }
}

/// Queues a message for the transport. A closed outbox means that stream is gone (the session
/// or request is being torn down), so the message has no one to go to.
fn deliver(out: &Outbox, message: Outgoing) {
    out.push(message);
}
