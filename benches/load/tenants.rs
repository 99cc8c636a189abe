//! `tenants`: what a user costs the server after their call is done. A wave of `--tenants`
//! distinct users (10,000) makes one stateless `list-data` call each, which stores nothing,
//! so all a user leaves behind in gumcp is their live (server, user) instance; the server's
//! RSS before and after, divided by the instances its own `gumcp_live_actors{kind="server"}`
//! gauge counts, is the cost of one. gumcp runs this preset with a short
//! `runtime.server_idle_ttl_secs`: the preset waits until the gauge reads 0, reads RSS again,
//! and sends a second wave of as many new users — RSS after it close to RSS after the first
//! shows that stopped instances' memory is used again rather than lost.
//!
//! The baselines keep nothing per user: for them the same waves measure RSS growth per
//! request, and there is nothing to wait for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;

use crate::http::{read_body, Conn, Endpoint, Res};
use crate::preset::{Limits, Scenario};
use crate::procfs::{self, Sample};
use crate::report::{Row, TenantMemory};
use crate::run::{histogram, timed, Shared};
use crate::users::{self, Routes};

/// How often the live-instance gauge is read while waiting for the idle stop.
const POLL: Duration = Duration::from_millis(250);
/// The server actor checks for idleness every min(TTL, 5 s): an instance stops between one TTL
/// and one TTL plus that period after its last call.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Time for the server to finish what follows a wave (actors starting or stopping) before its
/// memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the preset against a started target (`pid`, and gumcp's `metrics` endpoint).
pub async fn tenants(
    label: &str,
    routes: Arc<Routes>,
    pid: Option<u32>,
    metrics: Option<Endpoint>,
    limits: &Limits,
    idle_ttl: Duration,
) -> Row {
    let users = limits.tenants.max(1);
    let connections = limits.users.min(users);
    let sample = || pid.and_then(procfs::sample);
    let live = || async {
        match &metrics {
            Some(metrics) => live_instances(metrics).await,
            None => None,
        }
    };
    // One call per connection by users outside both waves, so the connections, the server's
    // shared per-server state and its allocator's first arenas exist before `before`.
    let warm = wave(&routes, 2 * users, connections, connections).await;
    tokio::time::sleep(SETTLE).await;
    let before = sample();
    let live_before = live().await;

    eprintln!("  {label} tenants: wave 1, {users} users over {connections} connections");
    let first = wave(&routes, 0, users, connections).await;
    tokio::time::sleep(SETTLE).await;
    let wave1 = sample();
    let live_wave1 = live().await;

    // Only gumcp stops anything; the baselines' waves just follow each other.
    let mut idle = None;
    let mut live_idle = None;
    let mut idle_wait = None;
    if let Some(metrics) = &metrics {
        eprintln!("  {label} tenants: waiting for the idle stop");
        let waited = Instant::now();
        let deadline = idle_ttl + 2 * IDLE_CHECK + Duration::from_secs(10);
        loop {
            live_idle = live_instances(metrics).await;
            if live_idle == Some(0) || waited.elapsed() > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        idle_wait = Some(waited.elapsed().as_secs_f64());
        tokio::time::sleep(SETTLE).await;
        idle = sample();
    }

    eprintln!("  {label} tenants: wave 2, {users} new users");
    let second = wave(&routes, users, users, connections).await;
    tokio::time::sleep(SETTLE).await;
    let wave2 = sample();
    let live_wave2 = live().await;

    let mut row = Row::from_histogram(
        label,
        Scenario::Tenants,
        users,
        &first.hist,
        first.elapsed,
        &first.shared,
    );
    row.set_samples(before, wave1);
    row.errors += warm.errors() + second.errors();
    for shared in [&warm.shared, &second.shared] {
        row.error_samples.extend(shared.samples());
    }
    let rss = |sample: Option<Sample>| sample.map_or(0, |s| s.rss_kib);
    let added = match (live_before, live_wave1) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => users as u64,
    };
    let grown = rss(wave1).saturating_sub(rss(before));
    let memory = TenantMemory {
        users_per_wave: users,
        connections,
        rss_before_kib: rss(before),
        rss_wave1_kib: rss(wave1),
        rss_idle_kib: idle.map(|s| s.rss_kib),
        rss_wave2_kib: rss(wave2),
        live_before,
        live_wave1,
        live_idle,
        live_wave2,
        kib_per_instance: grown as f64 / added.max(1) as f64,
        wave1_secs: first.elapsed.as_secs_f64(),
        idle_wait_secs: idle_wait,
        wave2_secs: second.elapsed.as_secs_f64(),
    };
    row.rss_per_session_kib = Some(memory.kib_per_instance);
    row.note = describe(&memory);
    if live_wave1.is_some() && added < users as u64 {
        // Stopped instances' memory is still in the RSS read, spread over fewer instances.
        row.note.push_str(&format!(
            "; only {added} of {users} instances were live when RSS was read: the wave took \
             longer than the idle TTL (raise --tenant-idle-ttl), so KiB each is overstated"
        ));
    }
    row.tenants = Some(memory);
    row
}

/// The run in one sentence for the report's notes.
fn describe(m: &TenantMemory) -> String {
    let count = |live: Option<u64>| live.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let wave2_vs_wave1 = m.rss_wave2_kib as i64 - m.rss_wave1_kib as i64;
    match m.rss_idle_kib {
        Some(idle) => format!(
            "{} users per wave over {} connections; live instances {}→{} after wave 1 \
             ({:.1} s); RSS {} → {} KiB ({:.2} KiB per instance); idle stop after {:.1} s \
             ({} live): {} KiB; wave 2 ({:.1} s, {} live): {} KiB ({:+} KiB vs wave 1)",
            m.users_per_wave,
            m.connections,
            count(m.live_before),
            count(m.live_wave1),
            m.wave1_secs,
            m.rss_before_kib,
            m.rss_wave1_kib,
            m.kib_per_instance,
            m.idle_wait_secs.unwrap_or_default(),
            count(m.live_idle),
            idle,
            m.wave2_secs,
            count(m.live_wave2),
            m.rss_wave2_kib,
            wave2_vs_wave1,
        ),
        None => format!(
            "no per-user instances: KiB each = RSS growth per request; {} users per wave \
             over {} connections; RSS {} → {} KiB after wave 1, {} KiB after wave 2 \
             ({:+} KiB vs wave 1)",
            m.users_per_wave,
            m.connections,
            m.rss_before_kib,
            m.rss_wave1_kib,
            m.rss_wave2_kib,
            wave2_vs_wave1,
        ),
    }
}

/// One wave's latencies and errors.
struct Wave {
    shared: Arc<Shared>,
    hist: Histogram<u64>,
    elapsed: Duration,
}

impl Wave {
    fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }
}

/// Users `first..first + count`, one call each, shared out over `connections` keep-alive
/// connections (a user is a session key, not a connection: this measures instances, not
/// sockets).
async fn wave(routes: &Arc<Routes>, first: usize, count: usize, connections: usize) -> Wave {
    let shared = Arc::new(Shared::new(None));
    shared.start_recording();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..connections.min(count))
        .map(|_| {
            let (routes, shared, next) = (routes.clone(), shared.clone(), next.clone());
            tokio::spawn(async move {
                let mut hist = histogram();
                let mut conn = None;
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    if at >= count {
                        break;
                    }
                    let started = Instant::now();
                    match timed("tenant's call", one_call(&mut conn, &routes, first + at)).await {
                        Ok(ok) => shared.record(&mut hist, started, ok),
                        Err(err) => {
                            shared.record(&mut hist, started, false);
                            shared.sample(err.to_string());
                            conn = None;
                        }
                    }
                }
                hist
            })
        })
        .collect();
    let mut hist = histogram();
    for caller in callers {
        match caller.await {
            Ok(part) => {
                let _ = hist.add(&part);
            }
            Err(err) => shared.sample(format!("caller task failed: {err}")),
        }
    }
    Wave {
        shared,
        hist,
        elapsed: started.elapsed(),
    }
}

/// User `index`'s one call, on the caller's connection (opened again after a failure).
async fn one_call(conn: &mut Option<Conn>, routes: &Routes, index: usize) -> Res<bool> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(Conn::connect(&routes.endpoint).await?),
    };
    let path = routes.mcp(&routes.user(index));
    users::stateless_call(conn, &path, routes.call, 1, index).await
}

/// gumcp's count of live server instances, from its Prometheus endpoint.
async fn live_instances(metrics: &Endpoint) -> Option<u64> {
    let mut conn = Conn::connect(metrics).await.ok()?;
    let response = conn
        .send(Method::GET, &metrics.path(""), &[], Bytes::new())
        .await
        .ok()?;
    let body = read_body(response).await.ok()?;
    let text = std::str::from_utf8(&body).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(r#"gumcp_live_actors{kind="server"} "#))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}
