//! `gumcp-actors auth` end to end: the binary runs the OAuth flow against a mock provider (the
//! test plays the browser and follows the redirect), and reads an API key from piped stdin.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{binary, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A project folder with one server manifest and a config pointing at it.
fn project(root: &Path, server: &str, auth: &str) -> std::path::PathBuf {
    let dir = root.join("servers").join(server);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "name = \"{server}\"\ndescription = \"test\"\nversion = \"1\"\nkind = \"native\"\n\n[auth]\n{auth}"
        ),
    )
    .unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        "[servers]\ndir = \"servers\"\n[auth]\nlocal_dir = \"local_auth\"\n",
    )
    .unwrap();
    config
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Plays the browser coming back from the provider: one GET to the redirect listener.
fn follow_redirect(port: u16, target: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page
}

/// What reaches the redirect listener before the provider's redirect.
#[derive(Clone, Copy, PartialEq)]
enum First {
    Nothing,
    /// A connection that sends nothing and stays open until the flow has ended.
    SilentConnection,
    /// A redirect carrying a state this flow never handed out.
    WrongState,
}

/// How an OAuth flow through the binary ended.
struct Flow {
    output: std::process::Output,
    root: tempfile::TempDir,
    /// The page the listener answered the provider's redirect with.
    page: String,
    /// How long that page took.
    answered_in: Duration,
}

/// Runs `auth` for alice against a mock GitHub-like provider: `first` reaches the redirect
/// listener, then the provider's redirect with the query `redirect_query(state)`.
async fn oauth_flow(first: First, redirect_query: impl FnOnce(&str) -> String) -> Flow {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        // GitHub answers form-encoded unless the client asks for JSON.
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_new", "token_type": "bearer",
            "refresh_token": "ghr_new", "expires_in": 28800, "scope": "repo"
        })))
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        "mockhub",
        &format!(
            "kind = \"oauth2\"\nscopes = [\"repo\"]\nprovider = \"github\"\n\
             authorize_url = \"{0}/authorize\"\ntoken_url = \"{0}/token\"\n",
            provider.uri()
        ),
    );
    let port = free_port();
    let app_dir = root.path().join("local_auth/oauth_configs/mockhub");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("oauth.json"),
        json!({
            "client_id": "cid", "client_secret": "csecret",
            "redirect_uri": format!("http://127.0.0.1:{port}/callback")
        })
        .to_string(),
    )
    .unwrap();

    let mut child = Command::new(binary())
        .args(["--config"])
        .arg(&config)
        .args([
            "auth",
            "--server",
            "mockhub",
            "--user-id",
            "alice",
            "--no-browser",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("http") {
                return line;
            }
        }
        panic!("the command printed no URL");
    })
    .await
    .unwrap();
    assert!(
        url.starts_with(&format!("{}/authorize?", provider.uri())),
        "{url}"
    );
    assert_eq!(query_param(&url, "client_id").as_deref(), Some("cid"));
    assert_eq!(query_param(&url, "scope").as_deref(), Some("repo"));
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&url, "code_challenge").is_some());
    let state = query_param(&url, "state").unwrap();
    let silent = (first == First::SilentConnection)
        .then(|| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    if first == First::WrongState {
        let page = tokio::task::spawn_blocking(move || {
            follow_redirect(port, "/callback?code=the-code&state=forged")
        })
        .await
        .unwrap();
        assert!(page.starts_with("HTTP/1.1 400"), "{page}");
        assert!(page.contains("does not match"), "{page}");
    }
    let query = redirect_query(&state);
    let started = Instant::now();
    let page =
        tokio::task::spawn_blocking(move || follow_redirect(port, &format!("/callback?{query}")))
            .await
            .unwrap();
    let answered_in = started.elapsed();
    let rest = tokio::time::timeout(WAIT, async {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    })
    .await
    .expect("the command ends in time");
    let mut output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    output.stdout = rest.into_bytes();
    drop(silent);
    Flow {
        output,
        root,
        page,
        answered_in,
    }
}

fn code_and_state(state: &str) -> String {
    format!("code=the-code&state={state}")
}

/// The flow finished: alice's credentials are saved.
fn assert_connected(flow: &Flow) {
    let stderr = String::from_utf8_lossy(&flow.output.stderr);
    assert!(flow.output.status.success(), "{stderr}");
    assert!(flow.page.starts_with("HTTP/1.1 200"), "{}", flow.page);
    let file = flow
        .root
        .path()
        .join("local_auth/credentials/mockhub/alice_credentials.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(saved["access_token"], "gho_new");
}

#[tokio::test]
async fn the_oauth_flow_saves_private_refreshable_credentials() {
    let flow = oauth_flow(First::Nothing, code_and_state).await;
    assert_connected(&flow);
    let (output, root) = (flow.output, flow.root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = root
        .path()
        .join("local_auth/credentials/mockhub/alice_credentials.json");
    // Each step is said on stdout — what it waits for, where the result went — never a secret.
    let said = String::from_utf8_lossy(&output.stdout);
    for step in [
        "Waiting up to 300 s for the browser to come back to http://127.0.0.1:",
        "Ctrl-C to cancel",
        "trading the code for tokens at http://",
        "Received an access token and a refresh token, valid for",
        &format!("Saved the credentials to {}", file.display()),
        "Connected mockhub for user alice",
    ] {
        assert!(said.contains(step), "{step:?} in {said}");
    }
    assert!(
        !said.contains("gho_new") && !said.contains("ghr_new") && !said.contains("csecret"),
        "{said}"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["refresh_token"], "ghr_new");
    assert!(saved["expires_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !stderr.contains("gho_new") && !stderr.contains("csecret"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_redirect_with_the_wrong_state_is_answered_and_ignored_and_the_right_one_completes() {
    let flow = oauth_flow(First::WrongState, code_and_state).await;
    assert_connected(&flow);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_does_not_hold_up_the_redirect() {
    let flow = oauth_flow(First::SilentConnection, code_and_state).await;
    assert_connected(&flow);
    // Well inside the 10 s a silent connection is given: it was served beside it, not after.
    assert!(
        flow.answered_in < Duration::from_secs(5),
        "{:?}",
        flow.answered_in
    );
}

#[tokio::test]
async fn the_providers_error_reaches_the_terminal_without_control_characters() {
    let flow = oauth_flow(First::Nothing, |state| {
        format!(
            "error=access_denied&error_description=Denied%1B%5B31m%20by%0D%0Aadmin%07\
             &state={state}"
        )
    })
    .await;
    assert_eq!(flow.output.status.code(), Some(1));
    assert!(flow.page.starts_with("HTTP/1.1 400"), "{}", flow.page);
    let stderr = String::from_utf8_lossy(&flow.output.stderr);
    let refused = stderr
        .lines()
        .find(|line| line.contains("the provider refused"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        refused.contains("access_denied Denied [31m by  admin"),
        "{refused:?}"
    );
    assert!(!stderr.contains(['\x1b', '\r', '\x07']), "{stderr:?}");
    assert!(!flow.root.path().join("local_auth/credentials").exists());
}

#[tokio::test]
async fn an_api_key_is_read_from_piped_stdin() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), "keyhub", "kind = \"api_key\"\n");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "keyhub", "--user-id", "bob"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"pk-123\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = root
        .path()
        .join("local_auth/credentials/keyhub/bob_credentials.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(saved, json!({ "api_key": "pk-123" }));
}

/// An API key with a site URL and a user name (`[[auth.key_fields]]`), one line each.
const FIELDS: &str = "kind = \"api_key\"\n\
    [[auth.key_fields]]\nname = \"base_url\"\nlabel = \"Forum URL\"\ncheck = \"site_url\"\n\
    [[auth.key_fields]]\nname = \"api_key\"\nlabel = \"API key\"\nsecret = true\n\
    [[auth.key_fields]]\nname = \"username\"\nlabel = \"Username\"\n";

/// `auth` for `fieldhub` with `lines` on stdin: its output.
async fn connect_fields(root: &Path, lines: &[u8]) -> std::process::Output {
    let config = project(root, "fieldhub", FIELDS);
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "fieldhub", "--user-id", "bob"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines).await.unwrap();
    drop(stdin);
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_key_of_several_fields_is_read_line_by_line_and_stored_flat() {
    let root = tempfile::tempdir().unwrap();
    let output = connect_fields(root.path(), b"https://forum.example.com/\nk-123\nsystem\n").await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Forum URL, API key, Username"), "{stdout}");
    assert!(!stdout.contains("k-123"), "{stdout}");
    let file = root
        .path()
        .join("local_auth/credentials/fieldhub/bob_credentials.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(
        saved,
        json!({ "base_url": "https://forum.example.com", "api_key": "k-123", "username": "system" })
    );

    let refused = tempfile::tempdir().unwrap();
    let output = connect_fields(refused.path(), b"http://forum.example.com\nk-123\nsystem\n").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("Forum URL: must start with https://"),
        "{stderr}"
    );
    assert!(!refused.path().join("local_auth/credentials").exists());
}

#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_command() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), "keyhub", "kind = \"api_key\"\n");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "keyhub", "--user-id", "bob"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"pk-123\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(root
        .path()
        .join("local_auth/credentials/keyhub/bob_credentials.json")
        .is_file());
}

#[tokio::test]
async fn a_user_id_that_could_escape_the_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), "keyhub", "kind = \"api_key\"\n");
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "keyhub", "--user-id", "../../etc"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid user id"));
    assert!(!root.path().join("local_auth").exists());
}

#[tokio::test]
async fn gumcps_environment_switch_selects_the_remote_store() {
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), "keyhub", "kind = \"api_key\"\n");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["auth", "--server", "keyhub", "--user-id", "bob"])
        .env("ENVIRONMENT", "gumloop")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"pk-123\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("remote credential store"), "{stderr}");
    assert!(!root.path().join("local_auth/credentials").exists());
}

#[tokio::test]
async fn a_browser_that_never_comes_back_times_out_clearly() {
    let provider = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        "mockhub",
        &format!(
            "kind = \"oauth2\"\nauthorize_url = \"{0}/authorize\"\ntoken_url = \"{0}/token\"\n",
            provider.uri()
        ),
    );
    let app_dir = root.path().join("local_auth/oauth_configs/mockhub");
    std::fs::create_dir_all(&app_dir).unwrap();
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    std::fs::write(
        app_dir.join("oauth.json"),
        json!({ "client_id": "cid", "redirect_uri": redirect }).to_string(),
    )
    .unwrap();
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args([
            "auth",
            "--server",
            "mockhub",
            "--no-browser",
            "--timeout-secs",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no redirect arrived within 1 s"));
}
