//! Prometheus metrics, served on their own port by `serve`. Labels carry server names (from
//! the registry, so a bounded set), method names (the known ones, else `other`) and outcomes —
//! never user ids, session keys or anything secret.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric the runtime exports. One per process, shared through the runtime.
pub struct Metrics {
    registry: Registry,
    /// Live sessions (legacy SSE streams and Streamable HTTP sessions) per server. guMCP's name.
    pub active_connections: IntGaugeVec,
    /// Sessions ever opened per server. guMCP's name.
    pub connection_total: IntCounterVec,
    /// Requests answered, by server, method and outcome (`ok`, `error`, `tool_error`).
    pub requests: IntCounterVec,
    /// Time from receiving a server method to its answer.
    pub request_seconds: HistogramVec,
    /// Live actors by kind (`server`, `session`).
    pub live_actors: IntGaugeVec,
    /// Work refused or cut off by a bound, by reason (see [`Rejection`]).
    pub rejections: IntCounterVec,
    /// Server instances rebuilt after a panic (`restarted`), or left paused because they keep
    /// failing (`paused`), per server.
    pub server_restarts: IntCounterVec,
    /// Calls running against server instances (tools, resources, prompts, completions), per
    /// server.
    pub in_flight: IntGaugeVec,
    /// Per-(server, principal) states the supervisor keeps: those of live instances, and of
    /// stopped ones whose store holds data or whose events someone listens to.
    pub user_states: IntGauge,
    /// Token refreshes by credential service and outcome (`refreshed`, `rejected`,
    /// `transient`).
    pub credential_refreshes: IntCounterVec,
    /// Upstream API requests by server and status class (`2xx` … `5xx`, `error` when there
    /// was no answer).
    pub upstream_seconds: HistogramVec,
    /// Tasks kept (long-running calls clients poll), by state (`working`, `input_required`,
    /// `completed`, `failed`, `cancelled`); a task leaves the gauge when its TTL drops it.
    pub tasks: IntGaugeVec,
    /// Time from a task's creation to its terminal state, by server and final state.
    pub task_seconds: HistogramVec,
    /// Cluster mode (set when `/metrics` is read, labelled with this node's id so nothing
    /// shows on a single node): this node (always 1), the members it sees, whether Redis
    /// answers; and the requests for other nodes' sessions by
    /// outcome (`forwarded`, `owner_gone`, `unavailable`, `owner_slow`).
    pub cluster_node: IntGaugeVec,
    pub cluster_members: IntGaugeVec,
    pub cluster_redis_up: IntGaugeVec,
    pub cluster_forwards: IntCounterVec,
    /// Whether the credential store's own service (PostgreSQL) answered `SELECT 1` in time,
    /// labelled with the backend; set when `/metrics` is read, absent for file stores.
    pub credential_store_up: IntGaugeVec,
}

/// Why a bound refused work; the label value of `gumcp_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `http.max_sessions` reached.
    SessionsTotal,
    /// `http.max_sessions_per_user` reached.
    SessionsPerUser,
    /// `protocol.max_in_flight_per_session` reached.
    InFlightPerSession,
    /// `runtime.max_in_flight_per_user` reached.
    InFlightPerUser,
    /// A message over `protocol.max_message_bytes`.
    MessageTooLarge,
    /// A stream whose reader fell `protocol.outbound_buffer` messages behind was closed.
    SlowReader,
    /// A call to a server paused for failing more than `runtime.max_restarts_per_minute`.
    ServerFailing,
    /// `protocol.max_subscriptions_per_session` reached.
    SubscriptionsPerSession,
    /// A request body that did not arrive within `http.body_timeout_secs`.
    BodyTimeout,
    /// An audit record dropped because the audit file's writer fell that far behind.
    AuditBacklog,
    /// A connect page's OAuth sign-in refused: 10,000 are already waiting for their provider.
    ConnectSignIns,
    /// `tasks.max_per_user` reached.
    TasksPerUser,
    /// `tasks.max_total` reached.
    TasksTotal,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::SessionsTotal => "sessions_total",
            Rejection::SessionsPerUser => "sessions_per_user",
            Rejection::InFlightPerSession => "in_flight_per_session",
            Rejection::InFlightPerUser => "in_flight_per_user",
            Rejection::MessageTooLarge => "message_too_large",
            Rejection::SlowReader => "slow_reader",
            Rejection::ServerFailing => "server_failing",
            Rejection::SubscriptionsPerSession => "subscriptions_per_session",
            Rejection::BodyTimeout => "body_timeout",
            Rejection::AuditBacklog => "audit_backlog",
            Rejection::ConnectSignIns => "connect_sign_ins",
            Rejection::TasksPerUser => "tasks_per_user",
            Rejection::TasksTotal => "tasks_total",
        }
    }
}

/// Methods kept as their own label value; anything else a client sends is counted as `other`,
/// so a client cannot grow the label set.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
    "tasks/update",
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let active_connections = IntGaugeVec::new(
            Opts::new(
                "gumcp_active_connections",
                "Live MCP sessions (SSE streams and Streamable HTTP sessions) per server",
            ),
            &["server"],
        )
        .expect("static metric definition");
        let connection_total = IntCounterVec::new(
            Opts::new("gumcp_connection_total", "MCP sessions opened per server"),
            &["server"],
        )
        .expect("static metric definition");
        let requests = IntCounterVec::new(
            Opts::new(
                "gumcp_requests_total",
                "MCP requests answered, by server, method and outcome",
            ),
            &["server", "method", "outcome"],
        )
        .expect("static metric definition");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gumcp_request_duration_seconds",
                "Time to answer an MCP request, by server and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            &["server", "method"],
        )
        .expect("static metric definition");
        let live_actors = IntGaugeVec::new(
            Opts::new("gumcp_live_actors", "Live actors by kind"),
            &["kind"],
        )
        .expect("static metric definition");
        let rejections = IntCounterVec::new(
            Opts::new(
                "gumcp_rejections_total",
                "Work refused or cut off by a configured bound, by reason",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let server_restarts = IntCounterVec::new(
            Opts::new(
                "gumcp_server_restarts_total",
                "Server instances rebuilt after a panic (restarted) or paused for failing too often (paused)",
            ),
            &["server", "outcome"],
        )
        .expect("static metric definition");
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "gumcp_in_flight_requests",
                "Calls running against server instances, per server",
            ),
            &["server"],
        )
        .expect("static metric definition");
        let user_states = IntGauge::new(
            "gumcp_user_states",
            "Per-(server, user) states kept: of live instances, and of stopped ones with stored data or listeners",
        )
        .expect("static metric definition");
        let credential_refreshes = IntCounterVec::new(
            Opts::new(
                "gumcp_credential_refreshes_total",
                "Access-token refreshes by credential service and outcome",
            ),
            &["service", "outcome"],
        )
        .expect("static metric definition");
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gumcp_upstream_request_duration_seconds",
                "Upstream API requests by server and status class",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["server", "status_class"],
        )
        .expect("static metric definition");
        let tasks = IntGaugeVec::new(Opts::new("gumcp_tasks", "Tasks kept, by state"), &["state"])
            .expect("static metric definition");
        let task_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gumcp_task_duration_seconds",
                "Time from a task's creation to its end, by server and final state",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            &["server", "state"],
        )
        .expect("static metric definition");
        let cluster_node = IntGaugeVec::new(
            Opts::new("gumcp_cluster_node", "This node of the cluster (always 1)"),
            &["node"],
        )
        .expect("static metric definition");
        let cluster_members = IntGaugeVec::new(
            Opts::new(
                "gumcp_cluster_members",
                "Nodes of the cluster this node last saw alive, itself included",
            ),
            &["node"],
        )
        .expect("static metric definition");
        let cluster_redis_up = IntGaugeVec::new(
            Opts::new(
                "gumcp_cluster_redis_up",
                "1 when the cluster's Redis answered a PING in time, else 0",
            ),
            &["node"],
        )
        .expect("static metric definition");
        let cluster_forwards = IntCounterVec::new(
            Opts::new(
                "gumcp_cluster_forwarded_requests_total",
                "Requests for sessions held by other nodes, by outcome",
            ),
            &["outcome"],
        )
        .expect("static metric definition");
        let credential_store_up = IntGaugeVec::new(
            Opts::new(
                "gumcp_credential_store_up",
                "1 when the credential store's database answered in time, else 0",
            ),
            &["backend"],
        )
        .expect("static metric definition");
        for collector in [
            Box::new(cluster_node.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(credential_store_up.clone()),
            Box::new(cluster_members.clone()),
            Box::new(cluster_redis_up.clone()),
            Box::new(cluster_forwards.clone()),
            Box::new(active_connections.clone()),
            Box::new(connection_total.clone()),
            Box::new(requests.clone()),
            Box::new(request_seconds.clone()),
            Box::new(live_actors.clone()),
            Box::new(rejections.clone()),
            Box::new(server_restarts.clone()),
            Box::new(in_flight.clone()),
            Box::new(user_states.clone()),
            Box::new(credential_refreshes.clone()),
            Box::new(upstream_seconds.clone()),
            Box::new(tasks.clone()),
            Box::new(task_seconds.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // Open files, resident memory, CPU seconds, threads: `process_*`, where the OS has them.
        #[cfg(target_os = "linux")]
        if let Err(err) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(%err, "process metrics are not available");
        }
        Metrics {
            registry,
            active_connections,
            connection_total,
            requests,
            request_seconds,
            live_actors,
            rejections,
            server_restarts,
            in_flight,
            user_states,
            credential_refreshes,
            upstream_seconds,
            tasks,
            task_seconds,
            cluster_node,
            cluster_members,
            cluster_redis_up,
            cluster_forwards,
            credential_store_up,
        }
    }

    /// Counts one upstream request of `server` that took `elapsed` and answered `status`
    /// (`None`: no answer at all).
    pub fn upstream_request(
        &self,
        server: &str,
        status: Option<u16>,
        elapsed: std::time::Duration,
    ) {
        let class = match status {
            Some(100..=199) => "1xx",
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            None => "error",
        };
        self.upstream_seconds
            .with_label_values(&[server, class])
            .observe(elapsed.as_secs_f64());
    }

    /// One piece of work refused (or a stream cut off) by a bound.
    pub fn rejected(&self, reason: Rejection) {
        self.rejections.with_label_values(&[reason.label()]).inc();
    }

    /// The label value for `method`: itself when known, else `other`.
    pub fn method_label(method: &str) -> &str {
        KNOWN_METHODS
            .iter()
            .find(|known| **known == method)
            .copied()
            .unwrap_or("other")
    }

    /// A session opened on `server`.
    pub fn session_opened(&self, server: &str) {
        self.active_connections.with_label_values(&[server]).inc();
        self.connection_total.with_label_values(&[server]).inc();
    }

    pub fn session_closed(&self, server: &str) {
        self.active_connections.with_label_values(&[server]).dec();
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%err, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(Metrics::method_label("tools/call"), "tools/call");
        assert_eq!(Metrics::method_label("../../etc/passwd"), "other");
    }

    #[test]
    fn sessions_move_the_gauge_and_the_counter() {
        let metrics = Metrics::new();
        metrics.session_opened("simple-tools-server");
        metrics.session_opened("simple-tools-server");
        metrics.session_closed("simple-tools-server");
        let text = metrics.render();
        assert!(
            text.contains("gumcp_active_connections{server=\"simple-tools-server\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gumcp_connection_total{server=\"simple-tools-server\"} 2"),
            "{text}"
        );
    }
}
