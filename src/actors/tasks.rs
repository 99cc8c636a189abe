//! The tasks the runtime keeps: long-running calls a client polls instead of waiting on one
//! connection. A task belongs to the principal that made it — looked up by (principal, id), so
//! another user's id is simply unknown — and outlives the request and the connection that
//! made it; its result is kept for its TTL after its last change, then dropped (moka, bounded
//! in all, with a count per principal). The call itself runs on a task of its own under the
//! runtime like any call (`actors::task_calls`); this module holds its state and the waits on
//! it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;
use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::auth::principal::Principal;
use crate::config::TaskSettings;
use crate::metrics::{Metrics, Rejection};
use crate::protocol::error::McpError;
use crate::protocol::tasks::{TaskDetail, TaskInfo, TaskStatus};

/// A task's key: whose it is, and its id.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TaskKey {
    principal: Principal,
    id: Arc<str>,
}

/// Every task of every principal, bounded per principal and in all.
pub struct TaskStore {
    tasks: Cache<TaskKey, Arc<Task>>,
    /// Each principal's task ids, oldest first: their count is the per-principal bound, their
    /// order the `tasks/list` order.
    owned: Arc<DashMap<Principal, Vec<Arc<str>>>>,
    settings: TaskSettings,
    metrics: Arc<Metrics>,
}

/// One task: the call it runs and where that call is.
pub struct Task {
    pub id: Arc<str>,
    pub server: Arc<str>,
    pub tool: String,
    created_at: String,
    started: Instant,
    ttl: Duration,
    poll_interval_ms: u64,
    /// Stops the call: `tasks/cancel`, or the task dropped while it still ran.
    pub cancellation: CancellationToken,
    state: Mutex<TaskState>,
    /// The status after every change, for waiters (`tasks/result`, status notifications).
    changes: watch::Sender<TaskStatus>,
    /// Wakes the call when the last open input request has been answered.
    answered: Notify,
    metrics: Arc<Metrics>,
}

struct TaskState {
    status: TaskStatus,
    status_message: Option<String>,
    last_updated_at: String,
    /// The call's result or JSON-RPC error, once terminal.
    outcome: Option<Result<Value, McpError>>,
    /// Input requests the client has not answered yet (`input_required`).
    open_requests: Map<String, Value>,
    /// Answers gathered for the call's next round.
    answers: Map<String, Value>,
    /// Dropped from the store: it no longer counts in the metrics.
    dropped: bool,
}

/// Each task's TTL runs from its last change (creation, then each status change re-inserts it).
struct TaskTtl;

impl Expiry<TaskKey, Arc<Task>> for TaskTtl {
    fn expire_after_create(
        &self,
        _key: &TaskKey,
        task: &Arc<Task>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(task.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &TaskKey,
        task: &Arc<Task>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(task.ttl)
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl TaskStore {
    pub fn new(settings: TaskSettings, metrics: Arc<Metrics>) -> TaskStore {
        let owned: Arc<DashMap<Principal, Vec<Arc<str>>>> = Arc::default();
        let listener_owned = owned.clone();
        let tasks = Cache::builder()
            .max_capacity(settings.max_total as u64)
            .expire_after(TaskTtl)
            .eviction_listener(move |key: Arc<TaskKey>, task: Arc<Task>, cause| {
                if cause == RemovalCause::Replaced {
                    return;
                }
                task.dropped();
                if let dashmap::Entry::Occupied(mut ids) =
                    listener_owned.entry(key.principal.clone())
                {
                    ids.get_mut().retain(|id| *id != key.id);
                    if ids.get().is_empty() {
                        ids.remove();
                    }
                }
            })
            .build();
        TaskStore {
            tasks,
            owned,
            settings,
            metrics,
        }
    }

    /// A new `working` task for `principal`, kept from now on (so a `tasks/get` right after
    /// the answer that names it finds it). `ttl_ms`: what the client asked for, capped by
    /// `tasks.ttl_secs`. Refused (-32000) past `tasks.max_per_user` or `tasks.max_total`.
    pub fn create(
        &self,
        principal: &Principal,
        server: Arc<str>,
        tool: String,
        ttl_ms: Option<u64>,
        cancellation: CancellationToken,
    ) -> Result<Arc<Task>, McpError> {
        let max_ttl = Duration::from_secs(self.settings.ttl_secs);
        let ttl = ttl_ms
            .map(Duration::from_millis)
            .map_or(max_ttl, |asked| asked.min(max_ttl))
            .max(Duration::from_millis(1));
        if let Some((reason, error)) = self.refusal(principal) {
            self.metrics.rejected(reason);
            return Err(error);
        }
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        {
            // Checked again under the principal's entry: two creations may race to the last
            // place.
            let mut ids = self.owned.entry(principal.clone()).or_default();
            if ids.len() >= self.settings.max_per_user {
                self.metrics.rejected(Rejection::TasksPerUser);
                return Err(self.per_user_refusal(ids.len()));
            }
            ids.push(id.clone());
        }
        let created_at = now();
        let task = Arc::new(Task {
            id: id.clone(),
            server,
            tool,
            created_at: created_at.clone(),
            started: Instant::now(),
            ttl,
            poll_interval_ms: self.settings.poll_interval_ms,
            cancellation,
            state: Mutex::new(TaskState {
                status: TaskStatus::Working,
                status_message: None,
                last_updated_at: created_at,
                outcome: None,
                open_requests: Map::new(),
                answers: Map::new(),
                dropped: false,
            }),
            changes: watch::channel(TaskStatus::Working).0,
            answered: Notify::new(),
            metrics: self.metrics.clone(),
        });
        self.metrics
            .tasks
            .with_label_values(&[TaskStatus::Working.as_str()])
            .inc();
        let key = TaskKey {
            principal: principal.clone(),
            id,
        };
        self.tasks.insert(key, task.clone());
        Ok(task)
    }

    /// Why `principal` may not make a task now, if they may not: `tasks.max_total` or
    /// `tasks.max_per_user` reached (the reason for `gumcp_rejections_total`, and the error).
    pub fn refusal(&self, principal: &Principal) -> Option<(Rejection, McpError)> {
        // Expired tasks leave (the bounds, the gauge) at the cache's maintenance, which moka runs
        // only on its own schedule of reads and writes: run it here, so the counts lag expiry
        // only by its timer's granularity and the gauge stays current while tasks are made.
        self.tasks.run_pending_tasks();
        if self.tasks.entry_count() >= self.settings.max_total as u64 {
            let error = McpError::busy(format!(
                "the server holds as many tasks as it may ({}, tasks.max_total); retry later",
                self.settings.max_total
            ));
            return Some((Rejection::TasksTotal, error));
        }
        let held = self.owned.get(principal).map_or(0, |ids| ids.len());
        (held >= self.settings.max_per_user)
            .then(|| (Rejection::TasksPerUser, self.per_user_refusal(held)))
    }

    fn per_user_refusal(&self, held: usize) -> McpError {
        McpError::busy(format!(
            "you hold {held} tasks (tasks.max_per_user = {}); fetch or cancel some, or wait for \
             them to expire",
            self.settings.max_per_user
        ))
    }

    /// `principal`'s task `id`, if they have one by that id on `server`.
    pub fn get(&self, principal: &Principal, server: &str, id: &str) -> Option<Arc<Task>> {
        let key = TaskKey {
            principal: principal.clone(),
            id: Arc::from(id),
        };
        self.tasks.get(&key).filter(|task| &*task.server == server)
    }

    /// Restarts a task's TTL after a change.
    pub fn touch(&self, principal: &Principal, task: &Arc<Task>) {
        let key = TaskKey {
            principal: principal.clone(),
            id: task.id.clone(),
        };
        if self.tasks.contains_key(&key) {
            self.tasks.insert(key, task.clone());
        }
    }

    /// `principal`'s tasks on `server`, oldest first, from after the task `after` on; `None`
    /// when `after` is none of theirs (a cursor made up, or its task gone).
    pub fn list(
        &self,
        principal: &Principal,
        server: &str,
        after: Option<&str>,
    ) -> Option<Vec<Arc<Task>>> {
        let ids: Vec<Arc<str>> = self
            .owned
            .get(principal)
            .map(|ids| ids.clone())
            .unwrap_or_default();
        let start = match after {
            None => 0,
            Some(after) => ids.iter().position(|id| &**id == after)? + 1,
        };
        Some(
            ids[start..]
                .iter()
                .filter_map(|id| self.get(principal, server, id))
                .collect(),
        )
    }
}

impl Task {
    fn state(&self) -> std::sync::MutexGuard<'_, TaskState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Time since it was created.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn status(&self) -> TaskStatus {
        self.state().status
    }

    /// What every task message says of it.
    pub fn info(&self) -> TaskInfo {
        let state = self.state();
        self.info_of(&state)
    }

    fn info_of(&self, state: &TaskState) -> TaskInfo {
        TaskInfo {
            task_id: self.id.to_string(),
            status: state.status,
            status_message: state.status_message.clone(),
            created_at: self.created_at.clone(),
            last_updated_at: state.last_updated_at.clone(),
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            poll_interval_ms: self.poll_interval_ms,
        }
    }

    /// The task with what it inlines (result, error, open input requests), shaped by `shape`.
    pub fn detail<T>(&self, shape: impl FnOnce(&TaskDetail) -> T) -> T {
        let state = self.state();
        shape(&TaskDetail {
            info: self.info_of(&state),
            outcome: state.outcome.as_ref(),
            input_requests: Some(&state.open_requests),
        })
    }

    /// The call's outcome, once terminal.
    pub fn outcome(&self) -> Option<Result<Value, McpError>> {
        self.state().outcome.clone()
    }

    /// Moves to `status` (never out of a terminal one); `false` if it was already terminal.
    fn transition(
        &self,
        state: &mut TaskState,
        status: TaskStatus,
        message: Option<String>,
    ) -> bool {
        if state.status.is_terminal() {
            return false;
        }
        if !state.dropped {
            let gauge = &self.metrics.tasks;
            gauge.with_label_values(&[state.status.as_str()]).dec();
            gauge.with_label_values(&[status.as_str()]).inc();
        }
        if status.is_terminal() {
            self.metrics
                .task_seconds
                .with_label_values(&[&self.server, status.as_str()])
                .observe(self.started.elapsed().as_secs_f64());
        }
        state.status = status;
        state.status_message = message;
        state.last_updated_at = now();
        self.changes.send_replace(status);
        true
    }

    /// The call ended: `completed` with its result (a tool error included), or `failed` with
    /// its JSON-RPC error. Ignored once cancelled.
    pub fn finish(&self, outcome: Result<Value, McpError>) -> bool {
        let mut state = self.state();
        let status = match &outcome {
            Ok(_) => TaskStatus::Completed,
            Err(_) => TaskStatus::Failed,
        };
        let message = outcome.as_ref().err().map(|error| error.message.clone());
        if !self.transition(&mut state, status, message) {
            return false;
        }
        state.open_requests.clear();
        state.answers.clear();
        state.outcome = Some(outcome);
        true
    }

    /// `tasks/cancel`: `cancelled` at once, and the call is stopped; `false` if it had already
    /// ended.
    pub fn cancel(&self) -> bool {
        let cancelled = {
            let mut state = self.state();
            let cancelled = self.transition(
                &mut state,
                TaskStatus::Cancelled,
                Some("cancelled by the client".to_owned()),
            );
            state.open_requests.clear();
            cancelled
        };
        self.cancellation.cancel();
        self.answered.notify_one();
        cancelled
    }

    /// The call needs the client's input: `input_required` with these requests, until every
    /// one of them has been answered through [`Task::answer`]. Returns the answers for the
    /// call's next round, or `None` if the task ended meanwhile (cancelled, expired).
    pub async fn wait_for_input(&self, requests: Map<String, Value>) -> Option<Map<String, Value>> {
        {
            let mut state = self.state();
            if !self.transition(&mut state, TaskStatus::InputRequired, None) {
                return None;
            }
            state.open_requests = requests;
        }
        loop {
            {
                let mut state = self.state();
                if state.status.is_terminal() {
                    return None;
                }
                if state.open_requests.is_empty() {
                    self.transition(&mut state, TaskStatus::Working, None);
                    return Some(std::mem::take(&mut state.answers));
                }
            }
            tokio::select! {
                () = self.answered.notified() => {}
                () = self.cancellation.cancelled() => return None,
            }
        }
    }

    /// A 2025-11-25 task's call is asking its session something (`true`), or got its answer:
    /// `input_required` meanwhile, then `working` again.
    pub fn asking(&self, waiting: bool) {
        let status = if waiting {
            TaskStatus::InputRequired
        } else {
            TaskStatus::Working
        };
        let mut state = self.state();
        if state.status != status {
            self.transition(&mut state, status, None);
        }
    }

    /// `tasks/update`: answers to open input requests (keys it is not waiting for are ignored);
    /// the call resumes once none is left open.
    pub fn answer(&self, responses: &Map<String, Value>) {
        let mut state = self.state();
        for (key, response) in responses {
            if state.open_requests.remove(key).is_some() {
                state.answers.insert(key.clone(), response.clone());
            }
        }
        if state.status == TaskStatus::InputRequired && state.open_requests.is_empty() {
            drop(state);
            self.answered.notify_one();
        }
    }

    /// Waits until the task is terminal (2025-11-25 `tasks/result` blocks so).
    pub async fn terminal(&self) {
        let mut changes = self.changes.subscribe();
        let _ = changes.wait_for(|status| status.is_terminal()).await;
    }

    /// Subscribes to status changes.
    pub fn watch(&self) -> watch::Receiver<TaskStatus> {
        self.changes.subscribe()
    }

    /// It left the store: it stops counting, and a call still running is stopped.
    fn dropped(&self) {
        {
            let mut state = self.state();
            if !state.dropped {
                state.dropped = true;
                self.metrics
                    .tasks
                    .with_label_values(&[state.status.as_str()])
                    .dec();
            }
        }
        self.cancellation.cancel();
    }
}
