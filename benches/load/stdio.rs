//! `stdio-ping`: one client speaking MCP to `gumcp-actors stdio` (or the floor's `--stdio`)
//! over its pipes, as a desktop client does; each ping is timed from writing the line to
//! reading the matching reply.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::http::Res;
use crate::mcp::{self, Seen};
use crate::run::{histogram, timed, Shared};

pub struct StdioClient {
    pub child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl StdioClient {
    /// Spawns `command` (a target's stdio mode) and completes the initialize handshake.
    pub async fn start(command: std::process::Command) -> Res<Self> {
        let mut child = Command::from(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or("child has no stdin")?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let mut client = Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        if !timed("initialize", client.call(&mcp::initialize(1), 1)).await? {
            return Err("stdio initialize failed".into());
        }
        client.send(&mcp::initialized()).await?;
        Ok(client)
    }

    async fn send(&mut self, message: &[u8]) -> Res<()> {
        self.stdin.write_all(message).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Sends a request and reads lines until the reply to `id`.
    async fn call(&mut self, message: &[u8], id: u64) -> Res<bool> {
        self.send(message).await?;
        while let Some(line) = self.lines.next_line().await? {
            match mcp::classify(line.as_bytes(), id) {
                Seen::Other => continue,
                Seen::Ok => return Ok(true),
                Seen::Failed => return Ok(false),
            }
        }
        Err("stdout closed".into())
    }
}

/// The single user of `stdio-ping`.
pub async fn ping_loop(shared: Arc<Shared>, client: &mut StdioClient) -> Histogram<u64> {
    let mut hist = histogram();
    let mut id = 1u64;
    while shared.go() {
        id += 1;
        let started = Instant::now();
        match timed("ping", client.call(&mcp::ping(id), id)).await {
            Ok(ok) => shared.record(&mut hist, started, ok),
            Err(err) => {
                shared.record(&mut hist, started, false);
                shared.error(err.to_string());
                break;
            }
        }
    }
    hist
}
