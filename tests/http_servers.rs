//! Every shipped integration over HTTP as well as over stdio: `serve` lists each server's
//! guMCP tools to a 2026-07-28 client, and a call goes through to the (mocked) upstream with
//! the user's credentials — the same server code behind both transports.

mod common;

use common::{modern_meta, WAIT};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The tool counts of guMCP's catalogue for the servers shipped here.
const SERVERS: [(&str, usize); 38] = [
    ("hackernews", 6),
    ("github", 24),
    ("slack", 18),
    ("linear", 3),
    ("notion", 8),
    ("gmail", 12),
    ("gsheets", 9),
    ("gcalendar", 6),
    ("perplexity", 2),
    ("gdrive", 12),
    ("gdocs", 5),
    ("gmeet", 6),
    ("youtube", 9),
    ("outlook", 2),
    ("onedrive", 7),
    ("word", 7),
    ("sendgrid", 5),
    ("serpapi", 1),
    ("browserbase", 1),
    ("hunter_io", 22),
    ("loops", 11),
    ("cal", 10),
    ("apollo", 17),
    ("mailerlite", 33),
    ("typeform", 4),
    ("calendly", 5),
    ("pagerduty", 9),
    ("zoom", 11),
    ("dropbox", 9),
    ("clickup", 12),
    ("airtable", 15),
    ("monday", 19),
    ("figma", 11),
    ("reddit", 9),
    ("x", 8),
    ("patreon", 6),
    ("canva", 14),
    ("webflow", 27),
];

async fn post(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    name: Option<&str>,
    params: Value,
) -> Value {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    request
        .body(json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_integration_is_served_over_http() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search/repositories"))
        .and(query_param("q", "mcp"))
        .and(header("authorization", "Bearer gho_alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1, "items": [{ "full_name": "octo/mcp", "stargazers_count": 7 }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let credentials = root.path().join("local_auth/credentials/github");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(
        credentials.join("alice_credentials.json"),
        json!({ "access_token": "gho_alice" }).to_string(),
    )
    .unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers.base_urls]\ngithub = \"{}\"\n[auth]\nlocal_dir = \"local_auth\"\n",
            upstream.uri()
        ),
    )
    .unwrap();
    let served = common::serve(Some(&config), &[]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");

    let health: Value = client
        .get(format!("{}/health_check", served.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (server, _) in SERVERS {
        let listed = health["servers"]
            .as_array()
            .is_some_and(|names| names.iter().any(|name| name == server));
        assert!(listed, "{server} is not in /health_check: {health}");
    }

    for (server, tools) in SERVERS {
        let url = format!("{}/{server}/alice/mcp", served.url);
        let listed = post(
            &client,
            &url,
            "tools/list",
            None,
            json!({ "_meta": modern_meta() }),
        )
        .await;
        let names = listed["result"]["tools"].as_array().map_or(0, Vec::len);
        assert_eq!(names, tools, "{server} over HTTP: {listed}");
    }

    let url = format!("{}/github/alice/mcp", served.url);
    let params = json!({
        "name": "search_repositories",
        "arguments": { "query": "mcp", "max_limit": 1 },
        "_meta": modern_meta()
    });
    let found = post(
        &client,
        &url,
        "tools/call",
        Some("search_repositories"),
        params,
    )
    .await;
    assert_eq!(found["result"]["isError"], false, "{found}");
    let text = found["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("octo/mcp"), "{found}");
    upstream.verify().await;
}
