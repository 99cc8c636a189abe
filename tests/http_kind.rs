//! The `http` server kind through the real binary (stdio) against mock upstreams: hackernews's
//! tools, and the engine's paths — credentials injected, 401 → refresh → retry, 429 with
//! Retry-After, 5xx, timeouts, malformed JSON, missing credentials, and a server folder added
//! at test time.

mod common;

use std::path::Path;

use common::{modern_meta, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn call(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    let reply = client
        .request(
            id,
            "tools/call",
            json!({ "name": tool, "arguments": arguments, "_meta": modern_meta() }),
        )
        .await;
    reply["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn hackernews(upstream: &MockServer) -> StdioClient {
    StdioClient::start_with_env(
        &["stdio", "--server", "hackernews"],
        &[("GUMCP__SERVERS__BASE_URLS__HACKERNEWS", &upstream.uri())],
    )
}

fn story(id: u64) -> Value {
    json!({ "id": id, "type": "story", "by": "pg", "title": format!("Story {id}"), "score": 10, "kids": [id * 10, id * 10 + 1] })
}

async fn mount_items(upstream: &MockServer, ids: &[u64]) {
    for id in ids {
        Mock::given(method("GET"))
            .and(path(format!("/item/{id}.json")))
            .respond_with(ResponseTemplate::new(200).set_body_json(story(*id)))
            .mount(upstream)
            .await;
    }
}

#[tokio::test]
async fn top_and_latest_stories_follow_each_id_up_to_the_limit() {
    let upstream = MockServer::start().await;
    for (list, ids) in [("topstories", [1u64, 2, 3]), ("newstories", [4, 5, 6])] {
        Mock::given(method("GET"))
            .and(path(format!("/{list}.json")))
            .and(header("accept", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!(ids)))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    mount_items(&upstream, &[1, 2, 4, 5]).await;
    let mut client = hackernews(&upstream);
    let top = call(&mut client, 1, "get_top_stories", json!({ "limit": 2 })).await;
    assert_eq!(top["isError"], false, "{top}");
    let items = top["structuredContent"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title"], "Story 1");
    // One text block per story, as guMCP answers a list.
    assert_eq!(top["content"].as_array().map(Vec::len), Some(2), "{top}");
    assert!(top["content"][1]["text"]
        .as_str()
        .unwrap()
        .contains("\"Story 2\""));
    let latest = call(&mut client, 2, "get_latest_posts", json!({ "limit": 2 })).await;
    assert_eq!(latest["structuredContent"]["items"][1]["id"], 5);
    upstream.verify().await;
}

#[tokio::test]
async fn details_comments_users_and_typed_stories() {
    let upstream = MockServer::start().await;
    mount_items(&upstream, &[7, 70, 71]).await;
    Mock::given(method("GET"))
        .and(path("/user/pg.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "pg", "karma": 155 })))
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/askstories.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([7])))
        .mount(&upstream)
        .await;
    let mut client = hackernews(&upstream);
    let details = call(&mut client, 1, "get_story_details", json!({ "id": 7 })).await;
    assert_eq!(details["structuredContent"]["title"], "Story 7");
    let comments = call(
        &mut client,
        2,
        "get_comments",
        json!({ "story_id": 7, "limit": 5 }),
    )
    .await;
    let ids: Vec<&Value> = comments["structuredContent"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&json!(70), &json!(71)]);
    let user = call(&mut client, 3, "get_user", json!({ "username": "pg" })).await;
    assert_eq!(user["structuredContent"]["karma"], 155);
    let asked = call(
        &mut client,
        4,
        "get_stories_by_type",
        json!({ "type": "ask", "limit": 1 }),
    )
    .await;
    assert_eq!(asked["structuredContent"]["items"][0]["id"], 7);
    let bad = call(
        &mut client,
        5,
        "get_stories_by_type",
        json!({ "type": "worst" }),
    )
    .await;
    assert_eq!(
        bad["isError"], true,
        "an enum outside the schema is refused before any call"
    );
}

/// A server folder written at test time: one OAuth tool against `upstream`, tokens from a
/// local store whose token endpoint is `provider`.
fn oauth_project(
    root: &Path,
    upstream: &MockServer,
    provider: &MockServer,
    expires_at: i64,
) -> std::path::PathBuf {
    let app = json!({ "client_id": "cid", "client_secret": "cs", "redirect_uri": "http://localhost:8080/" });
    let app_dir = root.join("local_auth/oauth_configs/mockhub");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(app_dir.join("oauth.json"), app.to_string()).unwrap();
    let manifest = format!(
        r#"name = "mockhub"
description = "A test double of a REST API"
version = "1"
kind = "http"
base_url = "{upstream}"
headers = {{ X-Api-Version = "2024-01-01" }}

[auth]
kind = "oauth2"
authorize_url = "{provider}/authorize"
token_url = "{provider}/token"

[[tools]]
name = "list_issues"
description = "Issues of a repository"
path = "/repos/{{owner}}/{{repo}}/issues"
query = {{ state = "state" }}
input_schema = {{ type = "object", properties = {{ owner = {{ type = "string" }}, repo = {{ type = "string" }}, state = {{ type = "string" }} }}, required = ["owner", "repo"] }}
result = {{ fields = ["number", "title"] }}

[[tools]]
name = "create_issue"
description = "Open an issue"
method = "POST"
path = "/repos/{{owner}}/{{repo}}/issues"
input_schema = {{ type = "object", properties = {{ owner = {{ type = "string" }}, repo = {{ type = "string" }}, title = {{ type = "string" }} }}, required = ["owner", "repo", "title"] }}
"#,
        upstream = upstream.uri(),
        provider = provider.uri()
    );
    project(
        root,
        "mockhub",
        &manifest,
        json!({ "access_token": "old", "refresh_token": "r1", "expires_at": expires_at }),
        "max_retry_wait_secs = 1\n",
        "upstream_timeout_secs = 2\n",
    )
}

/// Writes a project into `root`: the manifest of `server`, the credentials of user alice for
/// it, and a config pointing at both (the extra lines go into its `[servers]` and `[auth]`).
fn project(
    root: &Path,
    server: &str,
    manifest: &str,
    credentials: Value,
    servers_extra: &str,
    auth_extra: &str,
) -> std::path::PathBuf {
    let dir = root.join("servers").join(server);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.toml"), manifest).unwrap();
    let creds = root.join("local_auth/credentials").join(server);
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(
        creds.join("alice_credentials.json"),
        credentials.to_string(),
    )
    .unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers]\ndir = \"servers\"\n{servers_extra}[auth]\nlocal_dir = \"local_auth\"\n{auth_extra}"
        ),
    )
    .unwrap();
    config
}

fn mockhub(config: &Path) -> StdioClient {
    StdioClient::start(&[
        "--config",
        config.to_str().unwrap(),
        "stdio",
        "--server",
        "mockhub",
        "--user-id",
        "alice",
    ])
}

fn far_future() -> i64 {
    4_000_000_000
}

#[tokio::test]
async fn credentials_are_injected_and_arguments_placed_by_the_declaration() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello%20world/issues"))
        .and(query_param("state", "open"))
        .and(header("authorization", "Bearer old"))
        .and(header("x-api-version", "2024-01-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "number": 1, "title": "Bug", "body": "long text", "user": { "login": "a" } }
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/issues"))
        .and(header("content-type", "application/json"))
        .and(body_string_contains(r#""title":"New""#))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "number": 2, "title": "New" })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    let mut client = mockhub(&config);
    let listed = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "octo", "repo": "hello world", "state": "open" }),
    )
    .await;
    assert_eq!(
        listed["structuredContent"],
        json!({ "items": [{ "number": 1, "title": "Bug" }] }),
        "only the projected fields"
    );
    let created = call(
        &mut client,
        2,
        "create_issue",
        json!({ "owner": "octo", "repo": "hello", "title": "New" }),
    )
    .await;
    assert_eq!(created["structuredContent"]["number"], 2);
    upstream.verify().await;
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(header("authorization", "Bearer old"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({ "message": "Bad credentials" })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fresh", "token_type": "bearer", "expires_in": 3600
        })))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    let mut client = mockhub(&config);
    let result = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "o", "repo": "r" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let saved: Value = serde_json::from_slice(
        &std::fs::read(
            root.path()
                .join("local_auth/credentials/mockhub/alice_credentials.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(saved["access_token"], "fresh");
    upstream.verify().await;
    provider.verify().await;
}

#[tokio::test]
async fn a_second_401_says_reconnect() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&upstream)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fresh", "token_type": "bearer", "expires_in": 3600
        })))
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    let mut client = mockhub(&config);
    let result = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "o", "repo": "r" }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(
        text(&result).contains("gumcp-actors auth --server mockhub --user-id alice"),
        "{result}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_before_the_call() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fresh", "token_type": "bearer", "expires_in": 3600
        })))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, 1_000);
    let mut client = mockhub(&config);
    let result = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "o", "repo": "r" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    upstream.verify().await;
}

#[tokio::test]
async fn upstream_failures_become_tool_errors_that_say_what_happened() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    let cases = [
        (
            "limited",
            ResponseTemplate::new(429).insert_header("retry-after", "120"),
            "retry after 120 s",
        ),
        ("broken", ResponseTemplate::new(503), "HTTP 503"),
        (
            "missing",
            ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })),
            "HTTP 404: Not Found",
        ),
        (
            "garbled",
            ResponseTemplate::new(200).set_body_string("<html>"),
            "not JSON",
        ),
        (
            "slow",
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .set_delay(std::time::Duration::from_secs(5)),
            "did not answer within 2 s",
        ),
    ];
    for (repo, response, _) in &cases {
        Mock::given(path(format!("/repos/o/{repo}/issues")))
            .respond_with(response.clone())
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    let mut client = mockhub(&config);
    for (index, (repo, _, expected)) in cases.iter().enumerate() {
        let result = call(
            &mut client,
            index as i64 + 1,
            "list_issues",
            json!({ "owner": "o", "repo": repo }),
        )
        .await;
        assert_eq!(result["isError"], true, "{repo}: {result}");
        assert!(
            text(&result).contains(expected),
            "{repo}: {}",
            text(&result)
        );
    }
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_once() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    let mut client = mockhub(&config);
    let result = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "o", "repo": "r" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    upstream.verify().await;
}

#[tokio::test]
async fn missing_credentials_say_how_to_connect() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, far_future());
    std::fs::remove_file(
        root.path()
            .join("local_auth/credentials/mockhub/alice_credentials.json"),
    )
    .unwrap();
    let mut client = mockhub(&config);
    let result = call(
        &mut client,
        1,
        "list_issues",
        json!({ "owner": "o", "repo": "r" }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(
        text(&result).contains("gumcp-actors auth --server mockhub --user-id alice"),
        "{result}"
    );
    assert!(upstream
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn a_broken_manifest_is_skipped_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("servers/broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        "name = \"broken\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"http\"\nbase_url = \"https://x\"\n\n[[tools]]\nname = \"t\"\ndescription = \"d\"\npath = \"/a/{missing}\"\ninput_schema = { type = \"object\", properties = {} }\n",
    )
    .unwrap();
    let output = tokio::process::Command::new(common::binary())
        .args(["servers"])
        .env("GUMCP__SERVERS__DIR", root.path().join("servers"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken") && stderr.contains("{missing}"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_thousand_concurrent_calls_with_an_expired_token_share_one_refresh() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1000)
        .mount(&upstream)
        .await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({ "access_token": "fresh", "token_type": "bearer", "expires_in": 3600 }),
                )
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, 1_000);
    // One session with a thousand calls in flight: above the default per-session and per-user
    // shares, which this test is not about.
    let mut settings = std::fs::read_to_string(&config).unwrap();
    settings.push_str(
        "[protocol]\nmax_in_flight_per_session = 2000\n[runtime]\nmax_in_flight_per_user = 2000\n",
    );
    std::fs::write(&config, settings).unwrap();
    let mut client = mockhub(&config);
    for id in 1..=1000 {
        client
            .send(json!({
                "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": "list_issues", "arguments": { "owner": "o", "repo": "r" }, "_meta": modern_meta() }
            }))
            .await;
    }
    let mut answered = 0;
    while answered < 1000 {
        let reply = client.next().await;
        if reply.get("id").is_some() {
            assert_eq!(reply["result"]["isError"], false, "{reply}");
            answered += 1;
        }
    }
    provider.verify().await;
    upstream.verify().await;
}

/// A server folder exercising the rest of the engine: GraphQL, `ok: false` bodies, cursor and
/// Link pagination, and declared prompts.
fn api_project(root: &Path, upstream: &MockServer) -> std::path::PathBuf {
    let manifest = format!(
        r#"name = "apihub"
description = "GraphQL, Slack-like and GitHub-like shapes"
version = "1"
kind = "http"
base_url = "{upstream}"
body_errors = {{ success_flag = "/ok", message = "/error" }}

[auth]
kind = "api_key"
inject = "header:X-Key"

[[tools]]
name = "get_issue"
description = "One issue by id (GraphQL)"
method = "POST"
path = "/graphql"
body = "graphql"
graphql = "query($id: String!) {{ issue(id: $id) {{ id title }} }}"
input_schema = {{ type = "object", properties = {{ id = {{ type = "string" }} }}, required = ["id"] }}
result = {{ pick = "/data/issue" }}

[[tools]]
name = "list_channels"
description = "Channels, every page"
path = "/conversations.list"
query = {{ limit = "limit" }}
input_schema = {{ type = "object", properties = {{ limit = {{ type = "integer" }} }} }}
result = {{ pick = "/channels", fields = ["id", "name"] }}
pagination = {{ kind = "cursor", param = "cursor", next = "/response_metadata/next_cursor" }}

[[tools]]
name = "list_repos"
description = "Repositories, following Link headers"
path = "/user/repos"
input_schema = {{ type = "object", properties = {{ pages = {{ type = "integer" }} }} }}
pagination = {{ kind = "link", max_pages_arg = "pages" }}

[[prompts]]
name = "search_with_recency"
description = "Search, optionally within a time range"
arguments = [{{ name = "query", required = true }}, {{ name = "recency" }}]
messages = [{{ role = "user", text = "Search for: {{query}}[[ (from the past {{recency}})]]" }}]
"#,
        upstream = upstream.uri()
    );
    project(
        root,
        "apihub",
        &manifest,
        json!({ "api_key": "k-1" }),
        "",
        "",
    )
}

fn apihub(config: &Path) -> StdioClient {
    StdioClient::start(&[
        "--config",
        config.to_str().unwrap(),
        "stdio",
        "--server",
        "apihub",
        "--user-id",
        "alice",
    ])
}

#[tokio::test]
async fn graphql_queries_carry_their_variables_and_errors_become_tool_errors() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("x-key", "k-1"))
        .and(wiremock::matchers::body_json(json!({
            "query": "query($id: String!) { issue(id: $id) { id title } }",
            "variables": { "id": "ISS-1" }
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": { "issue": { "id": "ISS-1", "title": "Crash" } } })),
        )
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_string_contains("nope"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({ "data": null, "errors": [{ "message": "Entity not found" }] }),
            ),
        )
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = apihub(&api_project(root.path(), &upstream));
    let found = call(&mut client, 1, "get_issue", json!({ "id": "ISS-1" })).await;
    assert_eq!(
        found["structuredContent"],
        json!({ "id": "ISS-1", "title": "Crash" })
    );
    let missing = call(&mut client, 2, "get_issue", json!({ "id": "nope" })).await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("Entity not found"), "{missing}");
}

#[tokio::test]
async fn cursor_pages_are_joined_and_ok_false_is_an_error() {
    let upstream = MockServer::start().await;
    Mock::given(path("/conversations.list"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channels": [{ "id": "C3", "name": "three", "extra": 1 }], "response_metadata": { "next_cursor": "" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(path("/conversations.list"))
        .and(query_param("limit", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "channels": [{ "id": "C1", "name": "one" }, { "id": "C2", "name": "two" }],
            "response_metadata": { "next_cursor": "c2" }
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(path("/conversations.list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "invalid_auth" })),
        )
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = apihub(&api_project(root.path(), &upstream));
    let all = call(&mut client, 1, "list_channels", json!({ "limit": 2 })).await;
    let names: Vec<&str> = all["structuredContent"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert!(all["structuredContent"]["items"][2].get("extra").is_none());
    let failed = call(&mut client, 2, "list_channels", json!({ "limit": 9 })).await;
    assert_eq!(failed["isError"], true);
    assert!(text(&failed).contains("invalid_auth"), "{failed}");
}

#[tokio::test]
async fn link_pages_are_followed_on_the_same_host_only() {
    let upstream = MockServer::start().await;
    let base = upstream.uri();
    Mock::given(path("/user/repos"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{ "name": "b" }]))
                .insert_header(
                    "link",
                    "<https://elsewhere.example/user/repos?page=3>; rel=\"next\"",
                ),
        )
        .mount(&upstream)
        .await;
    Mock::given(path("/user/repos"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{ "name": "a" }]))
                .insert_header("link", format!("<{base}/user/repos?page=2>; rel=\"next\", <{base}/user/repos?page=9>; rel=\"last\"")),
        )
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = apihub(&api_project(root.path(), &upstream));
    let one_page = call(&mut client, 1, "list_repos", json!({ "pages": 1 })).await;
    assert_eq!(
        one_page["structuredContent"]["items"],
        json!([{ "name": "a" }])
    );
    let elsewhere = call(&mut client, 2, "list_repos", json!({})).await;
    assert_eq!(
        elsewhere["isError"], true,
        "a link to another host is not followed: {elsewhere}"
    );
    assert!(text(&elsewhere).contains("another host"));
    let two = call(&mut client, 3, "list_repos", json!({ "pages": 2 })).await;
    assert_eq!(
        two["structuredContent"]["items"],
        json!([{ "name": "a" }, { "name": "b" }])
    );
}

#[tokio::test]
async fn declared_prompts_fill_their_templates() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = apihub(&api_project(root.path(), &upstream));
    let listed = client
        .request(1, "prompts/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["prompts"][0]["name"],
        "search_with_recency"
    );
    let plain = client
        .request(2, "prompts/get", json!({ "name": "search_with_recency", "arguments": { "query": "rust" }, "_meta": modern_meta() }))
        .await;
    assert_eq!(
        plain["result"]["messages"][0]["content"]["text"],
        "Search for: rust"
    );
    let recent = client
        .request(3, "prompts/get", json!({ "name": "search_with_recency", "arguments": { "query": "rust", "recency": "week" }, "_meta": modern_meta() }))
        .await;
    assert_eq!(
        recent["result"]["messages"][0]["content"]["text"],
        "Search for: rust (from the past week)"
    );
    let missing = client
        .request(
            4,
            "prompts/get",
            json!({ "name": "search_with_recency", "arguments": {}, "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(missing["error"]["code"], -32602);
}

/// kill -9 while tokens are refreshed and saved, again and again: the credentials file is
/// always whole — the old tokens or new ones, never a torn write — and the next start reads it.
#[tokio::test]
async fn kill_9_mid_refresh_leaves_the_credentials_file_whole() {
    let (upstream, provider) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&upstream)
        .await;
    // Big tokens make each save take a while; a one-second lifetime is inside the refresh
    // margin, so every call refreshes and saves again.
    let padding = "x".repeat(256 * 1024);
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": format!("fresh{padding}"), "refresh_token": "r2",
            "token_type": "bearer", "expires_in": 1
        })))
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = oauth_project(root.path(), &upstream, &provider, 1_000);
    let file = root
        .path()
        .join("local_auth/credentials/mockhub/alice_credentials.json");
    for round in 0..30u64 {
        let mut client = mockhub(&config);
        // Calls flow until a refresh has begun, then a little longer (0–27 ms), then the kill.
        let refreshed_before = provider.received_requests().await.unwrap().len();
        let started = std::time::Instant::now();
        let linger = std::time::Duration::from_millis(round * 7 % 30);
        let mut refreshing_since = None;
        for id in 0.. {
            client
                .send(json!({
                    "jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {
                        "name": "list_issues", "arguments": { "owner": "o", "repo": "r" },
                        "_meta": modern_meta()
                    }
                }))
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            if refreshing_since.is_none()
                && provider.received_requests().await.unwrap().len() > refreshed_before
            {
                refreshing_since = Some(std::time::Instant::now());
            }
            if refreshing_since.is_some_and(|since| since.elapsed() >= linger) {
                break;
            }
            assert!(
                started.elapsed() < common::WAIT,
                "round {round}: no refresh began"
            );
        }
        client.child.start_kill().unwrap();
        client.child.wait().await.unwrap();
        let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|err| panic!("round {round}: a torn credentials file: {err}"));
        let token = saved["access_token"].as_str().unwrap();
        assert!(
            token == "old" || token == format!("fresh{padding}"),
            "round {round}: a token that is neither the old one nor the new one"
        );
        assert!(saved["refresh_token"].is_string(), "round {round}");
    }
    let refreshes = provider.received_requests().await.unwrap().len();
    assert!(
        refreshes >= 30,
        "every round was killed while refreshing: {refreshes}"
    );
}

/// A server whose one tool calls `upstream` (a bare listener that never answers).
fn hung_project(root: &Path, upstream: &str) -> std::path::PathBuf {
    let manifest = format!(
        r#"name = "hung"
description = "An upstream that never answers"
version = "1"
kind = "http"
base_url = "{upstream}"

[[tools]]
name = "wait"
description = "Waits for the upstream"
path = "/wait"
input_schema = {{ type = "object" }}
"#
    );
    project(
        root,
        "hung",
        &manifest,
        json!({}),
        "",
        "upstream_timeout_secs = 30\n",
    )
}

/// Waits (bounded) until the peer closes `socket`.
async fn closed_by_peer(socket: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(common::WAIT, socket.read(&mut buffer))
            .await
            .expect("the upstream request is dropped in time")
            .unwrap_or(0);
        if read == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn cancelling_a_call_drops_its_upstream_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let config = hung_project(root.path(), &upstream);
    let mut client = StdioClient::start(&[
        "--config",
        config.to_str().unwrap(),
        "stdio",
        "--server",
        "hung",
    ]);
    client.initialize("2025-11-25", json!({})).await;
    client
        .send(json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "wait", "arguments": {} }
        }))
        .await;
    let (mut socket, _) = tokio::time::timeout(common::WAIT, listener.accept())
        .await
        .expect("the call reached the upstream")
        .unwrap();
    client
        .notify(
            "notifications/cancelled",
            json!({ "requestId": 1, "reason": "user gave up" }),
        )
        .await;
    closed_by_peer(&mut socket).await;
    let ping = client.request(2, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    assert!(
        client.seen.iter().all(|message| message["id"] != 1),
        "a cancelled request gets no reply"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_drops_the_upstream_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let config = hung_project(root.path(), &upstream);
    let servers = root.path().join("servers");
    let servers = servers.to_str().unwrap();
    let served = common::serve(Some(&config), &[("GUMCP__SERVERS__DIR", servers)]).await;
    let client = gumcp_actors::upstream::client(common::WAIT).expect("the HTTP client builds");
    let call = client
        .post(format!("{}/hung/alice/mcp", served.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "wait")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "wait", "arguments": {}, "_meta": modern_meta() }
            })
            .to_string(),
        )
        .send();
    let pending = tokio::spawn(call);
    let (mut socket, _) = tokio::time::timeout(common::WAIT, listener.accept())
        .await
        .expect("the call reached the upstream")
        .unwrap();
    pending.abort();
    closed_by_peer(&mut socket).await;
}
