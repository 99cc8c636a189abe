//! The host's side of tasks: a `tools/call` that runs as a task, and the `tasks/*` methods.
//!
//! 2026-07-28 (the tasks extension): the server decides. A call to a tool that may run as a
//! task, from a request that declared the extension, is polled once where it arrived; done
//! at once, it is answered as any call (an `InputRequiredResult` included, so MRTR rounds
//! come first); otherwise it becomes a task and the answer is its `CreateTaskResult`. A tool
//! that requires tasks is refused (-32021) to a request without the extension. 2025-11-25:
//! the client asks (`params.task`), and the call is a task from the start.
//!
//! Either way the call keeps running on a task of its own, under the runtime like any call
//! (the principal's in-flight share, the user's credentials, the instance's panic guard), with
//! a cancellation token that only `tasks/cancel` or the task's expiry trips — not the
//! request's or the connection's end. Its questions to the client become the task's
//! `input_required` status (answered by `tasks/update`, then the tool runs its next round),
//! or in 2025-11-25 go to the session that created it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::future::{BoxFuture, LocalBoxFuture};
use futures::FutureExt;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::{Answer, Host};
use crate::actors::account_link::LinkSlot;
use crate::actors::runtime::ServerHandle;
use crate::actors::tasks::Task;
use crate::audit::AuditRecord;
use crate::protocol::dispatch::{self, SealedFor};
use crate::protocol::error::{codes, McpError};
use crate::protocol::jsonrpc::{Outgoing, RequestId};
use crate::protocol::tasks::{self, TaskSupport};
use crate::servers::context::{ClientLink, Era};
use crate::servers::{CallError, RequestContext, ServerEvent};
use crate::telemetry;

/// How a `tools/call` may become a task.
pub(super) enum TaskMode {
    /// 2026-07-28: the server decides, if the request declared the extension.
    ServerDirected { declared: bool },
    /// 2025-11-25: the client asked for a task (with the TTL it wants), or did not; `session`:
    /// where the task's status and questions go (the session's own stream, else the
    /// request's).
    ClientAsked {
        task: Option<Option<u64>>,
        session: Option<Arc<dyn ClientLink>>,
    },
}

impl TaskMode {
    /// How this request's call may become a task; `None` for other methods and revisions
    /// without tasks.
    pub(super) fn of(
        method: &str,
        params: &JsonObject,
        ctx: &RequestContext,
        session: Option<Arc<dyn ClientLink>>,
    ) -> Result<Option<TaskMode>, McpError> {
        if method != "tools/call" {
            return Ok(None);
        }
        if ctx.protocol.is_modern() {
            let declared = tasks::declares_extension(&ctx.client_capabilities);
            Ok(Some(TaskMode::ServerDirected { declared }))
        } else if ctx.protocol.has_legacy_tasks() {
            let task = tasks::legacy_request(params)?;
            Ok(Some(TaskMode::ClientAsked { task, session }))
        } else {
            Ok(None)
        }
    }
}

/// The way back to the client of a call that runs as a task: nobody waits on the request's
/// stream any more, so notifications (progress, log) are dropped; questions go to the
/// session that created a 2025-11-25 task (2026-07-28 asks through `input_required`).
struct TaskLink {
    /// The session a 2025-11-25 task asks, and the task (its id goes with the questions, and
    /// it is `input_required` while one waits).
    asks: Option<(Arc<dyn ClientLink>, Arc<Task>)>,
    first_answer: Arc<FirstAnswer>,
}

/// Whether a call's server answers first from elsewhere (a hosted child), and word that the
/// call goes on past that answer (see [`ClientLink::awaits_first_answer`]).
#[derive(Default)]
struct FirstAnswer {
    awaited: AtomicBool,
    continues: tokio::sync::Notify,
}

impl ClientLink for TaskLink {
    fn notify(&self, _message: Outgoing) {}

    fn awaits_first_answer(&self) {
        self.first_answer.awaited.store(true, Ordering::Release);
    }

    fn continues(&self) {
        self.first_answer.continues.notify_one();
    }

    fn request(
        &self,
        method: &'static str,
        params: Value,
    ) -> BoxFuture<'static, Result<Value, McpError>> {
        match &self.asks {
            Some((link, task)) => {
                let mut params = params;
                if let Value::Object(fields) = &mut params {
                    let meta = fields
                        .entry("_meta")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(meta) = meta {
                        let related = json!({ "taskId": &*task.id });
                        meta.insert(tasks::RELATED_TASK.into(), related);
                    }
                }
                task.asking(true);
                let answer = link.request(method, params);
                let task = task.clone();
                Box::pin(async move {
                    let answer = answer.await;
                    task.asking(false);
                    answer
                })
            }
            None => Box::pin(async move {
                Err(McpError::internal(format!(
                    "{method} cannot be sent from a task; ask through an input request"
                )))
            }),
        }
    }
}

type CallFuture = LocalBoxFuture<'static, Result<CallToolResult, CallError>>;

impl Host {
    /// A `tools/call` that may run as a task (see the module's description).
    ///
    /// A call answered in place passes through `link_slot` (a missing account's link becomes
    /// the protocol's answer, as for any call); inside a task the link stays in the tool's
    /// error, which the task keeps as its result.
    pub(super) async fn call_tool_in_mode(
        &self,
        server: &mut ServerHandle,
        (name, arguments): (String, JsonObject),
        ctx: RequestContext,
        link_slot: &LinkSlot,
        mode: TaskMode,
    ) -> Result<Value, McpError> {
        let support = server.task_support(&name).await?;
        match (mode, support) {
            (TaskMode::ServerDirected { declared: false }, TaskSupport::Required) => {
                Err(tasks::extension_required())
            }
            (TaskMode::ServerDirected { declared: true }, TaskSupport::Optional)
            | (TaskMode::ServerDirected { declared: true }, TaskSupport::Required) => {
                self.call_or_task(server, (name, arguments), ctx, link_slot, support)
                    .await
            }
            (TaskMode::ClientAsked { task: None, .. }, TaskSupport::Required) => {
                Err(McpError::new(
                    codes::METHOD_NOT_FOUND,
                    format!("the tool {name} runs only as a task: call it with `task`"),
                ))
            }
            (TaskMode::ClientAsked { task: Some(_), .. }, TaskSupport::Forbidden) => {
                Err(McpError::new(
                    codes::METHOD_NOT_FOUND,
                    format!("the tool {name} does not run as a task: call it without `task`"),
                ))
            }
            (
                TaskMode::ClientAsked {
                    task: Some(ttl_ms),
                    session,
                },
                _,
            ) => {
                let cancellation = CancellationToken::new();
                let session = session.unwrap_or_else(|| ctx.link.clone());
                let task = self.runtime.tasks.create(
                    &self.key.principal,
                    self.key.server.clone(),
                    name.clone(),
                    ttl_ms,
                    cancellation.clone(),
                )?;
                let asks = Some((session.clone(), task.clone()));
                let task_ctx = task_context(ctx, cancellation, asks, Arc::default());
                actix::spawn(announce_status(task.clone(), session));
                let run = self.clone().run_task(
                    task.clone(),
                    server.clone(),
                    name,
                    arguments,
                    task_ctx,
                    None,
                );
                actix::spawn(run);
                Ok(tasks::legacy_created(&task.info()))
            }
            (_, _) => {
                let modern = ctx.protocol.is_modern();
                let outcome =
                    link_slot.answer(server.call_tool(name.clone(), arguments, ctx).await);
                self.shape_call(outcome, &name, modern)
            }
        }
    }

    /// 2026-07-28, the extension declared: the call is polled once here; if it is not done,
    /// it goes on as a task. A tool that requires tasks gets one even when it was quick,
    /// unless it asked for input first (MRTR rounds stay on `tools/call`). With no room for
    /// another task (checked before the call starts, so a refusal never cuts one short) a tool
    /// that may run either way is answered in place; one that requires a task is refused.
    async fn call_or_task(
        &self,
        server: &mut ServerHandle,
        (name, arguments): (String, JsonObject),
        ctx: RequestContext,
        link_slot: &LinkSlot,
        support: TaskSupport,
    ) -> Result<Value, McpError> {
        if let Some((reason, error)) = self.runtime.tasks.refusal(&self.key.principal) {
            if support == TaskSupport::Required {
                self.runtime.metrics.rejected(reason);
                return Err(error);
            }
            let outcome = link_slot.answer(server.call_tool(name.clone(), arguments, ctx).await);
            return self.shape_call(outcome, &name, true);
        }
        let cancellation = CancellationToken::new();
        let first_answer = Arc::new(FirstAnswer::default());
        let task_ctx = task_context(ctx, cancellation.clone(), None, first_answer.clone());
        let mut first: CallFuture = {
            let (mut server, name, arguments, ctx) = (
                server.clone(),
                name.clone(),
                arguments.clone(),
                task_ctx.clone(),
            );
            async move { server.call_tool(name, arguments, ctx).await }.boxed_local()
        };
        let first_poll = match futures::poll!(first.as_mut()) {
            Poll::Pending
                if support == TaskSupport::Required
                    && first_answer.awaited.load(Ordering::Acquire) =>
            {
                tokio::select! {
                    outcome = first.as_mut() => Poll::Ready(outcome),
                    () = first_answer.continues.notified() => Poll::Pending,
                }
            }
            polled => polled,
        };
        let done = match first_poll {
            Poll::Ready(outcome) => {
                let quick = support != TaskSupport::Required
                    || matches!(outcome, Err(CallError::InputRequired(_)));
                if quick {
                    return self.shape_call(link_slot.answer(outcome), &name, true);
                }
                Some(outcome)
            }
            Poll::Pending => None,
        };
        let task = self.runtime.tasks.create(
            &self.key.principal,
            self.key.server.clone(),
            name.clone(),
            None,
            cancellation,
        )?;
        match done {
            Some(outcome) => {
                self.end_task(&task, self.shape_call(outcome, &name, true));
            }
            None => {
                actix::spawn(announce_on_listens(task.clone(), server.clone()));
                let run = self.clone().run_task(
                    task.clone(),
                    server.clone(),
                    name,
                    arguments,
                    task_ctx,
                    Some(first),
                );
                actix::spawn(run);
            }
        }
        Ok(tasks::modern_created(&task.info()))
    }

    /// The call of a task, to its end: round after round while it asks for input (the
    /// answers of every round so far go into the next), then its result or error kept.
    async fn run_task(
        self,
        task: Arc<Task>,
        mut server: ServerHandle,
        name: String,
        arguments: JsonObject,
        mut ctx: RequestContext,
        mut first: Option<CallFuture>,
    ) {
        let modern = ctx.protocol.is_modern();
        let mut answers = Map::new();
        loop {
            let outcome = match first.take() {
                Some(call) => call.await,
                None => {
                    server
                        .call_tool(name.clone(), arguments.clone(), ctx.clone())
                        .await
                }
            };
            match outcome {
                Err(CallError::InputRequired(input)) if modern => {
                    let requests = input.requests.into_iter().collect();
                    self.runtime.tasks.touch(&self.key.principal, &task);
                    let Some(round) = task.wait_for_input(requests).await else {
                        break;
                    };
                    self.runtime.tasks.touch(&self.key.principal, &task);
                    answers.extend(round);
                    ctx.era = Era::Modern {
                        input_responses: Arc::new(answers.clone()),
                        request_state: input.state,
                    };
                }
                outcome => {
                    let shaped = self.shape_call(outcome, &name, modern);
                    self.end_task(&task, shaped);
                    return;
                }
            }
        }
        // Cancelled or dropped while waiting for input.
        self.record_task(&task);
    }

    /// Keeps a task's outcome (its TTL restarts) and writes its audit record.
    fn end_task(&self, task: &Arc<Task>, outcome: Result<Value, McpError>) {
        task.finish(outcome.map(dispatch::finish_legacy));
        self.runtime.tasks.touch(&self.key.principal, task);
        self.record_task(task);
    }

    /// The audit record of a task that ended: its tool, final state and time since creation.
    fn record_task(&self, task: &Task) {
        let audit = &self.runtime.audit;
        if !audit.wants_records() {
            return;
        }
        let info = task.info();
        audit.record(&AuditRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            user: &telemetry::user_label(&self.key.principal.user),
            access: self.via,
            key: self.key_digest.map(|digest| digest.short()),
            server: &self.key.server,
            method: "task",
            target: &task.tool,
            outcome: info.status.as_str(),
            duration_ms: task.age().as_secs_f64() * 1000.0,
            task: Some(&task.id),
        });
    }

    /// A tool call's outcome as the era's result: input requests sealed to this server,
    /// principal and tool.
    fn shape_call(
        &self,
        outcome: Result<CallToolResult, CallError>,
        tool: &str,
        modern: bool,
    ) -> Result<Value, McpError> {
        let subject = self.key.principal.seal_subject();
        let to = SealedFor {
            server: &self.key.server,
            user: &subject,
            method: "tools/call",
        };
        dispatch::shape(outcome, &to, tool, modern, &self.runtime.seal)
    }

    /// A 2026-07-28 `tasks/get`, `tasks/update` or `tasks/cancel` (the request declared the
    /// extension). Only the caller's own tasks on this server are found.
    pub(super) fn modern_task_method(
        &self,
        method: &str,
        params: &JsonObject,
    ) -> Result<Value, McpError> {
        let task = self.own_task(params)?;
        match method {
            "tasks/get" => Ok(task.detail(tasks::modern_detailed)),
            "tasks/update" => {
                let responses = match params.get("inputResponses") {
                    Some(Value::Object(responses)) => responses,
                    _ => {
                        return Err(McpError::invalid_params(
                            "`inputResponses` must be an object",
                        ))
                    }
                };
                task.answer(responses);
                Ok(tasks::modern_ack())
            }
            _ => {
                task.cancel();
                Ok(tasks::modern_ack())
            }
        }
    }

    /// A 2025-11-25 `tasks/get`, `tasks/result`, `tasks/list` or `tasks/cancel`.
    pub fn answer_legacy_task(&self, id: RequestId, method: &str, params: &JsonObject) -> Answer {
        let outcome = match method {
            "tasks/list" => self.list_tasks(params),
            "tasks/get" => self
                .own_task(params)
                .map(|task| tasks::legacy_task(&task.info())),
            "tasks/cancel" => self.own_task(params).and_then(|task| {
                if task.cancel() {
                    Ok(tasks::legacy_task(&task.info()))
                } else {
                    Err(McpError::invalid_params(format!(
                        "task {} already ended ({}); it cannot be cancelled",
                        task.id,
                        task.status().as_str()
                    )))
                }
            }),
            "tasks/result" => {
                let task = match self.own_task(params) {
                    Ok(task) => task,
                    Err(error) => return Answer::Now(Outgoing::reply(id, Err(error))),
                };
                let reply = async move {
                    task.terminal().await;
                    let outcome = task
                        .outcome()
                        .unwrap_or_else(|| Err(McpError::internal("the task was cancelled")));
                    Outgoing::reply(id, tasks::legacy_result(&task.id, &outcome))
                };
                return Answer::Later(reply.boxed_local());
            }
            other => Err(McpError::method_not_found(other)),
        };
        self.count_task_method(method, &outcome);
        Answer::Now(Outgoing::reply(id, outcome))
    }

    /// Counts an answered `tasks/*` request in `gumcp_requests_total` (not in the audit log:
    /// clients poll, and a task's creation and end are recorded already).
    pub(super) fn count_task_method(&self, method: &str, outcome: &Result<Value, McpError>) {
        let outcome = if outcome.is_ok() { "ok" } else { "error" };
        let method = crate::metrics::Metrics::method_label(method);
        self.runtime
            .metrics
            .requests
            .with_label_values(&[&*self.key.server, method, outcome])
            .inc();
    }

    /// One page of the caller's tasks on this server (`tasks/list`), oldest first.
    fn list_tasks(&self, params: &JsonObject) -> Result<Value, McpError> {
        let after = match params.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor.as_str()),
            Some(_) => return Err(McpError::invalid_params("`cursor` must be a string")),
        };
        let found = self
            .runtime
            .tasks
            .list(&self.key.principal, &self.key.server, after)
            .ok_or_else(|| {
                McpError::invalid_params("Invalid cursor: list again without a cursor")
            })?;
        let page_size = self.runtime.settings.protocol.page_size;
        let page: Vec<Value> = found
            .iter()
            .take(page_size)
            .map(|task| tasks::legacy_task(&task.info()))
            .collect();
        let mut result = json!({ "tasks": page });
        if found.len() > page_size {
            if let Some(last) = found.get(page_size - 1) {
                result["nextCursor"] = json!(&*last.id);
            }
        }
        Ok(result)
    }

    /// The caller's task the request names; any other id (another user's included) is
    /// unknown (-32602).
    fn own_task(&self, params: &JsonObject) -> Result<Arc<Task>, McpError> {
        let id = tasks::task_id(params)?;
        self.runtime
            .tasks
            .get(&self.key.principal, &self.key.server, id)
            .ok_or_else(|| tasks::unknown_task(id))
    }
}

/// The context a task's call runs in: the task's own cancellation, no notifications; a
/// 2025-11-25 task still asks its session (`asks`, with the task's id); `first_answer` hears
/// whether the server answers first from elsewhere.
fn task_context(
    ctx: RequestContext,
    cancellation: CancellationToken,
    asks: Option<(Arc<dyn ClientLink>, Arc<Task>)>,
    first_answer: Arc<FirstAnswer>,
) -> RequestContext {
    RequestContext {
        cancellation,
        progress_token: None,
        log_level: None,
        link: Arc::new(TaskLink { asks, first_answer }),
        ..ctx
    }
}

/// 2026-07-28: every change of the task to the principal's listens on this server (those that
/// asked for `notifications/tasks` get it), until it ends.
async fn announce_on_listens(task: Arc<Task>, mut server: ServerHandle) {
    let mut changes = task.watch();
    while changes.changed().await.is_ok() {
        let info = task.info();
        let event = ServerEvent::TaskStatus(tasks::modern_status(&info));
        if server.announce(event).await.is_err() || info.status.is_terminal() {
            break;
        }
    }
}

/// 2025-11-25: `notifications/tasks/status` to the session that created the task, on every
/// change until it ends.
async fn announce_status(task: Arc<Task>, link: Arc<dyn ClientLink>) {
    let mut changes = task.watch();
    while changes.changed().await.is_ok() {
        let info = task.info();
        link.notify(Outgoing::notification(
            "notifications/tasks/status",
            tasks::legacy_task(&info),
        ));
        if info.status.is_terminal() {
            break;
        }
    }
}
