//! A minimal line-oriented MCP client over the real binary's stdio, for integration tests.
//! Every wait is bounded, so a broken server fails a test instead of hanging it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gumcp-actors"))
}

pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"}
    })
}

pub struct StdioClient {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    /// Messages read while waiting for something else (notifications, other replies).
    pub seen: Vec<Value>,
}

impl StdioClient {
    pub fn start(args: &[&str]) -> StdioClient {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> StdioClient {
        let mut command = Command::new(binary());
        command.args(args).envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Runs `command` (the binary with its arguments, environment and folder) as the server.
    pub fn spawn(mut command: Command) -> StdioClient {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        StdioClient {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    pub fn server(name: &str) -> StdioClient {
        Self::start(&["stdio", "--server", name])
    }

    pub async fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the server answers in time")
            .expect("stdout is readable")
            .expect("the server is still running");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("stdout line is JSON: {line}"))
    }

    /// Reads until the message with this id (a reply, or anything carrying `id`).
    pub async fn wait_for_id(&mut self, id: &Value) -> Value {
        loop {
            let message = self.next().await;
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return message;
            }
            self.seen.push(message);
        }
    }

    pub async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.wait_for_id(&json!(id)).await
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    pub async fn initialize(&mut self, version: &str, capabilities: Value) -> Value {
        let reply = self
            .request(
                0,
                "initialize",
                json!({
                    "protocolVersion": version,
                    "capabilities": capabilities,
                    "clientInfo": {"name": "tests", "version": "1"}
                }),
            )
            .await;
        self.notify("notifications/initialized", json!({})).await;
        reply
    }

    /// Closes stdin and waits for the exit status.
    pub async fn close(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        self.stdin.take();
        let mut rest = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(WAIT, self.lines.next_line()).await {
            rest.push(serde_json::from_str(&line).expect("stdout line is JSON"));
        }
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the server exits in time")
            .expect("exit status");
        (status, rest)
    }
}

/// A shipped server over stdio for user alice, with `credentials` saved for its service and
/// its upstream pointed at `upstream_url`; everything lives in `root`.
pub fn shipped_server(
    root: &std::path::Path,
    server: &str,
    credentials: Value,
    upstream_url: &str,
) -> StdioClient {
    let creds = root.join("local_auth/credentials").join(server);
    std::fs::create_dir_all(&creds).expect("a temp folder");
    std::fs::write(
        creds.join("alice_credentials.json"),
        credentials.to_string(),
    )
    .expect("a temp file");
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers]\ndir = \"{}\"\n[servers.base_urls]\n{server} = \"{upstream_url}\"\n\
             [auth]\nlocal_dir = \"local_auth\"\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/servers"),
        ),
    )
    .expect("a temp file");
    let config = config.to_string_lossy().into_owned();
    StdioClient::start(&[
        "--config",
        &config,
        "stdio",
        "--server",
        server,
        "--user-id",
        "alice",
    ])
}

/// Calls `tool` as a 2026-07-28 request (its `_meta` says so); the result, error or not.
pub async fn call_tool(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    client
        .request(
            id,
            "tools/call",
            json!({ "name": tool, "arguments": arguments, "_meta": modern_meta() }),
        )
        .await["result"]
        .clone()
}

/// Calls `tool` and insists that it succeeded; the result.
pub async fn call_tool_ok(
    client: &mut StdioClient,
    id: i64,
    tool: &str,
    arguments: Value,
) -> Value {
    let result = call_tool(client, id, tool, arguments).await;
    assert_eq!(result["isError"], false, "{tool}: {result}");
    result
}

/// The first text block of a tool result.
pub fn text_of(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// Google's token endpoint on `upstream`: one refresh of alice's refresh token `r1` by client
/// `cid`, answered with the access token `ya29.fresh` for `scope`.
pub async fn mount_google_refresh(upstream: &wiremock::MockServer, scope: &str) {
    use wiremock::matchers::{body_string_contains, method, path};
    wiremock::Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=r1"))
        .and(body_string_contains("client_id=cid"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.fresh", "expires_in": 3599, "token_type": "Bearer",
            "scope": scope
        })))
        .expect(1)
        .mount(upstream)
        .await;
}

/// The OAuth app of `server` in `root`, with Google's `token_uri` pointing at `upstream`.
pub fn google_app(root: &std::path::Path, server: &str, upstream: &wiremock::MockServer) {
    let app = root.join("local_auth/oauth_configs").join(server);
    std::fs::create_dir_all(&app).expect("a temp folder");
    let file = json!({
        "client_id": "cid", "client_secret": "cs",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).expect("a temp file");
}

/// The credentials the runtime saved for alice on `server`.
pub fn saved_credentials(root: &std::path::Path, server: &str) -> Value {
    let file = root
        .join("local_auth/credentials")
        .join(server)
        .join("alice_credentials.json");
    serde_json::from_slice(&std::fs::read(file).expect("saved credentials"))
        .expect("credentials as JSON")
}

/// A running `serve` on free ports; it stops with this value.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub metrics_url: String,
    /// Kept open: the server may still write to its stdout.
    _stdout: Lines<BufReader<ChildStdout>>,
    /// Its stderr, read all along (a pipe nobody reads fills up with panic backtraces and
    /// blocks the server); the whole of it once the server has exited.
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

impl Served {
    /// Kills the server and hands back everything it wrote to stderr.
    pub async fn stop(mut self) -> String {
        self.child.start_kill().expect("the server can be killed");
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the server exits in time")
            .expect("the server's exit status");
        let logs = tokio::time::timeout(WAIT, self.stderr)
            .await
            .expect("stderr ends with the server")
            .expect("the stderr reader finishes");
        String::from_utf8_lossy(&logs).into_owned()
    }
}

/// Starts `serve --port 0 --metrics-port 0` with `config` (a file path, or none) and `env`,
/// and waits for the addresses it prints.
pub async fn serve(config: Option<&std::path::Path>, env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(binary());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .args(["serve", "--port", "0", "--metrics-port", "0"])
        .env("RUST_LOG", "warn")
        .env(
            "GUMCP__SERVERS__DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/servers"),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(async move {
        let mut logs = Vec::new();
        // A read error only ends the collection early; the logs so far are still returned.
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr_pipe, &mut logs).await;
        logs
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut printed = Vec::new();
    while printed.len() < 2 {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("serve printed its addresses in time")
            .expect("stdout is readable")
            .expect("serve printed its addresses");
        printed.push(line);
    }
    Served {
        child,
        url: printed[0].replace("listening on ", ""),
        metrics_url: printed[1].replace("metrics on ", ""),
        _stdout: lines,
        stderr,
    }
}

/// A 2026-07-28 stateless `tools/call` of `tool` POSTed to `url` with the headers the
/// transport requires, `meta` as its `_meta` (usually [`modern_meta`]); ready to send, or to
/// take more headers first.
pub fn stateless_call(
    client: &reqwest::Client,
    url: &str,
    tool: &str,
    arguments: Value,
    meta: Value,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(
            json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": tool, "arguments": arguments, "_meta": meta }
            })
            .to_string(),
        )
}

/// A plain HTTP client for talking to `serve` (reqwest needs a TLS provider chosen even for
/// loopback HTTP).
pub fn http_client() -> reqwest::Client {
    gumcp_actors::upstream::install_crypto_provider();
    reqwest::Client::new()
}
