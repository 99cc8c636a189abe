//! The servers under test: this runtime and the two baselines, started as child processes the
//! same way (`--port 0`, wait for the `listening on http://…` line on stdout), or a server the
//! user started (`--url`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::http::Res;
use crate::scenarios::Scenario;

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
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Gumcp => "gumcp",
            Target::Floor => "floor",
            Target::RmcpDefault => "rmcp-default",
            Target::RmcpTuned => "rmcp-tuned",
        }
    }

    /// Which presets the target can serve: rmcp's example has no stdio, and rmcp 3.11 has no
    /// legacy HTTP+SSE server transport.
    pub fn supports(self, scenario: Scenario) -> bool {
        match self {
            Target::Gumcp | Target::Floor => true,
            Target::RmcpDefault | Target::RmcpTuned => matches!(
                scenario,
                Scenario::SessionCycle | Scenario::StatelessCalls | Scenario::Startup
            ),
        }
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
            Target::RmcpDefault | Target::RmcpTuned => {
                return Err(format!("{} has no stdio transport", self.label()).into())
            }
        };
        bench_env(&mut command);
        Ok(command)
    }

    fn command(self) -> Res<Command> {
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
        };
        if self != Target::Gumcp {
            command.args(["--port", "0"]);
        }
        bench_env(&mut command);
        Ok(command)
    }
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
    pub started: Instant,
    pub log: PathBuf,
}

impl Server {
    pub fn launch(target: Target, log_name: &str) -> Res<Self> {
        let log = std::env::temp_dir().join(format!("gumcp-load-{log_name}.log"));
        let mut command = target.command()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let started = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads the address, then keeps draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.to_owned());
                    }
                }
            }
        });
        let mut server = Self {
            child,
            pid,
            url: String::new(),
            started,
            log,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => server.url = url,
            Err(_) => {
                return Err(format!(
                    "{} printed no `listening on` line (log: {})",
                    target.label(),
                    server.log.display()
                )
                .into())
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
