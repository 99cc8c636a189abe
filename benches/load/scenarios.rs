//! The named presets and how each one is driven: the request loops share one runner (users,
//! warm-up, window, progress line, /proc samples); `idle-sessions` and `startup` measure
//! memory and time-to-ready instead of a request rate.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use tokio::sync::Semaphore;

use crate::http::{read_body, Conn, Endpoint, Res};
use crate::preset::{Limits, Scenario};
use crate::procfs::{self, Sample};
use crate::report::Row;
use crate::run::{histogram, Shared};
use crate::targets::{Launch, Server, Target};
use crate::users::{self, Routes};

type UserFuture = Pin<Box<dyn Future<Output = Histogram<u64>> + Send>>;

/// Runs `users` request loops made by `make_user`, records after the warm-up for the duration
/// (or from the start for a request budget), and samples the server before and after.
pub async fn run_users(
    label: (&str, Scenario),
    users: usize,
    pid: Option<u32>,
    limits: &Limits,
    make_user: impl Fn(Arc<Shared>, usize) -> UserFuture,
) -> Row {
    let shared = Arc::new(Shared::new(limits.requests));
    let handles: Vec<_> = (0..users)
        .map(|index| tokio::spawn(make_user(shared.clone(), index)))
        .collect();
    let progress = tokio::spawn(progress_line(
        format!("{} {}", label.0, label.1.label()),
        shared.clone(),
        limits.clone(),
    ));
    if limits.requests.is_none() {
        tokio::time::sleep(limits.warmup).await;
        shared.start_recording();
    }
    let before = pid.and_then(procfs::sample);
    let window = Instant::now();
    let mut merged = histogram();
    if limits.requests.is_none() {
        tokio::time::sleep(limits.duration).await;
        shared.stop();
    } else {
        // The budget may take longer than a user's stop timeout below (a slow target, one
        // under valgrind): wait for the budget before giving the users that timeout. Every
        // request a user starts, or retries, draws on the budget, so this ends.
        while !shared.stopped() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut elapsed = window.elapsed();
    let mut after = pid.and_then(procfs::sample);
    for handle in handles {
        match tokio::time::timeout(Duration::from_secs(15), handle).await {
            Ok(Ok(hist)) => {
                let _ = merged.add(&hist);
            }
            Ok(Err(err)) => shared.sample(format!("user task failed: {err}")),
            Err(_) => shared.sample("a user did not stop within 15 s".to_owned()),
        }
    }
    if limits.requests.is_some() {
        elapsed = window.elapsed();
        after = pid.and_then(procfs::sample);
    }
    shared.stop();
    let _ = progress.await;
    let mut row = Row::from_histogram(label.0, label.1, users, &merged, elapsed, &shared);
    row.set_samples(before, after);
    row
}

/// A `\r` status line on stderr twice a second while a scenario runs.
async fn progress_line(name: String, shared: Arc<Shared>, limits: Limits) {
    let started = Instant::now();
    let mut last = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.tick().await;
    while !shared.stopped() {
        ticker.tick().await;
        let done = shared.done.load(Ordering::Relaxed);
        let rate = (done - last.min(done)) * 2;
        last = done;
        let total = match limits.requests {
            Some(n) => format!("{done}/{n}"),
            None => format!(
                "{:>4.1}s/{:.0}s",
                started.elapsed().as_secs_f64(),
                (limits.warmup + limits.duration).as_secs_f64()
            ),
        };
        eprint!(
            "\r  {name}: {total}  {done} ok  {rate}/s  {} errors   ",
            shared.errors.load(Ordering::Relaxed)
        );
    }
    eprintln!();
}

/// The request-loop presets against an HTTP target.
pub async fn run_http(
    label: &str,
    scenario: Scenario,
    routes: Arc<Routes>,
    pid: Option<u32>,
    limits: &Limits,
) -> Row {
    run_users(
        (label, scenario),
        limits.users,
        pid,
        limits,
        |shared, index| {
            let routes = routes.clone();
            match scenario {
                Scenario::SessionCycle => Box::pin(users::session_cycle(shared, routes, index)),
                Scenario::StatelessCalls | Scenario::UpstreamCalls => {
                    Box::pin(users::stateless_calls(shared, routes, index))
                }
                _ => Box::pin(users::sse_calls(shared, routes, index)),
            }
        },
    )
    .await
}

/// Sessions per user in `idle-sessions`: under the runtime's per-user cap (200 by default).
const IDLE_SESSIONS_PER_USER: usize = 100;
/// Sessions being opened at once: enough to be quick, few enough for the accept backlog.
const IDLE_OPENING: usize = 256;

/// `idle-sessions`: opens `limits.sessions` SSE sessions, holds them while the server settles,
/// and reports the server's RSS growth per session. Latency is the time to open one.
pub async fn idle_sessions(
    label: &str,
    routes: Arc<Routes>,
    pid: Option<u32>,
    limits: &Limits,
) -> Row {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = pid.and_then(procfs::sample);
    let shared = Arc::new(Shared::new(None));
    shared.start_recording();
    let opening = Arc::new(Semaphore::new(IDLE_OPENING));
    let opened = Arc::new(AtomicU64::new(0));
    let window = Instant::now();
    let handles: Vec<_> = (0..limits.sessions)
        .map(|index| {
            let (routes, shared, opening, opened) = (
                routes.clone(),
                shared.clone(),
                opening.clone(),
                opened.clone(),
            );
            tokio::spawn(async move {
                let permit = opening.acquire_owned().await.ok()?;
                let user = routes.user(index / IDLE_SESSIONS_PER_USER);
                let started = Instant::now();
                let session = crate::run::timed("open SSE", users::open_sse(&routes, &user)).await;
                drop(permit);
                let mut hist = histogram();
                match session {
                    Ok(session) => {
                        shared.record(&mut hist, started, true);
                        opened.fetch_add(1, Ordering::Relaxed);
                        Some((session, hist))
                    }
                    Err(err) => {
                        shared.record(&mut hist, started, false);
                        shared.sample(err.to_string());
                        None
                    }
                }
            })
        })
        .collect();
    let progress = {
        let (shared, opened, total) = (shared.clone(), opened.clone(), limits.sessions);
        let name = label.to_owned();
        tokio::spawn(async move {
            while !shared.stopped() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                eprint!(
                    "\r  {name} idle-sessions: {}/{total} open  {} errors   ",
                    opened.load(Ordering::Relaxed),
                    shared.errors.load(Ordering::Relaxed),
                );
            }
            eprintln!();
        })
    };
    let mut held = Vec::with_capacity(limits.sessions);
    let mut merged = histogram();
    for handle in handles {
        if let Ok(Some((session, hist))) = handle.await {
            let _ = merged.add(&hist);
            held.push(session);
        }
    }
    let elapsed = window.elapsed();
    // Let the server finish whatever it does per new session before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(procfs::sample);
    shared.stop();
    let _ = progress.await;
    let mut row = Row::from_histogram(
        label,
        Scenario::IdleSessions,
        limits.sessions,
        &merged,
        elapsed,
        &shared,
    );
    row.set_samples(before, after);
    if let (Some(before), Some(after), false) = (before, after, held.is_empty()) {
        row.rss_per_session_kib =
            Some(after.rss_kib.saturating_sub(before.rss_kib) as f64 / held.len() as f64);
    }
    row.note = format!(
        "{} sessions held, {} per user",
        held.len(),
        IDLE_SESSIONS_PER_USER
    );
    drop(held);
    row
}

/// `startup`: launches the target `limits.startup_runs` times; latency is exec → first 200 from
/// GET /health_check, RSS and CPU are read half a second after ready.
pub async fn startup(target: Target, limits: &Limits) -> Res<Row> {
    let shared = Shared::new(None);
    shared.start_recording();
    let mut hist = histogram();
    let mut idle: Vec<Sample> = Vec::new();
    let window = Instant::now();
    for run in 0..limits.startup_runs {
        eprint!(
            "\r  {} startup: run {}/{}   ",
            target.label(),
            run + 1,
            limits.startup_runs
        );
        let log_name = format!("{}-startup", target.label());
        let server = Server::launch(target, &log_name, &Launch::default())?;
        let endpoint = Endpoint::parse(&server.url).await?;
        let ready = loop {
            if health_ok(&endpoint).await {
                break true;
            }
            if server.started.elapsed() > Duration::from_secs(10) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        shared.record(&mut hist, server.started, ready);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(sample) = procfs::sample(server.pid) {
            idle.push(sample);
        }
    }
    eprintln!();
    let mut row = Row::from_histogram(
        target.label(),
        Scenario::Startup,
        1,
        &hist,
        window.elapsed(),
        &shared,
    );
    idle.sort_by_key(|sample| sample.rss_kib);
    let median = idle.get(idle.len() / 2).copied();
    row.set_samples(Some(Sample::default()), median);
    row.rps = 0.0;
    row.note = format!(
        "{} launches; latency = exec to ready, RSS/CPU = median at idle",
        limits.startup_runs
    );
    Ok(row)
}

async fn health_ok(endpoint: &Endpoint) -> bool {
    let Ok(mut conn) = Conn::connect(endpoint).await else {
        return false;
    };
    let path = endpoint.path("/health_check");
    match conn.send(Method::GET, &path, &[], Bytes::new()).await {
        Ok(response) => {
            let ok = response.status() == StatusCode::OK;
            ok && read_body(response).await.is_ok()
        }
        Err(_) => false,
    }
}
