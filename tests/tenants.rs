//! Tenant isolation through the real binary: in `remote` access mode a key never reaches
//! another key's credentials or data, unsafe access settings are refused at start, open access
//! serves this machine only, and nothing a caller can create grows without bound.

mod common;

use std::time::Duration;

use common::{binary, http_client, modern_meta, stateless_call, Served, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VICTIM_KEY: &str = "victim-right-key";
const VICTIM_TOKEN: &str = "victim-notion-token";

/// `serve` with the config text `config` (written to a file) and extra environment.
async fn serve(config: &str, env: &[(&str, &str)]) -> (Served, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("gumcp.toml");
    std::fs::write(&file, config).unwrap();
    (common::serve(Some(&file), env).await, root)
}

fn remote_config(credentials_api: &str, extra: &str) -> String {
    format!(
        "[access]\nmode = \"remote\"\n[auth]\nbackend = \"remote\"\nremote_base_url = \"{credentials_api}\"\n{extra}"
    )
}

/// A stateless 2026-07-28 `tools/call`.
async fn call(
    client: &reqwest::Client,
    url: &str,
    tool: &str,
    arguments: Value,
) -> reqwest::Response {
    stateless_call(client, url, tool, arguments, modern_meta())
        .send()
        .await
        .unwrap()
}

/// The result of a call answered 200, and whether it is a tool error.
async fn result_of(response: reqwest::Response) -> (String, bool) {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("error").is_none(), "{body}");
    let result = &body["result"];
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (text, result["isError"].as_bool().unwrap_or(false))
}

/// A credentials API that knows one key for user `victim` (answering after `delay`), and
/// refuses every other key the way guMCP's does.
async fn credentials_api(delay: Duration) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/auth/notion/credentials"))
        .and(query_param("user_id", "victim"))
        .and(header(
            "authorization",
            format!("Bearer {VICTIM_KEY}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(delay)
                .set_body_json(json!({ "access_token": VICTIM_TOKEN })),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_delay(delay))
        .mount(&api)
        .await;
    api
}

/// Notion's API, answering only the victim's token with the victim's data.
async fn notion_api() -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .and(header(
            "authorization",
            format!("Bearer {VICTIM_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false,
            "results": [{ "object": "user", "id": "victims-private-user" }]
        })))
        .mount(&upstream)
        .await;
    upstream
}

/// Requests the credentials API got with `key`.
async fn lookups_with(api: &MockServer, key: &str) -> usize {
    let bearer = format!("Bearer {key}");
    api.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| {
            request
                .headers
                .get("authorization")
                .is_some_and(|value| value.to_str().ok() == Some(bearer.as_str()))
        })
        .count()
}

#[tokio::test]
async fn a_wrong_key_after_the_right_one_gets_nothing_of_the_victims() {
    let api = credentials_api(Duration::ZERO).await;
    let upstream = notion_api().await;
    let (served, _root) = serve(
        &remote_config(&api.uri(), ""),
        &[("GUMCP__SERVERS__BASE_URLS__NOTION", &upstream.uri())],
    )
    .await;
    let client = http_client();
    let url = |key: &str| format!("{}/notion/victim:{key}/mcp", served.url);
    let (text, is_error) =
        result_of(call(&client, &url(VICTIM_KEY), "list_all_users", json!({})).await).await;
    assert!(!is_error, "{text}");
    assert!(text.contains("victims-private-user"), "{text}");

    let (text, is_error) =
        result_of(call(&client, &url("attacker-guess"), "list_all_users", json!({})).await).await;
    assert!(is_error, "{text}");
    assert!(!text.contains("victims-private-user"), "{text}");
    assert!(
        !text.contains(VICTIM_TOKEN) && !text.contains("attacker-guess"),
        "{text}"
    );
    assert_eq!(
        lookups_with(&api, "attacker-guess").await,
        1,
        "the wrong key had its own lookup"
    );
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
    served.stop().await;
}

#[tokio::test]
async fn a_thousand_callers_share_one_lookup_and_a_wrong_key_among_them_is_refused() {
    let api = credentials_api(Duration::from_millis(700)).await;
    let upstream = notion_api().await;
    let (served, _root) = serve(
        &remote_config(&api.uri(), ""),
        &[
            ("GUMCP__SERVERS__BASE_URLS__NOTION", &upstream.uri()),
            ("GUMCP__RUNTIME__MAX_IN_FLIGHT_PER_USER", "2000"),
        ],
    )
    .await;
    let client = http_client();
    let calls = (0..1000).map(|n| {
        let key = if n % 100 == 7 {
            format!("wrong-key-{n}")
        } else {
            VICTIM_KEY.to_owned()
        };
        let (client, url) = (
            client.clone(),
            format!("{}/notion/victim:{key}/mcp", served.url),
        );
        tokio::spawn(async move {
            let answer = result_of(call(&client, &url, "list_all_users", json!({})).await).await;
            (key, answer)
        })
    });
    let answers = futures::future::join_all(calls).await;
    let mut refused = 0;
    for answer in answers {
        let (key, (text, is_error)) = answer.unwrap();
        if key == VICTIM_KEY {
            assert!(!is_error && text.contains("victims-private-user"), "{text}");
        } else {
            assert!(
                is_error && !text.contains("victims-private-user"),
                "{key}: {text}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    assert_eq!(
        lookups_with(&api, VICTIM_KEY).await,
        1,
        "one lookup for the right key"
    );
    served.stop().await;
}

#[tokio::test]
async fn without_a_verification_endpoint_each_key_has_its_own_data() {
    let (served, _root) = serve(&remote_config("http://127.0.0.1:9", ""), &[]).await;
    let client = http_client();
    let url = |key: &str| format!("{}/simple-tools-server/victim:{key}/mcp", served.url);
    let arguments = json!({ "key": "diary", "value": "private words" });
    let (text, is_error) =
        result_of(call(&client, &url(VICTIM_KEY), "store-data", arguments).await).await;
    assert!(!is_error, "{text}");
    let read = |key: &'static str| {
        let (client, url) = (client.clone(), url(key));
        async move {
            result_of(call(&client, &url, "retrieve-data", json!({ "key": "diary" })).await).await
        }
    };
    let (text, _) = read(VICTIM_KEY).await;
    assert!(text.contains("private words"), "{text}");
    let (text, _) = read("someone-else").await;
    assert!(!text.contains("private words"), "{text}");
    served.stop().await;
}

#[tokio::test]
async fn a_session_is_found_only_with_the_key_that_opened_it() {
    let (served, _root) = serve(&remote_config("http://127.0.0.1:9", ""), &[]).await;
    let client = http_client();
    let mut stream = client
        .get(format!(
            "{}/simple-tools-server/victim:{VICTIM_KEY}",
            served.url
        ))
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    let endpoint = first
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("the endpoint event")
        .trim()
        .to_owned();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let post = |url: String| {
        let client = client.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(ping)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let other_key = endpoint.replace(VICTIM_KEY, "attacker-guess");
    assert_ne!(other_key, endpoint);
    assert_eq!(post(format!("{}{other_key}", served.url)).await, 404);
    assert_eq!(post(format!("{}{endpoint}", served.url)).await, 202);
    served.stop().await;
}

#[tokio::test]
async fn a_sealed_request_state_opens_only_for_the_key_it_was_handed_to() {
    let (served, _root) = serve(&remote_config("http://127.0.0.1:9", ""), &[]).await;
    let client = http_client();
    let url = |key: &str| format!("{}/conformance-fixtures/victim:{key}/mcp", served.url);
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let round = |key: &str, extra: Value| {
        let tool = "test_input_required_result_multi_round";
        let mut params = json!({"name": tool, "arguments": {}, "_meta": meta.clone()});
        for (name, value) in extra.as_object().cloned().unwrap_or_default() {
            params[name] = value;
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        stateless_call(&client, &url(key), tool, json!({}), meta.clone())
            .body(body.to_string())
            .send()
    };
    let first: Value = round(VICTIM_KEY, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let answer = json!({
        "inputResponses": {"step1": {"action": "accept", "content": {"name": "Ada"}}},
        "requestState": first["result"]["requestState"].clone()
    });
    let replayed: Value = round("attacker-guess", answer.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["error"]["code"], -32602, "{replayed}");
    let second: Value = round(VICTIM_KEY, answer)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        second["result"]["inputRequests"]["step2"].is_object(),
        "{second}"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_verification_endpoint_decides_and_is_asked_once_per_key() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/verify"))
        .and(query_param("user_id", "victim"))
        .and(header(
            "authorization",
            format!("Bearer {VICTIM_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/verify"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&api)
        .await;
    let verify = format!("remote_verify_url = \"{}/verify\"\n", api.uri());
    let (served, _root) = serve(&remote_config(&api.uri(), &verify), &[]).await;
    let client = http_client();
    let url = |key: &str| format!("{}/simple-tools-server/victim:{key}/mcp", served.url);
    for n in 0..3 {
        let arguments = json!({ "key": format!("k{n}"), "value": "v" });
        let (text, is_error) =
            result_of(call(&client, &url(VICTIM_KEY), "store-data", arguments).await).await;
        assert!(!is_error, "{text}");
    }
    let refused = call(&client, &url("attacker-guess"), "list-data", json!({})).await;
    assert_eq!(refused.status(), 401);
    let why = refused.text().await.unwrap();
    assert!(
        why.contains("does not know this API key") && !why.contains("attacker-guess"),
        "{why}"
    );
    served.stop().await;
    api.verify().await;
}

/// Runs the binary with `args` and `config`, expecting it to refuse to start.
async fn refused_at_start(config: &str, args: &[&str]) -> String {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("gumcp.toml");
    std::fs::write(&file, config).unwrap();
    let output = tokio::time::timeout(
        WAIT,
        Command::new(binary())
            .arg("--config")
            .arg(&file)
            .args(args)
            .output(),
    )
    .await
    .expect("the binary answers in time")
    .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn unsafe_access_settings_are_refused_at_start() {
    let err = refused_at_start("[access]\nmode = \"remote\"\n", &["serve", "--port", "0"]).await;
    assert!(
        err.contains("access.mode") && err.contains("auth.backend"),
        "{err}"
    );
    let err = refused_at_start(
        "[access]\nmode = \"open\"\n",
        &["serve", "--host", "0.0.0.0", "--port", "0"],
    )
    .await;
    assert!(
        err.contains("access.mode") && err.contains("allow_open_on_network"),
        "{err}"
    );
    let err = refused_at_start(
        "[http]\ntrusted_proxies = [\"proxy.example\"]\n",
        &["servers"],
    )
    .await;
    assert!(err.contains("http.trusted_proxies"), "{err}");
}

#[tokio::test]
async fn open_access_refuses_requests_forwarded_from_elsewhere() {
    let (served, _root) = serve("", &[]).await;
    let client = http_client();
    let url = format!("{}/simple-tools-server/anyone/mcp", served.url);
    let local = call(&client, &url, "list-data", json!({})).await;
    assert_eq!(local.status(), 200);
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=127.0.0.1"),
    ] {
        let proxied = client
            .get(format!("{}/simple-tools-server/anyone", served.url))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), 403, "{name}");
        assert!(proxied.text().await.unwrap().contains("access.mode"));
    }
    served.stop().await;

    let (served, _root) = serve("[http]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n", &[]).await;
    let through = |client_address: &'static str| {
        let (client, url) = (
            client.clone(),
            format!("{}/simple-tools-server/anyone/mcp", served.url),
        );
        async move {
            client
                .post(url)
                .header("x-forwarded-for", client_address)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(through("203.0.113.9").await, 403);
    assert_ne!(through("127.0.0.1").await, 403);
    served.stop().await;
}

/// Sends `head` on a fresh connection and reads until the server closes it (bounded).
async fn exchange(address: &str, head: &str, body: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = std::time::Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection in time")
        .unwrap();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_body_that_never_arrives_is_cut_off() {
    let (served, _root) = serve("[http]\nbody_timeout_secs = 1\n", &[]).await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let head = "POST /simple-tools-server/alice/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
                Content-Length: 4000000\r\n\r\n";
    let (answer, took) = exchange(&address, head, b"{").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("http.body_timeout_secs"), "{answer}");
    assert!(took < Duration::from_secs(8), "cut off after {took:?}");
    let metrics = http_client()
        .get(&served.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gumcp_rejections_total{reason=\"body_timeout\"} 1"),
        "{metrics}"
    );
    served.stop().await;
}

#[tokio::test]
async fn access_is_refused_from_the_head_before_any_body_is_read() {
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"the-only-key"));
    let config = format!(
        "[access]\nmode = \"api_keys\"\napi_keys = [{{ user_id = \"alice\", sha256 = \"{digest}\" }}]\n"
    );
    let (served, _root) = serve(&config, &[]).await;
    let address = served.url.trim_start_matches("http://").to_owned();
    let head = "POST /simple-tools-server/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Authorization: Bearer a-guess\r\nContent-Type: application/json\r\n\
                Content-Length: 4000000\r\n\r\n";
    let (answer, _) = exchange(&address, head, b"").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    served.stop().await;
}

/// A stateless 2026-07-28 `subscriptions/listen`: its response stays open while it listens.
async fn listen(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(
            json!({"jsonrpc": "2.0", "id": "listen", "method": "subscriptions/listen",
                   "params": {"_meta": modern_meta(), "notifications": {"toolsListChanged": true}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn stateless_listens_count_against_the_per_user_cap() {
    let (served, _root) = serve("[http]\nmax_sessions_per_user = 2\n", &[]).await;
    let client = http_client();
    let url = format!("{}/conformance-fixtures/alice/mcp", served.url);
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut listening = listen(&client, &url).await;
        assert_eq!(listening.status(), 200);
        let first = tokio::time::timeout(WAIT, listening.chunk())
            .await
            .unwrap()
            .unwrap();
        assert!(first.is_some_and(|chunk| String::from_utf8_lossy(&chunk).contains("acknowledged")));
        open.push(listening);
    }
    let refused = listen(&client, &url).await;
    assert_eq!(refused.status(), 503);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("limit of 2 sessions"));
    let other_user = listen(
        &client,
        &format!("{}/conformance-fixtures/bob/mcp", served.url),
    )
    .await;
    assert_eq!(
        other_user.status(),
        200,
        "another user's seats are their own"
    );
    drop(open);
    served.stop().await;
}

#[tokio::test]
async fn a_session_without_a_stream_expires_after_the_detached_time() {
    let (served, _root) = serve("[http]\ndetached_session_secs = 1\n", &[]).await;
    let client = http_client();
    let url = format!("{}/simple-tools-server/alice/mcp", served.url);
    let post = |session: Option<String>, body: Value| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request.send()
    };
    let initialized = post(
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"}}}),
    )
    .await
    .unwrap();
    let session = initialized.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let status = post(Some(session.clone()), ping.clone())
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut expired = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Only a sweep ends it; asking would count as use, so look from the outside.
        let metrics = http_client()
            .get(&served.metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("gumcp_active_connections{server=\"simple-tools-server\"} 0") {
            expired = true;
            break;
        }
    }
    assert!(expired, "the detached session was swept");
    let status = post(Some(session), ping).await.unwrap().status();
    assert_eq!(status, 404);
    served.stop().await;
}

#[tokio::test]
async fn resource_subscriptions_per_session_are_bounded() {
    let mut client = common::StdioClient::start_with_env(
        &["stdio", "--server", "conformance-fixtures"],
        &[("GUMCP__PROTOCOL__MAX_SUBSCRIPTIONS_PER_SESSION", "2")],
    );
    client.initialize("2025-11-25", json!({})).await;
    for n in 0..2 {
        let ok = client
            .request(
                n,
                "resources/subscribe",
                json!({"uri": format!("test://r{n}")}),
            )
            .await;
        assert!(ok.get("result").is_some(), "{ok}");
    }
    let again = client
        .request(5, "resources/subscribe", json!({"uri": "test://r1"}))
        .await;
    assert!(
        again.get("result").is_some(),
        "subscribing again is no new subscription"
    );
    let refused = client
        .request(6, "resources/subscribe", json!({"uri": "test://r9"}))
        .await;
    assert_eq!(refused["error"]["code"], -32602);
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_subscriptions_per_session"),
        "{message}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn gauge(served: &Served, name: &str) -> i64 {
    let metrics = http_client()
        .get(&served.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(-1)
}

/// One call for each of `count` new users, `width` at a time.
async fn wave(served: &Served, first_user: usize, count: usize) {
    let client = http_client();
    let users: Vec<usize> = (first_user..first_user + count).collect();
    for batch in users.chunks(64) {
        let calls = batch.iter().map(|user| {
            let url = format!("{}/simple-tools-server/tenant-{user}/mcp", served.url);
            let client = client.clone();
            async move { call(&client, &url, "list-data", json!({})).await.status() }
        });
        for status in futures::future::join_all(calls).await {
            assert_eq!(status, 200);
        }
    }
}

/// Waits (bounded) until no instance and no per-user state is left.
async fn all_stopped(served: &Served) {
    for _ in 0..120 {
        let live = gauge(served, "gumcp_live_actors{kind=\"server\"}").await;
        let states = gauge(served, "gumcp_user_states").await;
        if live == 0 && states == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("instances and their states are gone within 30 s of going idle");
}

/// The bound this test states (RELIABILITY.md): once 20,000 one-call users' instances have
/// stopped, a second wave of 20,000 new users leaves memory no more than this above the first.
const SECOND_WAVE_GROWTH_KIB: u64 = 16 * 1024;

#[tokio::test]
async fn twenty_thousand_one_call_users_leave_nothing_behind() {
    let (served, _root) = serve("[runtime]\nserver_idle_ttl_secs = 1\n", &[]).await;
    let pid = served.child.id().unwrap();
    wave(&served, 0, 20_000).await;
    all_stopped(&served).await;
    let after_first = rss_kib(pid);
    wave(&served, 20_000, 20_000).await;
    all_stopped(&served).await;
    let after_second = rss_kib(pid);
    eprintln!(
        "RSS after the first wave stopped: {after_first} KiB; after the second: {after_second} KiB"
    );
    assert!(
        after_second <= after_first + SECOND_WAVE_GROWTH_KIB,
        "memory grew by {} KiB over a second wave of users",
        after_second.saturating_sub(after_first)
    );
    served.stop().await;
}
