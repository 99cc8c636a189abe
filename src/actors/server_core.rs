//! One user's instance of one server, shared by every request of that user: the call path.
//!
//! Calls run on the caller's own task (the session's thread) against this shared state, not in
//! a server actor's mailbox on another thread: the profile showed the cross-thread hop to be
//! the largest cost of a call after allocation (BENCHMARKS.md). What needs a single owner —
//! noticing the instance is idle and stopping it — stays with the [`ServerActor`], which holds
//! this core and nothing else.
//!
//! A call that panics is answered with an internal error and the instance is rebuilt from the
//! same [`ServerInit`]; the user's store is not part of the instance, so nothing saved is lost.
//!
//! [`ServerActor`]: super::server::ServerActor

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use prometheus::IntGauge;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock, GetPromptResult,
    JsonObject, Prompt, ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use tokio::sync::broadcast;

use crate::auth::principal::Principal;
use crate::metrics::{Metrics, Rejection};
use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;
use crate::servers::schema::SchemaCache;
use crate::servers::{
    CallError, CredentialSource, McpServer, RequestContext, ServerDescription, ServerEntry,
    ServerEvent, ServerInit,
};

/// Identifies one principal's instance of one server (per user, and per key where only the
/// key vouches for the user).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub server: Arc<str>,
    pub principal: Principal,
}

/// The window `max_restarts_per_minute` counts over.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// How a server instance is looked after.
#[derive(Clone)]
pub struct Supervision {
    pub idle_ttl: Duration,
    pub max_restarts_per_minute: u32,
    pub metrics: Arc<Metrics>,
}

/// Restarts within the last minute, and the pause they may have caused.
#[derive(Default)]
struct Health {
    restarts: VecDeque<Instant>,
    /// Set when the server failed more often than allowed: calls are refused until then, and
    /// the instance is rebuilt after.
    paused_until: Option<Instant>,
}

pub struct ServerCore {
    pub(super) key: ServerKey,
    entry: Arc<ServerEntry>,
    init: ServerInit,
    instance: RwLock<Arc<dyn McpServer>>,
    /// The instance's tools and the tool-list generation they were read at; read once per
    /// change, not per call, so schemas keep their identity and stay compiled.
    tools: RwLock<Option<(u64, Arc<Vec<Tool>>)>>,
    /// Validators of a tool list of this instance's own (the shared list's are the entry's).
    schemas: SchemaCache,
    in_flight: AtomicUsize,
    /// When the instance was last used, in milliseconds since `born`.
    last_active: AtomicU64,
    born: Instant,
    /// Set once its actor has stopped: holders look the server up again.
    retired: AtomicBool,
    /// Mirrors `health.paused_until.is_some()`, so a call on a healthy server takes no lock.
    paused: AtomicBool,
    health: Mutex<Health>,
    supervision: Supervision,
    /// `gumcp_in_flight_requests` for this server, resolved once.
    pub(super) in_flight_gauge: IntGauge,
}

/// Counts a call as running until it is dropped — answered, failed or cancelled alike.
struct Running<'a>(&'a ServerCore);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl ServerCore {
    pub fn new(
        key: ServerKey,
        entry: Arc<ServerEntry>,
        init: ServerInit,
        supervision: Supervision,
    ) -> Self {
        let instance = entry.instantiate(init.clone());
        let in_flight_gauge = supervision
            .metrics
            .in_flight
            .with_label_values(&[&key.server]);
        ServerCore {
            key,
            entry,
            init,
            instance: RwLock::new(instance),
            tools: RwLock::new(None),
            schemas: SchemaCache::default(),
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(0),
            born: Instant::now(),
            retired: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
            supervision,
            in_flight_gauge,
        }
    }

    pub fn supervision(&self) -> &Supervision {
        &self.supervision
    }

    pub fn is_live(&self) -> bool {
        !self.retired.load(Ordering::Acquire)
    }

    /// Its actor stopped: new requests go to a fresh instance; calls already here finish.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.instance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .shutdown();
    }

    /// Readies the instance for this caller (see [`McpServer::prepare`]); refused while the
    /// server is paused.
    pub async fn prepare(&self, credentials: &Arc<dyn CredentialSource>) -> Result<(), CallError> {
        self.check_paused()?;
        // Counted as running: starting a hosted child may outlast the idle TTL.
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _running = Running(self);
        self.instance().prepare(credentials).await
    }

    /// No call running and none for `ttl`, and no session's subscription held.
    pub fn is_idle(&self, ttl: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 || self.current().holds_subscriptions() {
            return false;
        }
        let last = Duration::from_millis(self.last_active.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last) >= ttl
    }

    fn touch(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(now, Ordering::Relaxed);
    }

    fn instance(&self) -> Arc<dyn McpServer> {
        self.touch();
        self.current()
    }

    /// The instance, without counting as use.
    fn current(&self) -> Arc<dyn McpServer> {
        self.instance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Passes a session's subscription (or its end) to the instance.
    pub async fn subscribe(
        &self,
        holder: u64,
        uri: &str,
        subscribed: bool,
    ) -> Result<(), McpError> {
        self.instance().subscribe(holder, uri, subscribed).await
    }

    /// Passes a session's log level to the instance.
    pub async fn set_log_level(&self, holder: u64, level: LogLevel) -> Result<(), McpError> {
        self.instance().set_log_level(holder, level).await
    }

    /// `holder` (a session or listen) ended.
    pub fn release(&self, holder: u64) {
        self.current().release(holder);
    }

    pub fn describe(&self) -> ServerDescription {
        let manifest = &self.entry.manifest;
        ServerDescription {
            name: manifest.name.clone(),
            title: manifest.title.clone(),
            version: manifest.version.clone(),
            instructions: manifest.instructions.clone(),
            features: self.instance().features(),
        }
    }

    /// The current tools, in the server's stable order.
    pub fn tools(&self) -> Arc<Vec<Tool>> {
        let generation = self.init.events.tools_generation();
        if let Some((known, tools)) = &*self.tools.read().unwrap_or_else(PoisonError::into_inner) {
            if *known == generation {
                return tools.clone();
            }
        }
        let tools = self.entry.tools.adopt(self.instance().tools());
        *self.tools.write().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, tools.clone()));
        tools
    }

    /// Whether `tool` may run as a task: as its server's code says, else as its declaration in
    /// the manifest says (so a native server's declared tools need no code for it).
    /// A `[shape]` is seen through: the declaration is looked up under the tool's own name.
    pub fn task_support(&self, tool: &str) -> crate::servers::TaskSupport {
        match self.instance().task_support(tool) {
            crate::servers::TaskSupport::Forbidden => self
                .entry
                .own_tool_name(tool)
                .and_then(|own| {
                    let declared = self.entry.manifest.tools.iter();
                    declared
                        .filter(|declared| declared.name == own)
                        .map(|declared| declared.task_support)
                        .next()
                })
                .unwrap_or_default(),
            said => said,
        }
    }

    pub fn resource_templates(&self) -> Vec<ResourceTemplate> {
        self.instance().resource_templates()
    }

    pub fn prompts(&self) -> Vec<Prompt> {
        self.instance().prompts()
    }

    /// Subscribes to the server's change events (list changes, resource updates).
    pub fn watch_events(&self) -> broadcast::Receiver<ServerEvent> {
        self.init.events.subscribe()
    }

    /// Announces an event of the runtime's own (a task's status) to whoever listens.
    pub fn announce(&self, event: ServerEvent) {
        self.init.events.send(event);
    }

    /// Calls a tool: unknown tool → -32602; arguments failing the schema → a tool error the
    /// model can correct; otherwise the tool runs.
    pub async fn call_tool(
        &self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let tools = self.tools();
        let Some(tool) = tools.iter().find(|t| t.name == name) else {
            return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
        };
        let schemas = self.entry.tools.schemas_of(&tools).unwrap_or(&self.schemas);
        let arguments = match schemas.validate(&name, &tool.input_schema, arguments) {
            Ok(arguments) => arguments,
            Err(problems) => {
                let text = format!("Invalid arguments for tool {name}: {problems}");
                return Ok(CallToolResult::error(vec![ContentBlock::text(text)]));
            }
        };
        let (name, ctx) = (&name, &ctx);
        self.run(
            || format!("tool {name}"),
            ctx,
            move |server| async move { server.call_tool(name, arguments, ctx).await },
        )
        .await
    }

    /// The current resources, which the server may have to fetch from its upstream.
    pub async fn resources(&self, ctx: RequestContext) -> Result<Vec<Resource>, CallError> {
        let ctx = &ctx;
        self.run(
            || "listing resources".to_owned(),
            ctx,
            move |server| async move { Ok(server.list_resources(ctx).await?) },
        )
        .await
    }

    pub async fn read_resource(
        &self,
        uri: String,
        ctx: RequestContext,
    ) -> Result<ReadResourceResult, CallError> {
        let (uri, ctx) = (&uri, &ctx);
        self.run(
            || format!("reading {uri}"),
            ctx,
            move |server| async move { server.read_resource(uri, ctx).await },
        )
        .await
    }

    /// Renders a prompt with its arguments.
    pub async fn get_prompt(
        &self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<GetPromptResult, CallError> {
        if !self.prompts().iter().any(|p| p.name == name) {
            return Err(McpError::invalid_params(format!("Unknown prompt: {name}")).into());
        }
        let (name, ctx) = (&name, &ctx);
        self.run(
            || format!("prompt {name}"),
            ctx,
            move |server| async move { server.get_prompt(name, arguments, ctx).await },
        )
        .await
    }

    /// Suggests values for a prompt or resource-template argument.
    pub async fn complete(
        &self,
        params: CompleteRequestParams,
        ctx: RequestContext,
    ) -> Result<CompleteResult, CallError> {
        let ctx = &ctx;
        self.run(
            || "completion".to_owned(),
            ctx,
            move |server| async move { server.complete(params, ctx).await.map_err(CallError::from) },
        )
        .await
    }

    /// Runs one call of server code on the caller's task: counts it, stops it when cancelled,
    /// and turns a panic into an internal error plus a restart.
    async fn run<T, Work>(
        &self,
        what: impl FnOnce() -> String,
        ctx: &RequestContext,
        work: impl FnOnce(Arc<dyn McpServer>) -> Work,
    ) -> Result<T, CallError>
    where
        Work: Future<Output = Result<T, CallError>>,
    {
        self.check_paused()?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _running = Running(self);
        let work = AssertUnwindSafe(work(self.instance())).catch_unwind();
        let outcome = tokio::select! {
            outcome = work => outcome,
            () = ctx.cancellation.cancelled() => {
                return Err(McpError::internal("the request was cancelled").into());
            }
        };
        outcome.unwrap_or_else(|_panic| {
            self.after_panic();
            Err(McpError::internal(format!(
                "{} failed unexpectedly; the server was restarted, please retry",
                what()
            ))
            .into())
        })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuilds the instance after a panic (state in the user's store survives) — unless it
    /// failed more than `max_restarts_per_minute` times in the last minute: then it is paused
    /// until the oldest of those restarts is a minute old, not restarted in a tight loop.
    fn after_panic(&self) {
        let now = Instant::now();
        let mut health = self.health();
        health.restarts.push_back(now);
        while health
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            health.restarts.pop_front();
        }
        let server = &self.key.server;
        let restarts = health.restarts.len();
        if restarts > self.supervision.max_restarts_per_minute as usize {
            let oldest = health.restarts.front().copied().unwrap_or(now);
            health.paused_until = Some(oldest + RESTART_WINDOW);
            self.paused.store(true, Ordering::Release);
            self.count_restart("paused");
            tracing::error!(
                %server,
                restarts,
                "server keeps failing (more restarts in a minute than runtime.max_restarts_per_minute); paused"
            );
        } else {
            self.count_restart("restarted");
            tracing::warn!(%server, "server instance restarted after a panic");
            self.rebuild();
        }
    }

    fn count_restart(&self, outcome: &str) {
        self.supervision
            .metrics
            .server_restarts
            .with_label_values(&[&self.key.server, outcome])
            .inc();
    }

    fn rebuild(&self) {
        let fresh = self.entry.instantiate(self.init.clone());
        *self
            .instance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        *self.tools.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Refuses a call while the server is paused; rebuilds it once the pause is over.
    fn check_paused(&self) -> Result<(), McpError> {
        if !self.paused.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut health = self.health();
        let Some(until) = health.paused_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until {
            self.supervision.metrics.rejected(Rejection::ServerFailing);
            return Err(McpError::internal(format!(
                "the {} server keeps failing ({} restarts within a minute, \
                 runtime.max_restarts_per_minute); it is paused for {} s more",
                self.key.server,
                health.restarts.len(),
                (until - now).as_secs().max(1)
            )));
        }
        health.paused_until = None;
        self.paused.store(false, Ordering::Release);
        drop(health);
        self.count_restart("restarted");
        tracing::warn!(server = %self.key.server, "paused server restarted");
        self.rebuild();
        Ok(())
    }
}
