//! Results: one row per (target, scenario), printed as a table, written as JSON, and compared
//! as ratios against the baselines that ran in the same invocation.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::preset::Scenario;
use crate::procfs::Sample;
use crate::run::Shared;

/// The memory story of one `tenants` run, kept in the JSON beside the row.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TenantMemory {
    pub users_per_wave: usize,
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_wave1_kib: u64,
    /// RSS once every instance has stopped (gumcp only).
    pub rss_idle_kib: Option<u64>,
    pub rss_wave2_kib: u64,
    /// Live instances by the server's gauge (gumcp only), at the same moments.
    pub live_before: Option<u64>,
    pub live_wave1: Option<u64>,
    pub live_idle: Option<u64>,
    pub live_wave2: Option<u64>,
    /// RSS growth over wave 1 per live instance it added (per request where none are counted).
    pub kib_per_instance: f64,
    pub wave1_secs: f64,
    pub idle_wait_secs: Option<f64>,
    pub wave2_secs: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub target: String,
    pub scenario: String,
    pub users: usize,
    /// Successful requests (or cycles, sessions opened, launches) in the window.
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_rss_start_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    /// Server CPU (user + system) spent in the window.
    pub server_cpu_secs: Option<f64>,
    /// `idle-sessions`: RSS per held session; `tenants`: RSS per live (server, user) instance
    /// (per request for the baselines, which keep none).
    pub rss_per_session_kib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<TenantMemory>,
    pub error_samples: Vec<String>,
    pub note: String,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Row {
    pub fn from_histogram(
        target: &str,
        scenario: Scenario,
        users: usize,
        hist: &Histogram<u64>,
        elapsed: Duration,
        shared: &Shared,
    ) -> Self {
        let requests = hist.len();
        let seconds = elapsed.as_secs_f64();
        let empty = requests == 0;
        let at = |q: f64| {
            if empty {
                0.0
            } else {
                ms(hist.value_at_quantile(q))
            }
        };
        Self {
            target: target.to_owned(),
            scenario: scenario.label().to_owned(),
            users,
            requests,
            errors: shared.errors.load(std::sync::atomic::Ordering::Relaxed),
            seconds,
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: if empty { 0.0 } else { ms(hist.max()) },
            server_rss_start_kib: None,
            server_rss_end_kib: None,
            server_cpu_secs: None,
            rss_per_session_kib: None,
            tenants: None,
            error_samples: shared.samples(),
            note: String::new(),
        }
    }

    pub fn set_samples(&mut self, before: Option<Sample>, after: Option<Sample>) {
        self.server_rss_start_kib = before.map(|s| s.rss_kib);
        self.server_rss_end_kib = after.map(|s| s.rss_kib);
        if let (Some(before), Some(after)) = (before, after) {
            self.server_cpu_secs = Some(after.cpu_secs - before.cpu_secs);
        }
    }

    /// A row that could not run (a target failed to start): kept so the table says why.
    pub fn failed(target: &str, scenario: Scenario, why: String) -> Self {
        Self {
            target: target.to_owned(),
            scenario: scenario.label().to_owned(),
            users: 0,
            requests: 0,
            errors: 1,
            seconds: 0.0,
            rps: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            server_rss_start_kib: None,
            server_rss_end_kib: None,
            server_cpu_secs: None,
            rss_per_session_kib: None,
            tenants: None,
            error_samples: vec![why],
            note: "did not run".to_owned(),
        }
    }
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The results as a Markdown table (readable in a terminal, pasteable into BENCHMARKS.md).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | target | users | ok | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | server RSS KiB (start→end) | server CPU s | KiB each |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {}→{} | {} | {} |\n",
            row.scenario,
            row.target,
            row.users,
            row.requests,
            row.errors,
            row.rps,
            row.p50_ms,
            row.p90_ms,
            row.p99_ms,
            row.max_ms,
            opt(row.server_rss_start_kib),
            opt(row.server_rss_end_kib),
            opt(row.server_cpu_secs.map(|s| format!("{s:.2}"))),
            opt(row.rss_per_session_kib.map(|k| format!("{k:.1}"))),
        ));
    }
    out
}

/// Throughput of each target relative to the floor and to tuned rmcp, per scenario, where
/// both ran; and for the upstream presets, what each server adds to the bare round trip.
pub fn ratios(rows: &[Row]) -> String {
    let mut out = String::new();
    let find = |scenario: &str, target: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.target == target && r.rps > 0.0)
    };
    for row in rows.iter().filter(|r| r.rps > 0.0) {
        for base in ["floor", "rmcp-tuned"] {
            // Baselines against each other only where it says something: rmcp vs the floor.
            if row.target == "floor"
                || row.target == "bare-upstream"
                || (base == "rmcp-tuned" && row.target.starts_with("rmcp"))
            {
                continue;
            }
            if let Some(baseline) = find(&row.scenario, base) {
                out.push_str(&format!(
                    "- {} {}: {:.2}× {} throughput (p99 {:.2} ms vs {:.2} ms)\n",
                    row.scenario,
                    row.target,
                    row.rps / baseline.rps,
                    base,
                    row.p99_ms,
                    baseline.p99_ms
                ));
            }
        }
        if row.target == "bare-upstream" {
            continue;
        }
        // The upstream presets' own reference: the same GET with no server between.
        if let Some(bare) = find(&row.scenario, "bare-upstream") {
            out.push_str(&format!(
                "- {} {}: {:.2}× the bare upstream round trip's throughput; p50 {:+.3} ms, \
                 p99 {:+.3} ms over it ({:.3} / {:.3} ms bare)\n",
                row.scenario,
                row.target,
                row.rps / bare.rps,
                row.p50_ms - bare.p50_ms,
                row.p99_ms - bare.p99_ms,
                bare.p50_ms,
                bare.p99_ms,
            ));
        }
    }
    out
}

/// Error messages seen, per row, for the end of the report.
pub fn error_notes(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for sample in &row.error_samples {
            out.push_str(&format!("- {} {}: {sample}\n", row.scenario, row.target));
        }
        if !row.note.is_empty() {
            out.push_str(&format!(
                "- {} {}: {}\n",
                row.scenario, row.target, row.note
            ));
        }
    }
    out
}
