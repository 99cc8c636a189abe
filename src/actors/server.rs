//! The server actor: one user's instance of one server.
//!
//! It owns the instance, the compiled input schemas and the in-flight count. Calls run as
//! futures beside the mailbox (`ResponseActFuture`), so a slow upstream call never blocks the
//! next call, a list, or anyone else. A call that panics is answered with an internal error and
//! the instance is rebuilt from the same [`ServerInit`] — the user's store is not part of the
//! instance, so nothing the user saved is lost.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakAddr;
use futures::future::BoxFuture;
use futures::FutureExt;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock, GetPromptResult,
    JsonObject, Prompt, ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use tokio::sync::broadcast;

use super::supervisor::{ServerKey, ServerStopped, Supervisor};
use crate::metrics::{Metrics, Rejection};
use crate::protocol::error::McpError;
use crate::servers::schema::SchemaCache;
use crate::servers::{
    CallError, Features, McpServer, RequestContext, ServerEntry, ServerEvent, ServerInit,
};

/// How often an idle actor checks whether its time is up.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub struct ServerActor {
    key: ServerKey,
    entry: Arc<ServerEntry>,
    init: ServerInit,
    instance: Arc<dyn McpServer>,
    /// The instance's tools and the tool-list generation they were read at; read once per
    /// change, not per call, so schemas keep their identity and stay compiled.
    tools: Option<(u64, Arc<Vec<Tool>>)>,
    schemas: SchemaCache,
    in_flight: usize,
    last_active: Instant,
    /// Restarts within the last minute.
    restarts: VecDeque<Instant>,
    /// Set when the server failed more often than allowed: calls are refused until then, and
    /// the instance is rebuilt after.
    paused_until: Option<Instant>,
    supervision: Supervision,
}

/// How the supervisor looks after its server actors.
#[derive(Clone)]
pub struct Supervision {
    pub idle_ttl: Duration,
    pub max_restarts_per_minute: u32,
    pub metrics: Arc<Metrics>,
    pub supervisor: WeakAddr<Supervisor>,
}

/// The window `max_restarts_per_minute` counts over.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

impl ServerActor {
    pub fn new(
        key: ServerKey,
        entry: Arc<ServerEntry>,
        init: ServerInit,
        supervision: Supervision,
    ) -> Self {
        let instance = entry.instantiate(init.clone());
        ServerActor {
            key,
            entry,
            init,
            instance,
            tools: None,
            schemas: SchemaCache::default(),
            in_flight: 0,
            last_active: Instant::now(),
            restarts: VecDeque::new(),
            paused_until: None,
            supervision,
        }
    }

    fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    fn current_tools(&mut self) -> Arc<Vec<Tool>> {
        let generation = self.init.events.tools_generation();
        match &self.tools {
            Some((known, tools)) if *known == generation => tools.clone(),
            _ => {
                let tools = Arc::new(self.instance.tools());
                self.tools = Some((generation, tools.clone()));
                tools
            }
        }
    }

    /// Rebuilds the instance after a panic (state in the user's store survives) — unless it
    /// failed more than `max_restarts_per_minute` times in the last minute: then it is paused
    /// until the oldest of those restarts is a minute old, not restarted in a tight loop.
    fn after_panic(&mut self) {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        let server = &self.key.server;
        let counted = |outcome: &str| {
            self.supervision
                .metrics
                .server_restarts
                .with_label_values(&[server, outcome])
                .inc();
        };
        if self.restarts.len() > self.supervision.max_restarts_per_minute as usize {
            let oldest = self.restarts.front().copied().unwrap_or(now);
            self.paused_until = Some(oldest + RESTART_WINDOW);
            counted("paused");
            tracing::error!(
                %server,
                restarts = self.restarts.len(),
                "server keeps failing (more restarts in a minute than runtime.max_restarts_per_minute); paused"
            );
        } else {
            counted("restarted");
            tracing::warn!(%server, "server instance restarted after a panic");
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.instance = self.entry.instantiate(self.init.clone());
        self.tools = None;
    }

    /// Refuses a call while the server is paused; rebuilds it once the pause is over.
    fn check_paused(&mut self) -> Result<(), McpError> {
        let Some(until) = self.paused_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until {
            self.supervision.metrics.rejected(Rejection::ServerFailing);
            return Err(McpError::internal(format!(
                "the {} server keeps failing ({} restarts within a minute, \
                 runtime.max_restarts_per_minute); it is paused for {} s more",
                self.key.server,
                self.restarts.len(),
                (until - now).as_secs().max(1)
            )));
        }
        self.paused_until = None;
        self.supervision
            .metrics
            .server_restarts
            .with_label_values(&[&self.key.server, "restarted"])
            .inc();
        tracing::warn!(server = %self.key.server, "paused server restarted");
        self.rebuild();
        Ok(())
    }

    /// Runs one call beside the mailbox: counts it, stops it when cancelled, and turns a panic
    /// into an internal error plus a restart.
    fn run<T: 'static>(
        &mut self,
        what: String,
        ctx: &RequestContext,
        work: impl FnOnce(Arc<dyn McpServer>) -> BoxFuture<'static, Result<T, CallError>>,
    ) -> ResponseActFuture<Self, Result<T, CallError>> {
        self.touch();
        if let Err(paused) = self.check_paused() {
            return Box::pin(fut::ready(Err(paused.into())));
        }
        self.in_flight += 1;
        let cancellation = ctx.cancellation.clone();
        let work = AssertUnwindSafe(work(self.instance.clone())).catch_unwind();
        let guarded = async move {
            tokio::select! {
                outcome = work => Some(outcome),
                () = cancellation.cancelled() => None,
            }
        };
        Box::pin(guarded.into_actor(self).map(move |outcome, act, _| {
            act.in_flight -= 1;
            act.touch();
            match outcome {
                Some(Ok(result)) => result,
                Some(Err(_panic)) => {
                    act.after_panic();
                    Err(McpError::internal(format!(
                        "{what} failed unexpectedly; the server was restarted, please retry"
                    ))
                    .into())
                }
                None => Err(McpError::internal("the request was cancelled").into()),
            }
        }))
    }
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let idle_ttl = self.supervision.idle_ttl;
        ctx.run_interval(IDLE_CHECK.min(idle_ttl), move |act, ctx| {
            if act.in_flight == 0 && act.last_active.elapsed() >= idle_ttl {
                tracing::debug!(server = %act.key.server, "stopping idle server actor");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(supervisor) = self.supervision.supervisor.upgrade() {
            supervisor.do_send(ServerStopped {
                key: self.key.clone(),
                addr: ctx.address(),
            });
        }
    }
}

/// What the server says about itself at `initialize` and `server/discover`.
#[derive(Debug, Clone)]
pub struct ServerDescription {
    pub name: String,
    pub title: Option<String>,
    pub version: String,
    pub instructions: Option<String>,
    pub features: Features,
}

/// Asks for the server's identity and features.
#[derive(Message)]
#[rtype(result = "ServerDescription")]
pub struct Describe;

impl Handler<Describe> for ServerActor {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let manifest = &self.entry.manifest;
        MessageResult(ServerDescription {
            name: manifest.name.clone(),
            title: manifest.title.clone(),
            version: manifest.version.clone(),
            instructions: manifest.instructions.clone(),
            features: self.instance.features(),
        })
    }
}

/// The current tools, in the server's stable order.
#[derive(Message)]
#[rtype(result = "Arc<Vec<Tool>>")]
pub struct ListTools;

impl Handler<ListTools> for ServerActor {
    type Result = MessageResult<ListTools>;

    fn handle(&mut self, _: ListTools, _: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.current_tools())
    }
}

/// Calls a tool: unknown tool → -32602; arguments failing the schema → a tool error the model
/// can correct; otherwise the tool runs.
#[derive(Message)]
#[rtype(result = "Result<CallToolResult, CallError>")]
pub struct CallTool {
    pub name: String,
    pub arguments: JsonObject,
    pub ctx: RequestContext,
}

impl Handler<CallTool> for ServerActor {
    type Result = ResponseActFuture<Self, Result<CallToolResult, CallError>>;

    fn handle(&mut self, call: CallTool, _: &mut Self::Context) -> Self::Result {
        let CallTool {
            name,
            arguments,
            ctx,
        } = call;
        let tools = self.current_tools();
        let Some(tool) = tools.iter().find(|t| t.name == name) else {
            let error = McpError::invalid_params(format!("Unknown tool: {name}"));
            return Box::pin(fut::ready(Err(error.into())));
        };
        if let Err(problems) = self.schemas.validate(&name, &tool.input_schema, &arguments) {
            let text = format!("Invalid arguments for tool {name}: {problems}");
            return Box::pin(fut::ready(Ok(CallToolResult::error(vec![
                ContentBlock::text(text),
            ]))));
        }
        let what = format!("tool {name}");
        self.run(what, &ctx.clone(), move |server| {
            async move { server.call_tool(&name, arguments, &ctx).await }.boxed()
        })
    }
}

/// The current resources, which the server may have to fetch from its upstream.
#[derive(Message)]
#[rtype(result = "Result<Vec<Resource>, CallError>")]
pub struct ListResources {
    pub ctx: RequestContext,
}

impl Handler<ListResources> for ServerActor {
    type Result = ResponseActFuture<Self, Result<Vec<Resource>, CallError>>;

    fn handle(&mut self, list: ListResources, _: &mut Self::Context) -> Self::Result {
        let ListResources { ctx } = list;
        self.run(
            "listing resources".to_owned(),
            &ctx.clone(),
            move |server| async move { Ok(server.list_resources(&ctx).await?) }.boxed(),
        )
    }
}

/// The current resource templates.
#[derive(Message)]
#[rtype(result = "Vec<ResourceTemplate>")]
pub struct ListResourceTemplates;

impl Handler<ListResourceTemplates> for ServerActor {
    type Result = MessageResult<ListResourceTemplates>;

    fn handle(&mut self, _: ListResourceTemplates, _: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.instance.resource_templates())
    }
}

/// Reads one resource by URI.
#[derive(Message)]
#[rtype(result = "Result<ReadResourceResult, CallError>")]
pub struct ReadResource {
    pub uri: String,
    pub ctx: RequestContext,
}

impl Handler<ReadResource> for ServerActor {
    type Result = ResponseActFuture<Self, Result<ReadResourceResult, CallError>>;

    fn handle(&mut self, read: ReadResource, _: &mut Self::Context) -> Self::Result {
        let ReadResource { uri, ctx } = read;
        let what = format!("reading {uri}");
        self.run(what, &ctx.clone(), move |server| {
            async move { server.read_resource(&uri, &ctx).await }.boxed()
        })
    }
}

/// The current prompts.
#[derive(Message)]
#[rtype(result = "Vec<Prompt>")]
pub struct ListPrompts;

impl Handler<ListPrompts> for ServerActor {
    type Result = MessageResult<ListPrompts>;

    fn handle(&mut self, _: ListPrompts, _: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.instance.prompts())
    }
}

/// Renders a prompt with its arguments.
#[derive(Message)]
#[rtype(result = "Result<GetPromptResult, CallError>")]
pub struct GetPrompt {
    pub name: String,
    pub arguments: JsonObject,
    pub ctx: RequestContext,
}

impl Handler<GetPrompt> for ServerActor {
    type Result = ResponseActFuture<Self, Result<GetPromptResult, CallError>>;

    fn handle(&mut self, get: GetPrompt, _: &mut Self::Context) -> Self::Result {
        let GetPrompt {
            name,
            arguments,
            ctx,
        } = get;
        if !self.instance.prompts().iter().any(|p| p.name == name) {
            let error = McpError::invalid_params(format!("Unknown prompt: {name}"));
            return Box::pin(fut::ready(Err(error.into())));
        }
        let what = format!("prompt {name}");
        self.run(what, &ctx.clone(), move |server| {
            async move { server.get_prompt(&name, arguments, &ctx).await }.boxed()
        })
    }
}

/// Suggests values for a prompt or resource-template argument.
#[derive(Message)]
#[rtype(result = "Result<CompleteResult, CallError>")]
pub struct Complete {
    pub params: CompleteRequestParams,
    pub ctx: RequestContext,
}

impl Handler<Complete> for ServerActor {
    type Result = ResponseActFuture<Self, Result<CompleteResult, CallError>>;

    fn handle(&mut self, complete: Complete, _: &mut Self::Context) -> Self::Result {
        let Complete { params, ctx } = complete;
        self.run("completion".to_owned(), &ctx.clone(), move |server| {
            async move { server.complete(params, &ctx).await.map_err(CallError::from) }.boxed()
        })
    }
}

/// Subscribes to the server's change events (list changes, resource updates).
#[derive(Message)]
#[rtype(result = "broadcast::Receiver<ServerEvent>")]
pub struct WatchEvents;

impl Handler<WatchEvents> for ServerActor {
    type Result = MessageResult<WatchEvents>;

    fn handle(&mut self, _: WatchEvents, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.init.events.subscribe())
    }
}
