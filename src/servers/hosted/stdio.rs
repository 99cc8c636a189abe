//! A hosted server's child process: started with only the environment it is given, under
//! resource limits, its stdin fed from the client's outbound channel, its stdout read line by
//! line into the client — bounded in line size and rate, so a flooding child is cut off — and
//! its stderr sent to the log with the server and a user label.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

use super::client::Peer;
use super::limits::ChildSlot;
use super::Connection;
use crate::config::HostedSettings;
use crate::protocol::error::McpError;
use crate::servers::ServerEvents;

/// The runtime's variables a child gets (what programs need to find themselves and their
/// caches); nothing else — other tenants' settings and the runtime's secrets stay out.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "SYSTEMROOT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "TEMP",
    "TMP",
];

/// Messages queued for a child's stdin.
const OUTBOUND_QUEUE: usize = 256;

/// A stderr line is logged in pieces of at most this many bytes, and at most this many
/// pieces a second (the rest are dropped, and counted in one warning).
const STDERR_PIECE_BYTES: u64 = 4096;
const STDERR_LINES_PER_SEC: u32 = 200;

/// What to run.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// The credential the child is given: a child that prints it on stderr does not put it in
    /// our log, where it is blanked out.
    pub secret: Option<String>,
}

/// Who a child runs for, as its log lines and errors name it.
pub struct Owner {
    pub server: Arc<str>,
    /// `telemetry::user_label`: the id, or its digest with `logging.hash_user_ids`.
    pub user_label: String,
}

/// A running child. Dropping it stops the child.
struct ChildProcess {
    stop: Option<oneshot::Sender<()>>,
    _slot: ChildSlot,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the child and the tasks that move its bytes; the handshake is the caller's.
pub fn spawn(
    launch: Launch,
    owner: Owner,
    events: ServerEvents,
    settings: &HostedSettings,
    slot: ChildSlot,
    fingerprint: Option<[u8; 32]>,
) -> Result<Connection, McpError> {
    let mut command = Command::new(&launch.program);
    command.args(&launch.args).env_clear();
    for name in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(launch.env.iter().map(|(name, value)| (name, value)));
    if let Some(dir) = &launch.working_dir {
        command.current_dir(dir);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    limit_resources(&mut command, settings);
    let server = owner.server.clone();
    let mut child = command.spawn().map_err(|err| {
        McpError::internal(format!(
            "the {server} server's command {} could not be started: {err}",
            launch.program.display()
        ))
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(McpError::internal(format!(
            "the {server} server's pipes could not be opened"
        )));
    };
    let pid = child.id();
    let (outbound, lines) = mpsc::channel(OUTBOUND_QUEUE);
    let peer = Arc::new(Peer::new(server.clone(), outbound, events));
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(write_lines(stdin, lines));
    tokio::spawn(log_stderr(
        stderr,
        owner.server.clone(),
        owner.user_label.clone(),
        launch.secret,
    ));
    let bounds = Bounds {
        max_line_bytes: settings.max_line_bytes,
        max_lines_per_sec: settings.max_lines_per_sec,
    };
    tokio::spawn(pump(child, stdout, peer.clone(), stopped, bounds, owner));
    tracing::debug!(%server, pid, "hosted server process started");
    let child = ChildProcess {
        stop: Some(stop),
        _slot: slot,
    };
    Ok(Connection::new(peer, fingerprint, Box::new(child)))
}

/// The child's limits, set between fork and exec (Unix). Only lowered: a limit above the
/// inherited hard limit is taken as the hard limit.
#[cfg(unix)]
fn limit_resources(command: &mut Command, settings: &HostedSettings) {
    use rlimit::Resource;
    let limits = [
        (Resource::NOFILE, settings.max_open_files),
        (
            Resource::AS,
            settings.max_address_space_mib.saturating_mul(1 << 20),
        ),
        (Resource::CPU, settings.max_cpu_secs),
    ];
    // SAFETY: the closure runs in the forked child before exec. It only makes the
    // getrlimit/setrlimit system calls, which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for (resource, limit) in limits {
                if limit == 0 {
                    continue;
                }
                let (_, hard) = rlimit::getrlimit(resource)?;
                let limit = limit.min(hard);
                rlimit::setrlimit(resource, limit, limit)?;
            }
            Ok(())
        });
    }
}

struct Bounds {
    max_line_bytes: usize,
    max_lines_per_sec: u32,
}

async fn write_lines(mut stdin: ChildStdin, mut lines: mpsc::Receiver<String>) {
    while let Some(line) = lines.recv().await {
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        if written.await.is_err() {
            break;
        }
    }
}

/// What one bounded read of stdout found.
enum Read {
    Line,
    End,
    TooLong,
}

async fn read_line(
    reader: &mut BufReader<ChildStdout>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let read = (&mut *reader).take(limit).read_until(b'\n', line).await?;
    Ok(if read == 0 {
        Read::End
    } else if line.last() != Some(&b'\n') && line.len() > max {
        Read::TooLong
    } else {
        Read::Line
    })
}

/// Reads the child's messages until it ends, floods, or is stopped; then makes sure it is
/// gone and ends the client with the reason, which every call still waiting receives.
async fn pump(
    mut child: Child,
    stdout: ChildStdout,
    peer: Arc<Peer>,
    mut stopped: oneshot::Receiver<()>,
    bounds: Bounds,
    owner: Owner,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let (mut window, mut lines_in_window) = (Instant::now(), 0u32);
    let failure = loop {
        line.clear();
        let read = tokio::select! {
            _ = &mut stopped => break None,
            read = read_line(&mut reader, &mut line, bounds.max_line_bytes) => read,
        };
        match read {
            Ok(Read::Line) => {}
            Ok(Read::End) => break Some(ended(&mut child).await),
            Ok(Read::TooLong) => {
                break Some(format!(
                "wrote a stdout line longer than {} bytes (hosted.max_line_bytes) and was stopped",
                bounds.max_line_bytes
            ))
            }
            Err(err) => break Some(format!("could not be read from ({err}) and was stopped")),
        }
        if window.elapsed() >= Duration::from_secs(1) {
            (window, lines_in_window) = (Instant::now(), 0);
        }
        lines_in_window += 1;
        if lines_in_window > bounds.max_lines_per_sec {
            break Some(format!(
                "wrote more than {} lines a second (hosted.max_lines_per_sec) and was stopped",
                bounds.max_lines_per_sec
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&line) {
            Ok(message) => peer.receive(message),
            Err(_) => {
                tracing::debug!(server = %owner.server, "hosted server wrote a non-JSON line")
            }
        }
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    let server = &owner.server;
    let reason = match failure {
        Some(reason) => {
            tracing::warn!(%server, user = %owner.user_label, "hosted server process {reason}");
            format!("the {server} server's process {reason}; the next call starts it again")
        }
        None => format!("the {server} server's process was stopped"),
    };
    peer.close(reason);
}

/// Why stdout ended: the exit status, if the child exits soon after closing it.
async fn ended(child: &mut Child) -> String {
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => format!("exited ({status})"),
        _ => "closed its stdout and was stopped".to_owned(),
    }
}

async fn log_stderr(stderr: ChildStderr, server: Arc<str>, user: String, secret: Option<String>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let (mut window, mut in_window, mut dropped) = (Instant::now(), 0u32, 0u64);
    loop {
        line.clear();
        match (&mut reader)
            .take(STDERR_PIECE_BYTES)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::warn!(%server, %user, dropped, "hosted server stderr lines dropped");
            }
            (window, in_window, dropped) = (Instant::now(), 0, 0);
        }
        in_window += 1;
        if in_window > STDERR_LINES_PER_SEC {
            dropped += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = match secret.as_deref().filter(|secret| !secret.is_empty()) {
            Some(secret) => text.replace(secret, "[redacted]").into(),
            None => text,
        };
        tracing::info!(target: "gumcp_actors::hosted::stderr", %server, %user, "{}", text.trim_end());
    }
}
