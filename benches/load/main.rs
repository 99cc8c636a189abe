//! The load generator: `cargo bench --bench load -- [PRESET…] [options]`.
//!
//! It speaks MCP itself (legacy SSE, Streamable HTTP sessions, 2026-07-28 stateless, stdio),
//! starts each target fresh per preset (or measures `--url`), and reports throughput, latency
//! percentiles, errors and the server's memory and CPU as a table, JSON and an SVG plot.
//! BENCHMARKS.md has the commands and the numbers.

mod http;
mod mcp;
mod preset;
mod procfs;
mod report;
mod run;
mod scenarios;
mod sse;
mod stdio;
mod svg;
mod targets;
mod tenants;
mod upstream;
mod users;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::http::{Endpoint, Res};
use crate::preset::{Limits, Scenario};
use crate::report::Row;
use crate::targets::{Server, Target};
use crate::upstream::MockUpstream;
use crate::users::Routes;

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "MCP load generator for gumcp-actors and its baselines"
)]
struct Opts {
    /// Presets to run (default: all that the targets support).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Targets to start and measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "gumcp")]
    target: Vec<Target>,
    /// Run every target side by side (gumcp, floor, rmcp-default, rmcp-tuned, and
    /// bare-upstream for the upstream presets).
    #[arg(long)]
    compare: bool,
    /// Measure an already running server instead (e.g. guMCP: http://127.0.0.1:8000).
    #[arg(long)]
    url: Option<String>,
    /// With --url: the server's pid, to read its RSS and CPU from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// With --url: the server has one `/mcp` endpoint for everyone (as rmcp's examples and most
    /// MCP servers do) instead of guMCP's `/{server}/{user}/mcp`.
    #[arg(long)]
    shared_mcp: bool,
    /// Concurrent virtual users of the request presets.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Seconds to record each request preset (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to run before recording starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many requests in all (recorded from the start) instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Sessions opened by idle-sessions.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Distinct users in each of tenants' two waves (one call each).
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// tenants: gumcp's runtime.server_idle_ttl_secs for that preset's launch. Longer than a
    /// wave takes (10,000 calls: under a second on the 2-core box), or instances stop before
    /// the wave's memory is read; an instance stops one TTL to one TTL + 5 s after its call.
    #[arg(long, default_value_t = 5)]
    tenant_idle_ttl: u64,
    /// The mock upstream's port (0: any free one). Fixed, it lets a server started for --url
    /// be pointed at it (GUMCP__SERVERS__BASE_URLS__HACKERNEWS=http://127.0.0.1:PORT).
    #[arg(long, default_value_t = 0)]
    mock_port: u16,
    /// Launches measured by startup.
    #[arg(long, default_value_t = 10)]
    startup_runs: usize,
    /// The server (guMCP name) whose tools are called.
    #[arg(long, default_value = "simple-tools-server")]
    server: String,
    /// Prefix of the user ids (user N is PREFIX + N).
    #[arg(long, default_value = "bench")]
    user_prefix: String,
    /// Worker threads of the client's runtime (the server gets the rest of the machine).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the plot as SVG here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Opts {
    fn limits(&self) -> Limits {
        Limits {
            users: self.users.max(1),
            duration: Duration::from_secs_f64(self.duration.max(0.1)),
            warmup: Duration::from_secs_f64(self.warmup.max(0.0)),
            requests: self.requests,
            sessions: self.sessions,
            tenants: self.tenants,
            startup_runs: self.startup_runs.max(1),
        }
    }

    fn scenarios(&self) -> Vec<Scenario> {
        if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios.clone()
        }
    }

    fn targets(&self) -> Vec<Target> {
        if self.compare {
            vec![
                Target::Gumcp,
                Target::Floor,
                Target::RmcpDefault,
                Target::RmcpTuned,
                Target::BareUpstream,
            ]
        } else {
            self.target.clone()
        }
    }
}

fn main() {
    let opts = Opts::parse();
    // idle-sessions holds 10,000 sockets here and as many in the server, which inherits this.
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise RLIMIT_NOFILE: {err}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the client runtime: {err}");
            std::process::exit(2);
        }
    };
    let rows = runtime.block_on(run_all(&opts));
    if let Err(err) = write_outputs(&opts, &rows) {
        eprintln!("cannot write results: {err}");
        std::process::exit(1);
    }
}

async fn run_all(opts: &Opts) -> Vec<Row> {
    let limits = opts.limits();
    let mut rows = Vec::new();
    // One mock upstream for the whole run, started only if a preset calls upstream.
    let mock = if opts.scenarios().iter().any(|s| s.needs_upstream()) {
        match MockUpstream::start(opts.mock_port) {
            Ok(mock) => {
                eprintln!("  mock upstream on {}", mock.url);
                Some(mock)
            }
            Err(err) => {
                eprintln!("cannot start the mock upstream: {err}");
                None
            }
        }
    } else {
        None
    };
    let upstream = mock.as_ref().map(|mock| mock.url.as_str());
    for scenario in opts.scenarios() {
        if scenario == Scenario::Cluster {
            match cluster_rows(opts, &limits).await {
                Ok(cluster) => rows.extend(cluster),
                Err(err) => rows.push(Row::failed("gumcp", scenario, err.to_string())),
            }
            continue;
        }
        if let Some(url) = &opts.url {
            if matches!(scenario, Scenario::StdioPing | Scenario::Startup) {
                eprintln!(
                    "  {} needs a target it starts itself; skipped with --url",
                    scenario.label()
                );
                continue;
            }
            let row = match Endpoint::parse(url).await {
                Ok(endpoint) => {
                    let routes = routes(opts, endpoint, opts.shared_mcp, scenario);
                    let at = Started {
                        pid: opts.pid,
                        metrics: None,
                    };
                    run_one("url", scenario, routes, at, &limits, opts).await
                }
                Err(err) => Row::failed("url", scenario, err.to_string()),
            };
            rows.push(row);
            continue;
        }
        for target in opts.targets() {
            if !target.supports(scenario) {
                continue;
            }
            let row = match run_target(opts, target, scenario, &limits, upstream).await {
                Ok(row) => row,
                Err(err) => Row::failed(target.label(), scenario, err.to_string()),
            };
            rows.push(row);
        }
    }
    rows
}

fn routes(opts: &Opts, endpoint: Endpoint, shared_mcp: bool, scenario: Scenario) -> Arc<Routes> {
    let call = scenario.call();
    Arc::new(Routes {
        endpoint,
        server: call.server().unwrap_or(&opts.server).to_owned(),
        user_prefix: opts.user_prefix.clone(),
        shared_mcp,
        call,
        posts: None,
    })
}

/// `cluster`: two gumcp nodes on one Redis, the sessions' streams on the first; a row with
/// every POST to the owner, then one with every POST to the other node.
async fn cluster_rows(opts: &Opts, limits: &Limits) -> Res<Vec<Row>> {
    let scenario = Scenario::Cluster;
    let mut nodes = Vec::new();
    for name in ["owner", "other"] {
        let mut launch = Target::Gumcp.launch_for(scenario, None, opts.tenant_idle_ttl);
        launch.env.push((
            "GUMCP__CLUSTER__NODE_ID".to_owned(),
            format!("bench-{name}"),
        ));
        nodes.push(Server::launch(
            Target::Gumcp,
            &format!("cluster-{name}"),
            &launch,
        )?);
    }
    // Two heartbeats, so each node has seen the other before the first forwarded POST.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let owner = Endpoint::parse(&nodes[0].url).await?;
    let other = Endpoint::parse(&nodes[1].url).await?;
    let mut rows = Vec::new();
    for (label, posts) in [("gumcp-owner", None), ("gumcp-forwarded", Some(other))] {
        let routes = Arc::new(Routes {
            posts,
            ..(*routes(opts, owner.clone(), false, scenario)).clone()
        });
        let mut row =
            scenarios::run_http(label, scenario, routes, Some(nodes[0].pid), limits).await;
        row.note = "legacy SSE on node 1; POSTs to node 1 (owner) or node 2 (forwarded)".to_owned();
        rows.push(row);
    }
    drop(nodes);
    Ok(rows)
}

/// What is known of a running target besides its address.
struct Started {
    pid: Option<u32>,
    /// gumcp's Prometheus endpoint.
    metrics: Option<Endpoint>,
}

/// One preset against a freshly started target, so memory and CPU are that preset's alone.
async fn run_target(
    opts: &Opts,
    target: Target,
    scenario: Scenario,
    limits: &Limits,
    upstream: Option<&str>,
) -> Res<Row> {
    if scenario.needs_upstream() && upstream.is_none() {
        return Err("no mock upstream (see the error above)".into());
    }
    match (target, scenario) {
        (_, Scenario::Startup) => scenarios::startup(target, limits).await,
        (Target::BareUpstream, _) => {
            let endpoint = Arc::new(Endpoint::parse(upstream.unwrap_or_default()).await?);
            let mut row = scenarios::run_users(
                (target.label(), scenario),
                limits.users,
                None,
                limits,
                |shared, index| Box::pin(users::bare_upstream(shared, endpoint.clone(), index)),
            )
            .await;
            row.note = "GET /item/{id}.json from the load generator to its mock upstream, \
                        no MCP server between"
                .to_owned();
            Ok(row)
        }
        (_, Scenario::StdioPing) => {
            let client = stdio::StdioClient::start(target.stdio_command(&opts.server)?).await?;
            let pid = client.child.id();
            let client = tokio::sync::Mutex::new(Some(client));
            let client = Arc::new(client);
            let stdio_limits = Limits {
                users: 1,
                ..limits.clone()
            };
            Ok(scenarios::run_users(
                (target.label(), scenario),
                1,
                pid,
                &stdio_limits,
                |shared, _| {
                    let client = client.clone();
                    // The client stays in the mutex (not taken) so the child outlives the loop
                    // and its memory and CPU can be read after the window.
                    Box::pin(async move {
                        match client.lock().await.as_mut() {
                            Some(client) => stdio::ping_loop(shared, client).await,
                            None => run::histogram(),
                        }
                    })
                },
            )
            .await)
        }
        _ => {
            let log_name = format!("{}-{}", target.label(), scenario.label());
            let launch = target.launch_for(scenario, upstream, opts.tenant_idle_ttl);
            let server = Server::launch(target, &log_name, &launch)?;
            let endpoint = Endpoint::parse(&server.url).await?;
            let metrics = match &server.metrics_url {
                Some(url) => Some(Endpoint::parse(url).await?),
                None => None,
            };
            let routes = routes(opts, endpoint, target.shared_mcp(), scenario);
            let at = Started {
                pid: Some(server.pid),
                metrics,
            };
            let row = run_one(target.label(), scenario, routes, at, limits, opts).await;
            drop(server);
            Ok(row)
        }
    }
}

async fn run_one(
    label: &str,
    scenario: Scenario,
    routes: Arc<Routes>,
    at: Started,
    limits: &Limits,
    opts: &Opts,
) -> Row {
    match scenario {
        Scenario::IdleSessions => scenarios::idle_sessions(label, routes, at.pid, limits).await,
        Scenario::Tenants => {
            let idle_ttl = Duration::from_secs(opts.tenant_idle_ttl);
            tenants::tenants(label, routes, at.pid, at.metrics, limits, idle_ttl).await
        }
        _ => scenarios::run_http(label, scenario, routes, at.pid, limits).await,
    }
}

fn write_outputs(opts: &Opts, rows: &[Row]) -> Res<()> {
    println!("{}", report::table(rows));
    let ratios = report::ratios(rows);
    if !ratios.is_empty() {
        println!("Ratios (same run, same machine):\n{ratios}");
    }
    let notes = report::error_notes(rows);
    if !notes.is_empty() {
        println!("Notes and error samples:\n{notes}");
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(rows)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &opts.svg {
        let title = format!(
            "gumcp-actors load bench — {} users, {:.0} s per preset",
            opts.users, opts.duration
        );
        std::fs::write(path, svg::render(rows, &title))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
