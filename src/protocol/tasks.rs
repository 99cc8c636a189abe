//! Tasks on the wire, in both eras, with no call into the runtime: a long-running `tools/call`
//! answered at once with a task the client polls. 2025-11-25 has them as an experimental
//! capability (`tools/call` with `task`, `tasks/get`, `tasks/result`, `tasks/list`,
//! `tasks/cancel`, `notifications/tasks/status`); 2026-07-28 as the
//! `io.modelcontextprotocol/tasks` extension (SEP-2663: the server decides, `tasks/get` inlines
//! the result, `tasks/update` carries input responses, `tasks/cancel` is an empty ack).
//! `actors::tasks` keeps the tasks; this module only shapes what goes out and checks what
//! comes in.

use rmcp::model::JsonObject;
use serde_json::{json, Map, Value};

use super::error::McpError;
pub use crate::servers::TaskSupport;

/// The 2026-07-28 extension's identifier, in capabilities and `_meta`.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// The 2025-11-25 `_meta` key tying a message to its task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Where a task is in its life; the last three are terminal and never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Working,
        TaskStatus::InputRequired,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// What every task message says of its task.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub task_id: String,
    pub status: TaskStatus,
    pub status_message: Option<String>,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub last_updated_at: String,
    pub ttl_ms: u64,
    pub poll_interval_ms: u64,
}

/// How a task ended, or what it waits for: the inlined parts of a 2026-07-28 `DetailedTask`.
pub struct TaskDetail<'a> {
    pub info: TaskInfo,
    /// The call's result once completed, or its JSON-RPC error once failed.
    pub outcome: Option<&'a Result<Value, McpError>>,
    /// The questions still unanswered, while `input_required`.
    pub input_requests: Option<&'a Map<String, Value>>,
}

/// Adds `execution.taskSupport` to every tool of a `tools/list` page that may run as a task.
pub fn add_execution(page: &mut Value, support: impl Fn(&str) -> TaskSupport) {
    let Some(Value::Array(tools)) = page.get_mut("tools") else {
        return;
    };
    for tool in tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            continue;
        };
        let support = support(name);
        if support != TaskSupport::Forbidden {
            tool["execution"] = json!({ "taskSupport": support.as_str() });
        }
    }
}

/// The 2025-11-25 server capability: task-augmented `tools/call`, `tasks/list`, `tasks/cancel`.
pub fn legacy_capability() -> Value {
    json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } })
}

/// The 2026-07-28 `capabilities.extensions` entry.
pub fn extension_capability() -> Value {
    json!({ TASKS_EXTENSION: {} })
}

/// Whether a 2026-07-28 request declared the tasks extension in its client capabilities.
pub fn declares_extension(client_capabilities: &JsonObject) -> bool {
    client_capabilities
        .get("extensions")
        .and_then(Value::as_object)
        .is_some_and(|extensions| extensions.contains_key(TASKS_EXTENSION))
}

/// -32021 for a request that needs the tasks extension its client did not declare.
pub fn extension_required() -> McpError {
    McpError::missing_client_capability(json!({ "extensions": { TASKS_EXTENSION: {} } }))
}

/// The task a 2025-11-25 `tools/call` asks for (`params.task`), with its requested TTL; `None`
/// when the call is not task-augmented.
pub fn legacy_request(params: &JsonObject) -> Result<Option<Option<u64>>, McpError> {
    match params.get("task") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(task)) => match task.get("ttl") {
            None | Some(Value::Null) => Ok(Some(None)),
            Some(ttl) => ttl
                .as_u64()
                .map(|ttl| Some(Some(ttl)))
                .ok_or_else(|| McpError::invalid_params("`task.ttl` must be whole milliseconds")),
        },
        Some(_) => Err(McpError::invalid_params("`task` must be an object")),
    }
}

/// The `taskId` a task method names.
pub fn task_id(params: &JsonObject) -> Result<&str, McpError> {
    match params.get("taskId") {
        Some(Value::String(id)) => Ok(id),
        Some(_) => Err(McpError::invalid_params("`taskId` must be a string")),
        None => Err(McpError::invalid_params(
            "missing required parameter `taskId`",
        )),
    }
}

/// The error for a task id this caller has no task under (another user's ids look the same).
pub fn unknown_task(task_id: &str) -> McpError {
    McpError::invalid_params(format!(
        "Unknown task: {task_id} (it never existed, belongs to someone else, or outlived its TTL)"
    ))
}

/// The 2026-07-28 `CreateTaskResult`: `Result & Task`, flat, `resultType: "task"`.
pub fn modern_created(info: &TaskInfo) -> Value {
    let mut result = modern_task(info);
    result["resultType"] = json!("task");
    result
}

/// The 2026-07-28 `tasks/get` answer: the task, with the result or error inlined once
/// terminal and the open questions while input is required.
pub fn modern_detailed(detail: &TaskDetail) -> Value {
    let mut result = modern_task(&detail.info);
    result["resultType"] = json!("complete");
    match detail.outcome {
        Some(Ok(value)) if detail.info.status == TaskStatus::Completed => {
            result["result"] = value.clone();
        }
        Some(Err(error)) if detail.info.status == TaskStatus::Failed => {
            result["error"] = json!(error);
        }
        _ => {}
    }
    if detail.info.status == TaskStatus::InputRequired {
        if let Some(requests) = detail.input_requests {
            result["inputRequests"] = Value::Object(requests.clone());
        }
    }
    result
}

/// The empty acknowledgement of 2026-07-28 `tasks/cancel` and `tasks/update`.
pub fn modern_ack() -> Value {
    json!({ "resultType": "complete" })
}

fn modern_task(info: &TaskInfo) -> Value {
    let mut task = json!({
        "taskId": info.task_id,
        "status": info.status.as_str(),
        "createdAt": info.created_at,
        "lastUpdatedAt": info.last_updated_at,
        "ttlMs": info.ttl_ms,
        "pollIntervalMs": info.poll_interval_ms,
    });
    if let Some(message) = &info.status_message {
        task["statusMessage"] = json!(message);
    }
    task
}

/// The params of a 2026-07-28 `notifications/tasks`: the task, without what it inlines.
pub fn modern_status(info: &TaskInfo) -> Value {
    modern_task(info)
}

/// The 2025-11-25 `Task` (the body of `tasks/get`, `tasks/cancel`, list items and
/// `notifications/tasks/status`).
pub fn legacy_task(info: &TaskInfo) -> Value {
    let mut task = json!({
        "taskId": info.task_id,
        "status": info.status.as_str(),
        "createdAt": info.created_at,
        "lastUpdatedAt": info.last_updated_at,
        "ttl": info.ttl_ms,
        "pollInterval": info.poll_interval_ms,
    });
    if let Some(message) = &info.status_message {
        task["statusMessage"] = json!(message);
    }
    task
}

/// The 2025-11-25 `CreateTaskResult`.
pub fn legacy_created(info: &TaskInfo) -> Value {
    json!({ "task": legacy_task(info) })
}

/// The 2025-11-25 `tasks/result` answer: the call's own result, tied to its task.
pub fn legacy_result(task_id: &str, outcome: &Result<Value, McpError>) -> Result<Value, McpError> {
    let mut result = outcome.clone()?;
    if let Value::Object(fields) = &mut result {
        let meta = fields
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            meta.insert(RELATED_TASK.into(), json!({ "taskId": task_id }));
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: TaskStatus) -> TaskInfo {
        TaskInfo {
            task_id: "t1".into(),
            status,
            status_message: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            last_updated_at: "2026-01-01T00:00:01.000Z".into(),
            ttl_ms: 60_000,
            poll_interval_ms: 500,
        }
    }

    #[test]
    fn modern_shapes_are_flat_and_inline_only_what_the_status_allows() {
        let created = modern_created(&info(TaskStatus::Working));
        assert_eq!(created["resultType"], "task");
        assert_eq!(created["ttlMs"], 60_000);
        assert!(created.get("task").is_none() && created.get("ttl").is_none());
        let outcome = Ok(json!({"content": []}));
        let done = modern_detailed(&TaskDetail {
            info: info(TaskStatus::Completed),
            outcome: Some(&outcome),
            input_requests: None,
        });
        assert_eq!(done["resultType"], "complete");
        assert_eq!(done["result"], json!({"content": []}));
        let failed_outcome = Err(McpError::internal("boom"));
        let failed = modern_detailed(&TaskDetail {
            info: info(TaskStatus::Failed),
            outcome: Some(&failed_outcome),
            input_requests: None,
        });
        assert_eq!(failed["error"]["code"], -32603);
        assert!(failed.get("result").is_none());
        let cancelled = modern_detailed(&TaskDetail {
            info: info(TaskStatus::Cancelled),
            outcome: Some(&outcome),
            input_requests: None,
        });
        assert!(cancelled.get("result").is_none());
    }

    #[test]
    fn legacy_requests_and_results() {
        let params = |value: Value| value.as_object().cloned().unwrap();
        assert_eq!(legacy_request(&params(json!({}))).unwrap(), None);
        assert_eq!(
            legacy_request(&params(json!({"task": {"ttl": 5}}))).unwrap(),
            Some(Some(5))
        );
        assert!(legacy_request(&params(json!({"task": 1}))).is_err());
        let result = legacy_result("t1", &Ok(json!({"content": []}))).unwrap();
        assert_eq!(result["_meta"][RELATED_TASK]["taskId"], "t1");
        assert_eq!(
            legacy_created(&info(TaskStatus::Working))["task"]["ttl"],
            60_000
        );
    }

    #[test]
    fn execution_is_added_only_where_tasks_are_allowed() {
        let mut page = json!({"tools": [{"name": "a"}, {"name": "b"}]});
        add_execution(&mut page, |name| {
            if name == "a" {
                TaskSupport::Required
            } else {
                TaskSupport::Forbidden
            }
        });
        assert_eq!(page["tools"][0]["execution"]["taskSupport"], "required");
        assert!(page["tools"][1].get("execution").is_none());
    }
}
