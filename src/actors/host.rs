//! Serving one request of a server method, whatever it came on. A session actor serves its
//! connection's requests through a [`Host`]; so does a 2026-07-28 HTTP request, which has no
//! connection state at all and so needs no actor ([`Host::answer_stateless`]).

use std::future::Future;
use std::sync::Arc;

use futures::future::{BoxFuture, LocalBoxFuture};
use futures::FutureExt;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::account_link::{self, LinkSlot, LinkTarget};

mod task_calls;

use super::outbox::Outbox;
use super::runtime::{Runtime, ServerHandle};
use super::server_core::ServerKey;
use crate::audit::AuditRecord;
use crate::auth::access::Caller;
use crate::auth::principal::{KeyDigest, PresentedKey};
use crate::protocol::dispatch::{self, Listing, SealedFor, ServerMethod};
use crate::protocol::error::McpError;
use crate::protocol::headers::MirroredHeaders;
use crate::protocol::jsonrpc::{parse_frame, Frame, Message, Outgoing, Rejected, RequestId};
use crate::protocol::meta::{self, LogLevel, ModernMeta};
use crate::protocol::tasks;
use crate::protocol::version::ProtocolVersion;
use crate::servers::context::{ClientLink, CredentialSource, Era};
use crate::servers::kit::tool_error;
use crate::servers::manifest::{AuthKind, ServerKind};
use crate::servers::{CallError, RequestContext};
use crate::telemetry;

/// One user's server as its requests are served: where calls go, the credentials they use,
/// and the `serverInfo` 2026-07-28 results carry.
#[derive(Clone)]
pub struct Host {
    pub runtime: Runtime,
    pub key: ServerKey,
    credentials: Arc<dyn CredentialSource>,
    /// The upstream service whose account the server uses, when it needs one the user may
    /// connect on the connect pages (a user merely claimed by a key cannot).
    account_service: Option<Arc<str>>,
    server_info: Arc<Value>,
    /// Who the audit log says called: how they were let in, and their key's digest.
    via: &'static str,
    key_digest: Option<KeyDigest>,
    /// Whether the server must be readied for each caller (a hosted server's child); code
    /// compiled in never needs it, so its hot path skips the step.
    prepares: bool,
}

/// What differs between the eras when a server method is served.
pub struct Terms {
    pub protocol: ProtocolVersion,
    pub client_capabilities: Arc<JsonObject>,
    pub era: Era,
    pub log_level: Option<LogLevel>,
    /// `Mcp-Param-*` headers a 2026-07-28 HTTP `tools/call` came with, to check against the
    /// tool's `x-mcp-header` annotations.
    pub param_headers: Option<Vec<(String, Option<String>)>>,
    /// The session's own stream (server-initiated messages), where a 2025-11-25 task's status
    /// notifications and questions go once the request that made it has been answered.
    pub session_link: Option<Arc<dyn ClientLink>>,
}

/// How a request is answered.
pub enum Answer {
    Now(Outgoing),
    Later(LocalBoxFuture<'static, Outgoing>),
}

/// How a 2026-07-28 HTTP request is answered without a session.
pub enum StatelessAnswer {
    /// Its reply, ready now (a malformed frame, an unknown method, bad `_meta`).
    Now(Outgoing),
    /// The transport headers contradict the body: HTTP 400 with this error.
    Refused(Outgoing),
    /// Its reply, once the server has answered; notifications before it go to the outbox.
    Later(LocalBoxFuture<'static, Outgoing>),
    /// Needs a session of its own (a listen, notifications, responses, batches): the frame,
    /// handed back.
    NeedsSession(Vec<u8>),
}

impl Host {
    pub fn new(runtime: Runtime, server: &str, caller: &Caller) -> Host {
        let (server, service, server_info, needs_account, prepares) =
            match runtime.registry.get(server) {
                Some(entry) => (
                    entry.name.clone(),
                    entry.auth_service.clone(),
                    entry.server_info.clone(),
                    entry.manifest.auth.kind != AuthKind::None,
                    matches!(entry.manifest.kind, ServerKind::Stdio | ServerKind::Mcp),
                ),
                None => {
                    let name: Arc<str> = Arc::from(server);
                    let info = json!({ "name": server, "version": "unknown" });
                    (name.clone(), name, Arc::new(info), false, false)
                }
            };
        let principal = caller.principal.clone();
        let account_service =
            (needs_account && principal.partition.is_none()).then(|| service.clone());
        let credentials = runtime
            .auth
            .source(service, principal.user.clone(), caller.key.clone());
        Host {
            runtime,
            key: ServerKey { server, principal },
            credentials,
            account_service,
            server_info,
            via: caller.via,
            key_digest: caller.key.as_ref().map(PresentedKey::digest),
            prepares,
        }
    }

    /// Whether the server passes sessions' subscriptions and log levels on (a hosted
    /// server's child): only then do they go beyond the session.
    pub fn passes_interest_on(&self) -> bool {
        self.prepares
    }

    /// A future that finds the user's server (in the directory, or started), readies it for
    /// this caller's credentials (a hosted server's child) and hands it back. A missing
    /// account leaves a hosted server unready rather than failing: what describes the server
    /// (`initialize`, `server/discover`) still answers, and the requests that need the
    /// account answer with its connect link ([`Host::serve`]).
    pub fn server(&self) -> impl Future<Output = Result<ServerHandle, McpError>> {
        let prepared = self.prepared(self.credentials.clone());
        async move {
            match prepared.await {
                Ok(server) | Err((Some(server), CallError::Account(_))) => Ok(server),
                Err((_, CallError::Protocol(error))) => Err(error),
                Err((_, other)) => Err(McpError::internal(other.to_string())),
            }
        }
    }

    /// The user's server readied with `credentials`; a failure to ready it comes with the
    /// server, when one was found.
    fn prepared(
        &self,
        credentials: Arc<dyn CredentialSource>,
    ) -> impl Future<Output = Result<ServerHandle, (Option<ServerHandle>, CallError)>> {
        let runtime = self.runtime.clone();
        let key = self.key.clone();
        let prepares = self.prepares;
        async move {
            let mut server = runtime
                .server_of(key)
                .await
                .map_err(|error| (None, error.into()))?;
            if prepares {
                if let Err(error) = server.prepare(&credentials).await {
                    return Err((Some(server), error));
                }
            }
            Ok(server)
        }
    }

    /// Serves a server method and shapes its reply for the era; counts it in the metrics. The
    /// request goes down once — parsed by the protocol layer (pure), called on the user's
    /// server — and its answer comes back once, paged or shaped by the protocol layer (pure).
    pub fn serve(
        &self,
        id: RequestId,
        method: String,
        params: JsonObject,
        terms: Terms,
        cancellation: CancellationToken,
        link: Arc<dyn ClientLink>,
    ) -> impl Future<Output = Outgoing> + 'static {
        let mut link_slot = LinkSlot::default();
        let credentials = match &self.account_service {
            Some(service) => account_link::linked(
                self.credentials.clone(),
                LinkTarget {
                    runtime: self.runtime.clone(),
                    service: service.clone(),
                    server: self.key.server.clone(),
                    user: self.key.principal.user.clone(),
                },
                terms.protocol,
                &terms.client_capabilities,
                &terms.era,
                link.clone(),
                &mut link_slot,
            ),
            None => self.credentials.clone(),
        };
        let request_ctx = RequestContext {
            user_id: self.key.principal.user.clone(),
            protocol: terms.protocol,
            client_capabilities: terms.client_capabilities,
            era: terms.era,
            progress_token: meta::progress_token(Some(&params)),
            log_level: terms.log_level,
            cancellation,
            link,
            credentials,
        };
        let span = tracing::info_span!(
            "mcp.call",
            server = %self.key.server,
            method = %method,
            tool = tracing::field::Empty,
            user = %telemetry::user_label(&self.key.principal.user),
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        if let Some(Value::Object(meta)) = params.get("_meta") {
            telemetry::adopt_parent(&span, |name| meta.get(name).and_then(Value::as_str));
        }
        let task_mode =
            task_calls::TaskMode::of(&method, &params, &request_ctx, terms.session_link);
        let parsed = ServerMethod::parse(&method, params);
        let target = parsed
            .as_ref()
            .map(|call| call.target().to_owned())
            .unwrap_or_default();
        span.record("tool", target.as_str());
        let modern = terms.protocol.is_modern();
        let server = self.prepared(request_ctx.credentials.clone());
        let host = self.clone();
        let param_headers = terms.param_headers;
        let call_span = span.clone();
        async move {
            let started = std::time::Instant::now();
            let outcome = async {
                let call = parsed?;
                let mut server = match server.await {
                    Ok(server) => server,
                    Err((_, error)) => {
                        let result = host.unready(&method, &call, error, &link_slot, modern)?;
                        return Ok(host.finish(result, &method, modern));
                    }
                };
                if let (Some(headers), ServerMethod::CallTool { name, arguments }) =
                    (&param_headers, &call)
                {
                    check_param_headers(&mut server, name, arguments, headers).await?;
                }
                let result = match (call, task_mode?) {
                    (ServerMethod::CallTool { name, arguments }, Some(mode)) => {
                        let call = (name, arguments);
                        host.call_tool_in_mode(&mut server, call, request_ctx, &link_slot, mode)
                            .await?
                    }
                    (call, _) => {
                        let asked = (method.as_str(), target.as_str());
                        host.call(&mut server, asked, call, request_ctx, &link_slot)
                            .await?
                    }
                };
                Ok(host.finish(result, &method, modern))
            }
            .await;
            host.record(&method, &target, &outcome, started, &call_span);
            Outgoing::reply(id, outcome)
        }
        .instrument(span)
    }

    /// Asks the user's server for `call` and turns its answer into the raw result (before the
    /// era's finish): listings paged, call outcomes shaped, input requests sealed to this
    /// server, principal, method and target (`asked`: the method and the target the caller
    /// already read off the request, so the call path names them once).
    async fn call(
        &self,
        server: &mut ServerHandle,
        (method, target): (&str, &str),
        call: ServerMethod,
        ctx: RequestContext,
        link_slot: &LinkSlot,
    ) -> Result<Value, McpError> {
        let settings = &self.runtime.settings.protocol;
        let modern = ctx.protocol.is_modern();
        let subject = self.key.principal.seal_subject();
        let to = SealedFor {
            server: &self.key.server,
            user: &subject,
            method,
        };
        let seal = &self.runtime.seal;
        match call {
            ServerMethod::List { listing, start } => match listing {
                Listing::Tools => {
                    let mut page =
                        dispatch::page(&server.tools().await?, listing, start, settings)?;
                    let names: Vec<String> = page["tools"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
                        .collect();
                    let mut supports = std::collections::HashMap::new();
                    for name in names {
                        let support = server.task_support(&name).await?;
                        supports.insert(name, support);
                    }
                    tasks::add_execution(&mut page, |name| {
                        supports.get(name).copied().unwrap_or_default()
                    });
                    Ok(page)
                }
                Listing::Resources => {
                    let resources = server.resources(ctx).await.map_err(|err| match err {
                        CallError::Protocol(error) => error,
                        other => McpError::internal(other.to_string()),
                    })?;
                    dispatch::page(&resources, listing, start, settings)
                }
                Listing::ResourceTemplates => dispatch::page(
                    &server.resource_templates().await?,
                    listing,
                    start,
                    settings,
                ),
                Listing::Prompts => {
                    dispatch::page(&server.prompts().await?, listing, start, settings)
                }
            },
            ServerMethod::CallTool { name, arguments } => {
                let outcome = link_slot.answer(server.call_tool(name, arguments, ctx).await);
                dispatch::shape(outcome, &to, target, modern, seal)
            }
            ServerMethod::ReadResource { uri } => {
                let outcome = link_slot.answer(server.read_resource(uri, ctx).await);
                dispatch::shape(outcome, &to, target, modern, seal)
            }
            ServerMethod::GetPrompt { name, arguments } => {
                let outcome = link_slot.answer(server.get_prompt(name, arguments, ctx).await);
                dispatch::shape(outcome, &to, target, modern, seal)
            }
            ServerMethod::Complete(request) => {
                let outcome = server.complete(*request, ctx).await;
                dispatch::shape(outcome, &to, target, modern, seal)
            }
        }
    }

    /// A raw result as the era sends it.
    fn finish(&self, result: Value, method: &str, modern: bool) -> Value {
        if modern {
            let settings = &self.runtime.settings.protocol;
            dispatch::finish_modern(result, method, &self.server_info, settings)
        } else {
            dispatch::finish_legacy(result)
        }
    }

    /// The raw result of `call` when the server could not be readied for it (a hosted
    /// server's child): a missing account answered as a server that reads its credentials in
    /// the call answers it — the connect link as the request's protocol and client carry it,
    /// or the tool's error naming it; listings get the error naming it.
    fn unready(
        &self,
        method: &str,
        call: &ServerMethod,
        error: CallError,
        link_slot: &LinkSlot,
        modern: bool,
    ) -> Result<Value, McpError> {
        let outcome: Result<CallToolResult, CallError> = match call {
            ServerMethod::CallTool { .. }
            | ServerMethod::ReadResource { .. }
            | ServerMethod::GetPrompt { .. } => link_slot.answer(Err(error)),
            _ => Err(error),
        };
        let outcome = match (call, outcome) {
            (ServerMethod::CallTool { .. }, Err(CallError::Account(error))) => {
                Ok(tool_error(error.to_string()))
            }
            (_, outcome) => outcome,
        };
        let subject = self.key.principal.seal_subject();
        let to = SealedFor {
            server: &self.key.server,
            user: &subject,
            method,
        };
        dispatch::shape(outcome, &to, call.target(), modern, &self.runtime.seal)
    }

    /// `server/discover`: the server's versions, capabilities and instructions.
    pub fn discover(&self, id: RequestId) -> impl Future<Output = Outgoing> + 'static {
        let server = self.server();
        let host = self.clone();
        async move {
            let outcome = async {
                let desc = server.await?.describe().await?;
                let result = dispatch::discover_result(&desc);
                Ok(dispatch::finish_modern(
                    result,
                    "server/discover",
                    &host.server_info,
                    &host.runtime.settings.protocol,
                ))
            }
            .await;
            Outgoing::reply(id, outcome)
        }
    }

    /// A 2026-07-28 request other than `subscriptions/listen`: served from its own `_meta`.
    pub fn answer_modern(
        &self,
        id: RequestId,
        method: String,
        params: JsonObject,
        param_headers: Option<Vec<(String, Option<String>)>>,
        cancellation: CancellationToken,
        link: Arc<dyn ClientLink>,
    ) -> Answer {
        let meta = match ModernMeta::parse(Some(&params)) {
            Ok(meta) => meta,
            Err(error) => return Answer::Now(Outgoing::reply(id, Err(error))),
        };
        match method.as_str() {
            "server/discover" => Answer::Later(self.discover(id).boxed_local()),
            "tasks/get" | "tasks/update" | "tasks/cancel" => {
                let outcome = if tasks::declares_extension(&meta.client_capabilities) {
                    self.modern_task_method(&method, &params)
                } else {
                    Err(tasks::extension_required())
                };
                let settings = &self.runtime.settings.protocol;
                let outcome = outcome.map(|result| {
                    dispatch::finish_modern(result, &method, &self.server_info, settings)
                });
                self.count_task_method(&method, &outcome);
                Answer::Now(Outgoing::reply(id, outcome))
            }
            server_method if dispatch::is_server_method(server_method) => {
                let sealed_for = SealedFor {
                    server: &self.key.server,
                    user: &self.key.principal.seal_subject(),
                    method: &method,
                };
                let era = match dispatch::modern_era(&params, &sealed_for, &self.runtime.seal) {
                    Ok(era) => era,
                    Err(error) => return Answer::Now(Outgoing::reply(id, Err(error))),
                };
                let terms = Terms {
                    protocol: meta.version,
                    client_capabilities: Arc::new(meta.client_capabilities),
                    era,
                    log_level: meta.log_level,
                    param_headers,
                    session_link: None,
                };
                let reply = self.serve(id, method, params, terms, cancellation, link);
                Answer::Later(reply.boxed_local())
            }
            _ => Answer::Now(Outgoing::reply(
                id,
                Err(McpError::method_not_found(&method)),
            )),
        }
    }

    /// One 2026-07-28 HTTP request, answered without a session when it is a single request:
    /// its notifications go to `out`, and `cancellation` stops it (the client left).
    pub fn answer_stateless(
        &self,
        bytes: Vec<u8>,
        mirrored: &MirroredHeaders,
        out: &Outbox,
        cancellation: CancellationToken,
    ) -> StatelessAnswer {
        let request = match parse_frame(&bytes) {
            Frame::Single(Ok(Message::Request(request)))
                if request.method != "subscriptions/listen" =>
            {
                request
            }
            Frame::Single(Err(rejected)) => return StatelessAnswer::Now(rejection(rejected)),
            _ => return StatelessAnswer::NeedsSession(bytes),
        };
        if let Err(error) = mirrored.check(&request.method, request.params.as_ref()) {
            return StatelessAnswer::Refused(Outgoing::reply(request.id, Err(error)));
        }
        let param_headers = (request.method == "tools/call").then(|| mirrored.params.clone());
        let link = Arc::new(StatelessLink { out: out.clone() });
        let params = request.params.unwrap_or_default();
        match self.answer_modern(
            request.id,
            request.method,
            params,
            param_headers,
            cancellation,
            link,
        ) {
            Answer::Now(reply) => StatelessAnswer::Now(reply),
            Answer::Later(reply) => StatelessAnswer::Later(reply),
        }
    }

    /// Counts an answered server method and its time, by outcome; closes its span and writes
    /// its audit record.
    fn record(
        &self,
        method: &str,
        target: &str,
        outcome: &Result<Value, McpError>,
        started: std::time::Instant,
        span: &tracing::Span,
    ) {
        let outcome_label = match outcome {
            Err(_) => "error",
            Ok(result) if result.get("isError") == Some(&Value::Bool(true)) => "tool_error",
            Ok(_) => "ok",
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        span.record("outcome", outcome_label);
        span.record("duration_ms", elapsed_ms);
        let audit = &self.runtime.audit;
        if audit.wants_records() {
            audit.record(&AuditRecord {
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                user: &telemetry::user_label(&self.key.principal.user),
                access: self.via,
                key: self.key_digest.map(|digest| digest.short()),
                server: &self.key.server,
                method,
                target,
                outcome: outcome_label,
                duration_ms: elapsed_ms,
                task: outcome.as_ref().ok().and_then(created_task_id),
            });
        }
        let metrics = &self.runtime.metrics;
        let method = crate::metrics::Metrics::method_label(method);
        let server = &*self.key.server;
        metrics
            .requests
            .with_label_values(&[server, method, outcome_label])
            .inc();
        metrics
            .request_seconds
            .with_label_values(&[server, method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The id of the task a `tools/call` answer created, in either era's `CreateTaskResult`.
fn created_task_id(result: &Value) -> Option<&str> {
    let task = match result.get("resultType") {
        Some(Value::String(kind)) if kind == "task" => result,
        _ => result.get("task")?,
    };
    task.get("taskId").and_then(Value::as_str)
}

/// The reply to a frame that is not JSON-RPC.
pub fn rejection(rejected: Rejected) -> Outgoing {
    Outgoing::Error {
        id: rejected.id,
        error: rejected.error,
    }
}

/// Checks a `tools/call`'s `Mcp-Param-*` headers against the tool's `x-mcp-header` properties.
async fn check_param_headers(
    server: &mut ServerHandle,
    name: &str,
    arguments: &JsonObject,
    headers: &[(String, Option<String>)],
) -> Result<(), McpError> {
    let tools = server.tools().await?;
    let Some(tool) = tools.iter().find(|tool| tool.name == name) else {
        return Ok(());
    };
    crate::protocol::headers::check_param_headers(&tool.input_schema, arguments, headers)
}

/// A stateless request's way back: notifications to its response stream. It cannot ask the
/// client anything — in 2026-07-28 a tool's questions become an `InputRequiredResult`.
struct StatelessLink {
    out: Outbox,
}

impl ClientLink for StatelessLink {
    fn notify(&self, message: Outgoing) {
        self.out.push(message);
    }

    fn request(
        &self,
        method: &'static str,
        _params: Value,
    ) -> BoxFuture<'static, Result<Value, McpError>> {
        Box::pin(async move {
            Err(McpError::internal(format!(
                "{method} cannot be sent on a 2026-07-28 request; ask through an input request"
            )))
        })
    }
}
