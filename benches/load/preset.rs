//! The presets the load generator runs and the limits it runs them with, from the command line.

use std::time::Duration;

use clap::ValueEnum;

use crate::mcp::Call;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 50 legacy SSE sessions, tools/call in a loop (guMCP's routes).
    SseCalls,
    /// initialize → initialized → tools/call → DELETE over Streamable HTTP, 50 users.
    SessionCycle,
    /// 2026-07-28 stateless POST tools/call, 50 users.
    StatelessCalls,
    /// 2026-07-28 stateless POST of hackernews's declared `get_story_details`, 50 users: one GET
    /// to the load generator's mock upstream per call.
    UpstreamCalls,
    /// The same tool over 50 legacy SSE sessions.
    UpstreamSse,
    /// Open 10,000 SSE sessions, hold them, report server RSS per session.
    IdleSessions,
    /// 10,000 users with one stateless call each: server RSS per live (server, user) instance,
    /// after the idle stop, and after a second wave of 10,000 new users.
    Tenants,
    /// ping round trips over stdio, one client.
    StdioPing,
    /// Time from exec to the first successful GET /health_check, and RSS at idle.
    Startup,
    /// Two gumcp nodes in cluster mode on one Redis (`GUMCP_BENCH_REDIS_URL`, else database 9
    /// of 127.0.0.1:6379), 50 legacy SSE sessions on the first: `sse-calls` with every POST to
    /// the owner, then with every POST to the other node (forwarded), one row each. Only when
    /// asked for by name.
    Cluster,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::SseCalls,
        Scenario::SessionCycle,
        Scenario::StatelessCalls,
        Scenario::UpstreamCalls,
        Scenario::UpstreamSse,
        Scenario::IdleSessions,
        Scenario::Tenants,
        Scenario::StdioPing,
        Scenario::Startup,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::SseCalls => "sse-calls",
            Scenario::SessionCycle => "session-cycle",
            Scenario::StatelessCalls => "stateless-calls",
            Scenario::UpstreamCalls => "upstream-calls",
            Scenario::UpstreamSse => "upstream-sse",
            Scenario::IdleSessions => "idle-sessions",
            Scenario::Tenants => "tenants",
            Scenario::StdioPing => "stdio-ping",
            Scenario::Startup => "startup",
            Scenario::Cluster => "cluster",
        }
    }

    /// The tool calls the preset makes.
    pub fn call(self) -> Call {
        match self {
            Scenario::UpstreamCalls | Scenario::UpstreamSse => Call::Story,
            Scenario::Tenants => Call::ListData,
            _ => Call::StoreRetrieve,
        }
    }

    /// Whether the preset needs the mock upstream.
    pub fn needs_upstream(self) -> bool {
        self.call() == Call::Story
    }
}

/// How long and how hard to run, from the command line.
#[derive(Clone, Debug)]
pub struct Limits {
    pub users: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub requests: Option<u64>,
    pub sessions: usize,
    pub tenants: usize,
    pub startup_runs: usize,
}
