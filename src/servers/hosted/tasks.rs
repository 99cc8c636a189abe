//! A hosted child's own tasks. Our runtime runs a hosted tool call as its own task (with its
//! store, ownership, bounds and notifications); the child is asked for a task only where it
//! insists (`execution.taskSupport: required`), and a child that answers with a task anyway
//! is followed too. Either way the child's task is followed to its end in the revision the
//! child is spoken to — 2025-11-25 `tasks/result`, 2026-07-28 `tasks/get` polled at the pace
//! it suggests — and our caller gets its final result; cancelling our call cancels the
//! child's task (`tasks/cancel`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{self, Peer};
use crate::protocol::error::McpError;
use crate::protocol::meta;
use crate::protocol::tasks::TASKS_EXTENSION;
use crate::servers::context::Era;
use crate::servers::{CallError, InputRequired, RequestContext, TaskSupport};

/// The pause between two polls of a child's task, whatever the child suggests.
const MIN_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_secs(2);

/// How long a child's task is followed before it is given up (and cancelled).
const MAX_FOLLOW: Duration = Duration::from_secs(3600);

/// A task a child answered a `tools/call` with.
pub struct ChildTask {
    pub id: String,
    poll: Duration,
}

/// Asks the child for a task only when the tool requires one: a 2026-07-28 request declares
/// the extension then and only then (else the child answers in place and our runtime's task
/// holds the call); a 2025-11-25 request carries `task`.
pub fn ask_for_task(params: &mut Value, support: TaskSupport, modern: bool) {
    let required = support == TaskSupport::Required;
    if !modern {
        if required {
            params["task"] = json!({});
        }
        return;
    }
    let Some(capabilities) = params
        .get_mut("_meta")
        .and_then(|meta| meta.get_mut(meta::CLIENT_CAPABILITIES))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let extensions = capabilities
        .entry("extensions")
        .or_insert_with(|| json!({}));
    if let Some(extensions) = extensions.as_object_mut() {
        if required {
            extensions.insert(TASKS_EXTENSION.to_owned(), json!({}));
        } else {
            extensions.remove(TASKS_EXTENSION);
        }
    }
}

/// The request state of our task's round that waits on the child's task for input: the
/// prefix, then the child's task id. It stays inside our runtime (a task's rounds are not
/// sealed out to the client), and only a task's next round brings it back.
const CHILD_TASK_STATE: &str = "gumcp-hosted-task:";

/// The child's task a round of our task answers, with the answers for it: sent with
/// `tasks/update`, after which the task is followed again.
pub async fn resume(peer: &Arc<Peer>, ctx: &RequestContext) -> Option<Result<Value, CallError>> {
    let Era::Modern {
        input_responses,
        request_state: Some(state),
    } = &ctx.era
    else {
        return None;
    };
    let id = state.strip_prefix(CHILD_TASK_STATE)?.to_owned();
    let mut params = task_params(&id, ctx, true);
    params["inputResponses"] = Value::Object((**input_responses).clone());
    if let Err(error) = peer.request("tasks/update", params, None).await {
        return Some(Err(error.into()));
    }
    Some(follow(peer, ChildTask { id, poll: MIN_POLL }, ctx, true).await)
}

/// A `tools/call` that asks the child for a task. Our call may be cancelled before the child
/// answers, while its task's id is unknown: the request is not withdrawn then, and the task it
/// makes is cancelled as soon as its id is known.
pub async fn call_for_task(
    peer: &Arc<Peer>,
    params: Value,
    ctx: &RequestContext,
    modern: bool,
) -> Result<Value, McpError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let (peer, ctx) = (peer.clone(), ctx.clone());
    tokio::spawn(async move {
        let outcome = peer.request("tools/call", params, Some(&ctx)).await;
        if let Err(Ok(late)) = answer.send(outcome) {
            if let Some(task) = child_task(&late) {
                let params = task_params(&task.id, &ctx, modern);
                let _ = peer.request("tasks/cancel", params, None).await;
            }
        }
    });
    answered
        .await
        .unwrap_or_else(|_| Err(McpError::internal("the hosted server's call was dropped")))
}

/// The child's task, when its answer to a `tools/call` is one (`resultType: "task"` in
/// 2026-07-28, a `CreateTaskResult` in 2025-11-25).
pub fn child_task(answer: &Value) -> Option<ChildTask> {
    let (task, interval) = if answer.get("resultType").and_then(Value::as_str) == Some("task") {
        (answer, "pollIntervalMs")
    } else {
        (answer.get("task")?, "pollInterval")
    };
    let id = task.get("taskId")?.as_str()?.to_owned();
    let poll = task
        .get(interval)
        .and_then(Value::as_u64)
        .map_or(MAX_POLL, Duration::from_millis);
    Some(ChildTask { id, poll })
}

/// Follows the child's task to its end and answers with its final `CallToolResult`; our
/// call's cancellation (or its future dropped) cancels it at the child.
pub async fn follow(
    peer: &Arc<Peer>,
    task: ChildTask,
    ctx: &RequestContext,
    modern: bool,
) -> Result<Value, CallError> {
    let mut cancel = CancelOnDrop {
        peer: peer.clone(),
        params: Some(task_params(&task.id, ctx, modern)),
    };
    let outcome = tokio::select! {
        outcome = run(peer, &task, ctx, modern) => outcome,
        () = ctx.cancellation.cancelled() => {
            return Err(McpError::internal("the call was cancelled").into());
        }
    };
    // Done, or waiting for input our caller gives with our task's next round: left as it is.
    if matches!(outcome, Ok(_) | Err(CallError::InputRequired(_))) {
        cancel.params = None;
    }
    outcome
}

async fn run(
    peer: &Peer,
    task: &ChildTask,
    ctx: &RequestContext,
    modern: bool,
) -> Result<Value, CallError> {
    let params = task_params(&task.id, ctx, modern);
    if !modern {
        // 2025-11-25: `tasks/result` waits for the end itself.
        return Ok(peer.request("tasks/result", params, Some(ctx)).await?);
    }
    let started = Instant::now();
    let mut pause = task.poll;
    loop {
        if started.elapsed() > MAX_FOLLOW {
            return Err(McpError::internal(format!(
                "the hosted server's task {} ran past {} s; it was cancelled",
                task.id,
                MAX_FOLLOW.as_secs()
            ))
            .into());
        }
        tokio::time::sleep(pause.clamp(MIN_POLL, MAX_POLL)).await;
        let mut detail = peer.request("tasks/get", params.clone(), None).await?;
        if let Some(next) = detail.get("pollIntervalMs").and_then(Value::as_u64) {
            pause = Duration::from_millis(next);
        }
        match detail.get("status").and_then(Value::as_str) {
            Some("completed") => {
                return Ok(detail
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(json!({})))
            }
            Some("failed") => {
                let error = detail.get("error").cloned().unwrap_or(Value::Null);
                return Err(McpError::from_json(&error).into());
            }
            Some("cancelled") => {
                return Err(McpError::internal(format!(
                    "the hosted server cancelled its task {}",
                    task.id
                ))
                .into())
            }
            Some("input_required") => {
                let requests = match detail.get_mut("inputRequests").map(Value::take) {
                    Some(Value::Object(requests)) if !requests.is_empty() => requests,
                    _ => continue,
                };
                return Err(CallError::InputRequired(InputRequired {
                    requests: requests.into_iter().collect(),
                    state: Some(format!("{CHILD_TASK_STATE}{}", task.id)),
                }));
            }
            _ => {}
        }
    }
}

/// The params of a `tasks/*` request about the child's task, in the child's revision.
fn task_params(id: &str, ctx: &RequestContext, modern: bool) -> Value {
    let params = json!({ "taskId": id });
    if !modern {
        return params;
    }
    let bare = RequestContext {
        era: Era::Modern {
            input_responses: Arc::default(),
            request_state: None,
        },
        ..ctx.clone()
    };
    let mut params = client::modern_params(params, &bare);
    ask_for_task(&mut params, TaskSupport::Required, true);
    params
}

/// Sends `tasks/cancel` for a child's task that is still armed when its follower ends.
struct CancelOnDrop {
    peer: Arc<Peer>,
    params: Option<Value>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // Without a runtime (the process is ending) the child goes with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(params) = self.params.take() {
            let peer = self.peer.clone();
            runtime.spawn(async move {
                let _ = peer.request("tasks/cancel", params, None).await;
            });
        }
    }
}
