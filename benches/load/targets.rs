//! The servers under test: this runtime and the two baselines, started as child processes the
//! same way (`--port 0`, wait for the `listening on http://…` line on stdout), or a server the
//! user started (`--url`); and `bare-upstream`, no server at all: the load generator calling
//! its mock upstream directly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::http::Res;
use crate::preset::Scenario;

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// `gumcp-actors serve` (this runtime).
    Gumcp,
    /// examples/floor.rs: raw actix-web, canned replies, no MCP, no actors.
    Floor,
    /// examples/rmcp_axum.rs with rmcp's defaults.
    RmcpDefault,
    /// examples/rmcp_axum.rs --tuned: TCP_NODELAY and JSON replies where rmcp allows.
    RmcpTuned,
    /// No server: the upstream presets' GET sent straight to the mock upstream.
    BareUpstream,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Gumcp => "gumcp",
            Target::Floor => "floor",
            Target::RmcpDefault => "rmcp-default",
            Target::RmcpTuned => "rmcp-tuned",
            Target::BareUpstream => "bare-upstream",
        }
    }

    /// Which presets the target can serve: rmcp's example has no stdio, and rmcp 3.11 has no
    /// legacy HTTP+SSE server transport; the floor calls no upstream; `bare-upstream` is only
    /// the upstream presets' reference.
    pub fn supports(self, scenario: Scenario) -> bool {
        let upstream = matches!(scenario, Scenario::UpstreamCalls | Scenario::UpstreamSse);
        match self {
            Target::Gumcp => true,
            _ if scenario == Scenario::Cluster => false,
            Target::Floor => !upstream,
            Target::RmcpDefault | Target::RmcpTuned => matches!(
                scenario,
                Scenario::SessionCycle
                    | Scenario::StatelessCalls
                    | Scenario::UpstreamCalls
                    | Scenario::Tenants
                    | Scenario::Startup
            ),
            Target::BareUpstream => upstream,
        }
    }

    /// What `scenario` adds to the target's launch: the mock upstream's URL for the upstream
    /// presets, and for `tenants` a short idle TTL, so gumcp's instances stop within the run.
    pub fn launch_for(self, scenario: Scenario, upstream: Option<&str>, idle_ttl: u64) -> Launch {
        let mut launch = Launch::default();
        match (self, scenario, upstream) {
            (Target::Gumcp, Scenario::UpstreamCalls | Scenario::UpstreamSse, Some(url)) => {
                launch.env.push((
                    "GUMCP__SERVERS__BASE_URLS__HACKERNEWS".to_owned(),
                    url.to_owned(),
                ));
            }
            (Target::RmcpDefault | Target::RmcpTuned, Scenario::UpstreamCalls, Some(url)) => {
                launch.args = vec!["--upstream".to_owned(), url.to_owned()];
            }
            (Target::Gumcp, Scenario::Cluster, _) => {
                let redis = std::env::var("GUMCP_BENCH_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379/9".to_owned());
                launch.env.extend(
                    [
                        ("GUMCP__CLUSTER__REDIS_URL", redis.as_str()),
                        (
                            "GUMCP__CLUSTER__SHARED_KEYS",
                            "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                        ),
                    ]
                    .map(|(key, value)| (key.to_owned(), value.to_owned())),
                );
            }
            (Target::Gumcp, Scenario::Tenants, _) => launch.env.push((
                "GUMCP__RUNTIME__SERVER_IDLE_TTL_SECS".to_owned(),
                idle_ttl.to_string(),
            )),
            _ => {}
        }
        launch
    }

    /// rmcp's example serves one `/mcp`; the others serve `/{server}/{user}/mcp`.
    pub fn shared_mcp(self) -> bool {
        matches!(self, Target::RmcpDefault | Target::RmcpTuned)
    }

    /// The target serving `server` over its stdin and stdout, for `stdio-ping`.
    pub fn stdio_command(self, server: &str) -> Res<Command> {
        let mut command = match self {
            Target::Gumcp => {
                let mut command = Command::new(gumcp_bin());
                command.args(["stdio", "--server", server]);
                command
            }
            Target::Floor => {
                let mut command = Command::new(example_bin("floor")?);
                command.arg("--stdio");
                command
            }
            Target::RmcpDefault | Target::RmcpTuned | Target::BareUpstream => {
                return Err(format!("{} has no stdio transport", self.label()).into())
            }
        };
        bench_env(&mut command);
        Ok(command)
    }

    fn command(self, launch: &Launch) -> Res<Command> {
        let mut command = match self {
            Target::Gumcp => {
                let mut command = Command::new(gumcp_bin());
                command.args(["serve", "--port", "0", "--metrics-port", "0"]);
                command
            }
            Target::Floor => Command::new(example_bin("floor")?),
            Target::RmcpDefault | Target::RmcpTuned => {
                let mut command = Command::new(example_bin("rmcp_axum")?);
                if self == Target::RmcpTuned {
                    command.arg("--tuned");
                }
                command
            }
            Target::BareUpstream => {
                return Err("bare-upstream is the load generator itself: nothing to start".into())
            }
        };
        if self != Target::Gumcp {
            command.args(["--port", "0"]);
        }
        command.args(&launch.args);
        bench_env(&mut command);
        command.envs(launch.env.iter().map(|(key, value)| (key, value)));
        Ok(command)
    }
}

/// Arguments and environment a preset adds to a target's command (`Target::launch_for`).
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The bench configuration: warnings only (a log line per request would measure the logger),
/// whatever RUST_LOG the shell has.
pub fn bench_env(command: &mut Command) {
    command
        .env_remove("RUST_LOG")
        .env("GUMCP__LOGGING__LEVEL", "warn");
}

/// `GUMCP_BIN`, else the binary cargo built next to this bench.
pub fn gumcp_bin() -> PathBuf {
    std::env::var_os("GUMCP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gumcp-actors")))
}

/// A baseline built with `cargo build --release --examples` in the same target dir: this bench
/// runs from `<target>/release/deps/`, the examples live in `<target>/release/examples/`.
fn example_bin(name: &str) -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target dir from the bench's path")?;
    let path = release.join("examples").join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: build the baselines first with `cargo build --release --examples`",
            path.display()
        )
        .into())
    }
}

/// A running server child; killed when dropped.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub url: String,
    /// gumcp's Prometheus endpoint (`metrics on http://…/metrics`); the baselines have none.
    pub metrics_url: Option<String>,
    pub started: Instant,
    pub log: PathBuf,
}

/// An address line a server printed on stdout.
enum Printed {
    Listening(String),
    Metrics(String),
}

impl Server {
    pub fn launch(target: Target, log_name: &str, launch: &Launch) -> Res<Self> {
        let log = std::env::temp_dir().join(format!("gumcp-load-{log_name}.log"));
        let mut command = target.command(launch)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let started = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads the addresses, then keeps draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = line.trim();
                let printed = if let Some(url) = line.strip_prefix("listening on ") {
                    Printed::Listening(url.to_owned())
                } else if let Some(url) = line.strip_prefix("metrics on ") {
                    Printed::Metrics(url.to_owned())
                } else {
                    continue;
                };
                // The receiver is gone once both lines are in (or the launch failed).
                let _ = tx.send(printed);
            }
        });
        let mut server = Self {
            child,
            pid,
            url: String::new(),
            metrics_url: None,
            started,
            log,
        };
        // gumcp prints its metrics address right after the API's; the baselines have none.
        let wants_metrics = target == Target::Gumcp;
        while server.url.is_empty() || (wants_metrics && server.metrics_url.is_none()) {
            let left = START_TIMEOUT.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(Printed::Listening(url)) => server.url = url,
                Ok(Printed::Metrics(url)) => server.metrics_url = Some(url),
                Err(_) => {
                    return Err(format!(
                        "{} did not print where it listens (`listening on`, and gumcp's \
                         `metrics on`) within {START_TIMEOUT:?} (log: {})",
                        target.label(),
                        server.log.display()
                    )
                    .into())
                }
            }
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
