//! What transports and tools send a session actor — one message each, with its handler — and
//! [`SessionHandle`], the actor as plain calls for the transports.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;

use super::{deliver, SessionActor};
use crate::actors::outbox::Outbox;
use crate::actors::runtime::Runtime;
use crate::auth::access::Caller;
use crate::metrics::Rejection;
use crate::protocol::error::McpError;
use crate::protocol::headers::MirroredHeaders;
use crate::protocol::jsonrpc::{parse_frame, Frame, Message, Outgoing, RequestId};
use crate::servers::context::ClientLink;

/// Whether a frame will be answered: a request is; notifications and the client's responses
/// are not (HTTP answers 202 for those). A frame that is not JSON-RPC at all, or whose
/// transport headers contradict it, is answered with its error at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub enum Expect {
    Reply,
    Nothing,
    Malformed,
    /// Refused by the transport rules (the mirrored headers); HTTP says 400.
    Refused,
}

/// One frame from the transport (a stdio line, an HTTP body).
#[derive(Message)]
#[rtype(result = "Expect")]
pub struct Inbound {
    pub bytes: Vec<u8>,
    /// Where this frame's answers (and the notifications and requests of its requests) go;
    /// `None` for the session-wide stream. Streamable HTTP gives each POST its own.
    pub reply_to: Option<Outbox>,
    /// 2026-07-28 Streamable HTTP headers that must agree with the body of a request.
    pub mirrored: Option<MirroredHeaders>,
    /// The span of the HTTP request or stdio frame that carried it.
    pub span: tracing::Span,
}

impl Handler<Inbound> for SessionActor {
    type Result = Expect;

    fn handle(&mut self, inbound: Inbound, ctx: &mut Self::Context) -> Expect {
        // The frame's calls become children of the request or frame that carried it, inside
        // the session's span.
        let _session = self.span.clone().entered();
        let _frame = inbound.span.entered();
        let out = inbound.reply_to.unwrap_or_else(|| self.out.clone());
        let frame = parse_frame(&inbound.bytes);
        self.stateless |= inbound.mirrored.is_some();
        if let (Some(headers), Frame::Single(Ok(Message::Request(request)))) =
            (inbound.mirrored, &frame)
        {
            if let Err(error) = headers.check(&request.method, request.params.as_ref()) {
                deliver(&out, Outgoing::reply(request.id.clone(), Err(error)));
                return Expect::Refused;
            }
            if request.method == "tools/call" {
                self.frame_param_headers = Some(headers.params);
            }
        }
        let expect = self.on_frame(frame, &out, ctx);
        self.frame_param_headers = None;
        expect
    }
}

/// The transport dropped a frame over the size limit; the client is told, the session goes on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InboundTooLarge {
    pub limit: usize,
}

impl Handler<InboundTooLarge> for SessionActor {
    type Result = ();

    fn handle(&mut self, too_large: InboundTooLarge, _: &mut Self::Context) {
        self.host
            .runtime
            .metrics
            .rejected(Rejection::MessageTooLarge);
        self.send(Outgoing::Error {
            id: None,
            error: McpError::invalid_request(format!(
                "message too large: the limit is {} bytes (protocol.max_message_bytes)",
                too_large.limit
            )),
        });
    }
}

/// The client will send nothing more: answer what is in flight (within `grace`), then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub grace: Duration,
}

impl Handler<Drain> for SessionActor {
    type Result = ();

    fn handle(&mut self, drain: Drain, ctx: &mut Self::Context) {
        self.draining = true;
        self.close_listens();
        self.stop_if_drained(ctx);
        ctx.run_later(drain.grace, |act, ctx| {
            if !act.in_flight.is_empty() {
                tracing::warn!(
                    requests = act.in_flight.len(),
                    "closing with requests still in flight after the grace period"
                );
            }
            ctx.stop();
        });
    }
}

/// The connection is gone: nothing can be answered any more, so everything in flight is
/// cancelled (the actor's `stopped` does that) and the session ends at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

impl Handler<Close> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// A server→client request from a tool (sampling, elicitation, roots), legacy sessions only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AskClient {
    pub method: &'static str,
    pub params: Value,
    /// The stream of the request that asks (its POST's response stream over HTTP).
    pub out: Outbox,
    pub reply: oneshot::Sender<Result<Value, McpError>>,
}

impl Handler<AskClient> for SessionActor {
    type Result = ();

    fn handle(&mut self, ask: AskClient, ctx: &mut Self::Context) {
        if self.legacy.is_none() {
            let _ = ask.reply.send(Err(McpError::internal(
                "requests to the client need an initialized session",
            )));
            return;
        }
        self.next_client_request += 1;
        let id = RequestId::String(Arc::from(format!("gumcp-{}", self.next_client_request)));
        self.awaiting_client.insert(id.clone(), ask.reply);
        deliver(
            &ask.out,
            Outgoing::Request {
                id: id.clone(),
                method: ask.method,
                params: ask.params,
            },
        );
        let timeout = Duration::from_secs(
            self.host
                .runtime
                .settings
                .protocol
                .client_request_timeout_secs,
        );
        ctx.run_later(timeout, move |act, _| {
            if let Some(waiter) = act.awaiting_client.remove(&id) {
                let _ = waiter.send(Err(McpError::internal(format!(
                    "the client did not answer {} within {} s",
                    ask.method,
                    timeout.as_secs()
                ))));
            }
        });
    }
}

/// A request's way back to its session: notifications straight to the outbox (so they precede
/// the reply), requests through the session, which matches the client's answer to them.
pub(super) struct SessionLink {
    pub(super) out: Outbox,
    pub(super) session: Addr<SessionActor>,
}

impl ClientLink for SessionLink {
    fn notify(&self, message: Outgoing) {
        deliver(&self.out, message);
    }

    fn request(
        &self,
        method: &'static str,
        params: Value,
    ) -> BoxFuture<'static, Result<Value, McpError>> {
        let session = self.session.clone();
        let out = self.out.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            session.do_send(AskClient {
                method,
                params,
                out,
                reply,
            });
            answer.await.map_err(|_| {
                McpError::internal("the connection closed before the client answered")
            })?
        })
    }
}

/// A session just started, and the signal of its end.
pub struct OpenSession {
    pub handle: SessionHandle,
    pub stopped: oneshot::Receiver<()>,
}

/// A session actor, as plain calls for the transports.
#[derive(Clone)]
pub struct SessionHandle {
    addr: Addr<SessionActor>,
}

/// The session has stopped; nothing more can be delivered to it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionEnded;

impl SessionHandle {
    /// Starts a session actor for `caller` on `server` on the current thread; its messages go
    /// to `out`, and `stopped` resolves once it has stopped.
    pub fn open(runtime: &Runtime, server: &str, caller: &Caller, out: Outbox) -> OpenSession {
        let (on_stop, stopped) = oneshot::channel();
        let addr = SessionActor::new(runtime.clone(), server, caller, out, on_stop).start();
        OpenSession {
            handle: SessionHandle { addr },
            stopped,
        }
    }
    /// Delivers one frame; its answers go to `reply_to`, or the session's own stream.
    pub async fn deliver(
        &self,
        bytes: Vec<u8>,
        reply_to: Option<Outbox>,
        mirrored: Option<MirroredHeaders>,
    ) -> Result<Expect, SessionEnded> {
        self.addr
            .send(Inbound {
                bytes,
                reply_to,
                mirrored,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| SessionEnded)
    }

    /// Tells the client a frame was dropped for being over `limit` bytes.
    pub async fn too_large(&self, limit: usize) -> Result<(), SessionEnded> {
        self.addr
            .send(InboundTooLarge { limit })
            .await
            .map_err(|_| SessionEnded)
    }

    /// No more input will come: answer what is in flight within `grace`, then stop.
    pub fn drain(&self, grace: std::time::Duration) {
        self.addr.do_send(Drain { grace });
    }

    /// The connection is gone: cancel everything in flight and stop now.
    pub fn close(&self) {
        self.addr.do_send(Close);
    }

    pub fn is_live(&self) -> bool {
        self.addr.connected()
    }
}
