//! What the virtual users share while a scenario runs: when to record, when to stop, counters
//! for the progress line, and a few error samples for the report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How many distinct error messages are kept for the report.
const ERROR_SAMPLES: usize = 5;
/// Longest latency the histograms hold (one minute, in microseconds); longer values are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

pub struct Shared {
    stop: AtomicBool,
    recording: AtomicBool,
    /// `Some(n)`: stop after n requests (recorded from the start); `None`: run for a duration.
    budget: Option<u64>,
    issued: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(budget: Option<u64>) -> Self {
        Self {
            stop: AtomicBool::new(false),
            recording: AtomicBool::new(budget.is_some()),
            budget,
            issued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Whether a user should start another request.
    pub fn go(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.budget {
            Some(budget) if self.issued.fetch_add(1, Ordering::Relaxed) >= budget => {
                self.stop.store(true, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn start_recording(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Records one finished request that started at `started`, if the window was open for it.
    pub fn record(&self, hist: &mut Histogram<u64>, started: Instant, ok: bool) {
        if !self.recording.load(Ordering::Relaxed) || self.stopped() {
            return;
        }
        if ok {
            let micros = started.elapsed().as_micros().min(MAX_LATENCY_US as u128) as u64;
            hist.saturating_record(micros.max(1));
            self.done.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an error outside a timed request (a dropped stream, a refused session) and keeps
    /// its message if it is a new one.
    pub fn error(&self, message: String) {
        if self.recording.load(Ordering::Relaxed) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.sample(message);
    }

    pub fn sample(&self, message: String) {
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() < ERROR_SAMPLES && !samples.contains(&message) {
                samples.push(message);
            }
        }
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

pub fn histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to a minute: ~200 KiB per user, merged at the end.
    // The bounds are constants, so this cannot fail at run time.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Runs `fut` with the per-request timeout; a timeout becomes an error like any other.
pub async fn timed<T>(
    what: &str,
    fut: impl std::future::Future<Output = crate::http::Res<T>>,
) -> crate::http::Res<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(format!("{what}: no answer within {REQUEST_TIMEOUT:?}").into()),
    }
}

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
