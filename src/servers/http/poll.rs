//! Following a job an upstream runs for a tool (a crawl, an actor run, a document parse): its
//! status is read again and again — the pause growing from 250 ms to the declared interval, so
//! a quick job is answered quickly and a long one is not hammered — each status sent to the
//! client as `notifications/progress`, until the job ends, fails, or has run past the declared
//! wait. A cancelled call stops at once (the pause and the status request both give way to the
//! request's cancellation token); stopping the job upstream is the caller's [`CancelOnDrop`].

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::call::{self, Failure};
use super::spec::Poll;
use super::Upstream;
use crate::servers::RequestContext;

/// The first pause before a status request; each next one is twice as long, up to
/// `interval_ms`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Status requests in a row that may fail for a passing reason (5xx, timeout, rate limit)
/// before the call gives up on following the job.
const MAX_MISSES: u32 = 3;

/// How following a job ended, when it did not fail.
#[derive(Debug, PartialEq)]
pub enum Followed {
    /// The job is done: its last status.
    Done(Value),
    /// The job was still running when the wait was over: its last status.
    Running(Value),
}

/// Why following a job ended without an answer.
#[derive(Debug)]
pub enum Stop {
    /// The job ended in one of the `failed` statuses, with its reason if the status gave one.
    Failed {
        status: String,
        reason: Option<String>,
    },
    /// The call was cancelled.
    Cancelled,
    /// A status request failed (for a lasting reason, or too many times in a row).
    Upstream(Failure),
}

/// Where a status says the job is.
enum State {
    Done,
    Failed(Option<String>),
    Running,
}

/// The status text of an answer (`"running"` when it has none).
fn status_text(poll: &Poll, answer: &Value) -> String {
    match answer.pointer(&poll.status) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => "running".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn state(poll: &Poll, answer: &Value, status: &str) -> State {
    if poll.done.iter().any(|done| done == status) {
        State::Done
    } else if poll.failed.iter().any(|failed| failed == status) {
        let reason = poll
            .message
            .as_deref()
            .and_then(|pointer| answer.pointer(pointer))
            .and_then(Value::as_str)
            .filter(|reason| !reason.trim().is_empty())
            .map(str::to_owned);
        State::Failed(reason)
    } else {
        State::Running
    }
}

/// Whether a failed status request may be tried again at the next pause.
fn passing(failure: &Failure) -> bool {
    matches!(
        failure,
        Failure::Unavailable { .. }
            | Failure::TimedOut
            | Failure::Unreachable(_)
            | Failure::RateLimited { .. }
    )
}

/// Progress notifications for one job: the declared counts when the status has them, else the
/// number of polls; only ever increasing, as the protocol requires.
#[derive(Default)]
struct Reporter {
    polls: u32,
    sent: Option<f64>,
}

impl Reporter {
    fn report(&mut self, ctx: &RequestContext, poll: &Poll, answer: &Value, status: &str) {
        self.polls += 1;
        let number = |pointer: &Option<String>| {
            pointer
                .as_deref()
                .and_then(|pointer| answer.pointer(pointer))
                .and_then(Value::as_f64)
        };
        let (progress, total) = match number(&poll.progress) {
            Some(done) => (done, number(&poll.total)),
            None => (f64::from(self.polls), None),
        };
        if self.sent.is_some_and(|sent| progress <= sent) {
            return;
        }
        self.sent = Some(progress);
        let message = match (number(&poll.progress), total) {
            (Some(done), Some(total)) => format!("{status}: {done} of {total}"),
            _ => status.to_owned(),
        };
        ctx.progress(progress, total, Some(&message));
    }
}

/// Follows a job from the answer that started it: `status_of` reads its status. The start
/// answer itself may already say the job ended.
pub async fn follow<F, Fut>(
    poll: &Poll,
    ctx: &RequestContext,
    start: &Value,
    mut status_of: F,
) -> Result<Followed, Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Value, Failure>>,
{
    let first = status_text(poll, start);
    match state(poll, start, &first) {
        State::Done if start.pointer(&poll.status).is_some() => {
            return Ok(Followed::Done(start.clone()))
        }
        State::Failed(reason) => {
            return Err(Stop::Failed {
                status: first,
                reason,
            })
        }
        _ => {}
    }
    let started = Instant::now();
    let max_wait = Duration::from_secs(poll.max_wait_secs);
    let longest = Duration::from_millis(poll.interval_ms);
    let mut pause = FIRST_PAUSE.min(longest);
    let mut reporter = Reporter::default();
    let mut last = start.clone();
    let mut misses = 0;
    loop {
        let left = max_wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Ok(Followed::Running(last));
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(left)) => {}
            () = ctx.cancellation.cancelled() => return Err(Stop::Cancelled),
        }
        pause = (pause * 2).min(longest);
        let fetched = tokio::select! {
            fetched = status_of() => fetched,
            () = ctx.cancellation.cancelled() => return Err(Stop::Cancelled),
        };
        let answer = match fetched {
            Ok(answer) => {
                misses = 0;
                answer
            }
            Err(failure) if passing(&failure) && misses + 1 < MAX_MISSES => {
                misses += 1;
                continue;
            }
            Err(failure) => return Err(Stop::Upstream(failure)),
        };
        let status = status_text(poll, &answer);
        match state(poll, &answer, &status) {
            State::Done => return Ok(Followed::Done(answer)),
            State::Failed(reason) => return Err(Stop::Failed { status, reason }),
            State::Running => reporter.report(ctx, poll, &answer, &status),
        }
        last = answer;
    }
}

/// The start answer with a status answer laid over it (top-level fields of the status win), so
/// the answer keeps what only the start said (the job's id, its URL).
pub fn merged(start: Value, status: Value) -> Value {
    match (start, status) {
        (Value::Object(mut start), Value::Object(status)) => {
            start.extend(status);
            Value::Object(start)
        }
        (_, status) => status,
    }
}

/// The request that stops a job, sent if the call ends (cancelled, or its future dropped)
/// while the job still runs; [`CancelOnDrop::disarm`] once the job's fate is known. It is sent
/// on a task of its own, since the call that armed it is gone by then.
pub struct CancelOnDrop {
    upstream: Upstream,
    request: Option<reqwest::RequestBuilder>,
    job: String,
}

impl CancelOnDrop {
    pub fn new(upstream: Upstream, request: Option<reqwest::RequestBuilder>, job: &str) -> Self {
        CancelOnDrop {
            upstream,
            request,
            job: job.to_owned(),
        }
    }

    pub fn disarm(&mut self) {
        self.request = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(request) = self.request.take() else {
            return;
        };
        // Without a runtime (the process is ending) there is no sending anything.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let upstream = self.upstream.clone();
        let job = std::mem::take(&mut self.job);
        runtime.spawn(async move {
            let again = || {
                request.try_clone().ok_or_else(|| {
                    Failure::BadArgument("the cancel request cannot be repeated".into())
                })
            };
            match call::exchange_raw(&upstream, again).await {
                Ok(_) => tracing::info!(server = %upstream.server, job, "cancelled the upstream job of a cancelled call"),
                Err(failure) => tracing::warn!(server = %upstream.server, job, ?failure, "the upstream job of a cancelled call could not be cancelled"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    use crate::protocol::jsonrpc::Outgoing;
    use crate::servers::context::{ClientLink, Era};

    /// Collects what the call sends to the client.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Value>>);

    impl ClientLink for Recorder {
        fn notify(&self, message: Outgoing) {
            let text = serde_json::to_value(&message).unwrap_or_default();
            self.0.lock().unwrap().push(text);
        }

        fn request(
            &self,
            _method: &'static str,
            _params: Value,
        ) -> futures::future::BoxFuture<'static, Result<Value, crate::protocol::error::McpError>>
        {
            Box::pin(async { Err(crate::protocol::error::McpError::internal("no")) })
        }
    }

    struct NoCredentials;

    impl crate::servers::CredentialSource for NoCredentials {
        fn get(
            &self,
        ) -> futures::future::BoxFuture<
            'static,
            Result<crate::auth::credentials::Credentials, crate::auth::store::AuthError>,
        > {
            Box::pin(async { Ok(crate::auth::credentials::Credentials::default()) })
        }

        fn after_rejection(
            &self,
            _rejected: &str,
        ) -> futures::future::BoxFuture<
            'static,
            Result<crate::auth::credentials::Credentials, crate::auth::store::AuthError>,
        > {
            self.get()
        }
    }

    fn context(link: Arc<Recorder>) -> RequestContext {
        RequestContext {
            user_id: Arc::from("alice"),
            protocol: crate::protocol::version::ProtocolVersion::LATEST_LEGACY,
            client_capabilities: Arc::default(),
            era: Era::Legacy,
            progress_token: Some(json!("p1")),
            log_level: None,
            cancellation: tokio_util::sync::CancellationToken::new(),
            link,
            credentials: Arc::new(NoCredentials),
        }
    }

    fn crawl() -> Poll {
        toml::from_str(
            r#"
            id = "/id"
            path = "/crawl/{id}"
            status = "/status"
            done = ["completed"]
            failed = ["failed", "cancelled"]
            message = "/error"
            progress = "/completed"
            total = "/total"
            interval_ms = 100
            max_wait_secs = 1
            "#,
        )
        .unwrap()
    }

    /// A job whose statuses are `answers`, one per status request (the last one repeated).
    fn scripted(
        answers: Vec<Value>,
    ) -> impl FnMut() -> futures::future::Ready<Result<Value, Failure>> {
        let mut answers = answers.into_iter().peekable();
        let mut last = Value::Null;
        move || {
            if let Some(next) = answers.next() {
                last = next;
            }
            futures::future::ready(Ok(last.clone()))
        }
    }

    fn progress_sent(link: &Recorder) -> Vec<(f64, Option<f64>, String)> {
        link.0
            .lock()
            .unwrap()
            .iter()
            .map(|message| {
                let params = &message["params"];
                (
                    params["progress"].as_f64().unwrap(),
                    params["total"].as_f64(),
                    params["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_job_is_followed_to_its_end_with_increasing_progress() {
        let link = Arc::new(Recorder::default());
        let ctx = context(link.clone());
        let status =
            |completed: u32| json!({ "status": "scraping", "completed": completed, "total": 4 });
        let statuses = scripted(vec![
            status(0),
            status(2),
            status(2),
            status(3),
            json!({ "status": "completed", "completed": 4, "total": 4, "data": [1, 2, 3, 4] }),
        ]);
        let followed = follow(&crawl(), &ctx, &json!({ "id": "c1" }), statuses).await;
        assert_eq!(
            followed.unwrap(),
            Followed::Done(
                json!({ "status": "completed", "completed": 4, "total": 4, "data": [1, 2, 3, 4] })
            )
        );
        assert_eq!(
            progress_sent(&link),
            [
                (0.0, Some(4.0), "scraping: 0 of 4".to_owned()),
                (2.0, Some(4.0), "scraping: 2 of 4".to_owned()),
                (3.0, Some(4.0), "scraping: 3 of 4".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_job_gives_its_reason_and_a_long_one_is_left_running() {
        let ctx = context(Arc::new(Recorder::default()));
        let failed = scripted(vec![
            json!({ "status": "failed", "error": "robots.txt forbids it" }),
        ]);
        match follow(&crawl(), &ctx, &json!({ "id": "c1" }), failed).await {
            Err(Stop::Failed { status, reason }) => {
                assert_eq!(status, "failed");
                assert_eq!(reason.as_deref(), Some("robots.txt forbids it"));
            }
            other => panic!("{other:?}"),
        }
        let forever = scripted(vec![json!({ "status": "scraping" })]);
        let followed = follow(&crawl(), &ctx, &json!({ "id": "c1" }), forever).await;
        assert_eq!(
            followed.unwrap(),
            Followed::Running(json!({ "status": "scraping" }))
        );
    }

    #[tokio::test]
    async fn cancellation_stops_the_pause_and_passing_failures_are_tried_again() {
        let ctx = context(Arc::new(Recorder::default()));
        ctx.cancellation.cancel();
        let never = || futures::future::ready(Ok::<_, Failure>(json!({ "status": "scraping" })));
        assert!(matches!(
            follow(&crawl(), &ctx, &json!({ "id": "c1" }), never).await,
            Err(Stop::Cancelled)
        ));
        let ctx = context(Arc::new(Recorder::default()));
        let mut calls = 0;
        let flaky = move || {
            calls += 1;
            futures::future::ready(match calls {
                1 | 2 => Err(Failure::Unavailable { status: 502 }),
                _ => Ok(json!({ "status": "completed" })),
            })
        };
        let followed = follow(&crawl(), &ctx, &json!({ "id": "c1" }), flaky).await;
        assert_eq!(
            followed.unwrap(),
            Followed::Done(json!({ "status": "completed" }))
        );
        let broken = || futures::future::ready(Err(Failure::Unavailable { status: 503 }));
        assert!(matches!(
            follow(&crawl(), &ctx, &json!({ "id": "c1" }), broken).await,
            Err(Stop::Upstream(Failure::Unavailable { status: 503 }))
        ));
    }

    #[test]
    fn the_start_answer_is_kept_under_the_status() {
        assert_eq!(
            merged(
                json!({ "id": "c1", "url": "u", "status": "x" }),
                json!({ "status": "completed" })
            ),
            json!({ "id": "c1", "url": "u", "status": "completed" })
        );
    }
}
