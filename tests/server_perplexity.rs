//! perplexity against a mock of its API: both tools send what the API expects (path, bearer
//! key, JSON body shaped as chat completions) and return the answer; both prompts fill in.

mod common;

use common::{call_tool as call, modern_meta, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The shipped server, a user with an API key, and the upstream pointed at `upstream`.
fn perplexity(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    shipped_server(
        root,
        "perplexity",
        json!({ "api_key": "pplx-test" }),
        &upstream.uri(),
    )
}

fn completion(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "c1", "model": "sonar",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text } }]
    }))
}

#[tokio::test]
async fn search_sends_a_web_search_completion_and_returns_the_answer() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", "Bearer pplx-test"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "model": "sonar-pro",
            "messages": [{ "role": "user", "content": "latest rust release" }],
            "return_related_questions": false,
            "search_recency_filter": "week",
            "web_search_options": { "search_context_size": "high" }
        })))
        .respond_with(completion("Rust 1.95 was released."))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = perplexity(root.path(), &upstream);
    let result = call(
        &mut client,
        1,
        "search",
        json!({ "query": "latest rust release", "model": "sonar-pro", "recency_filter": "week" }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["content"][0]["text"], "Rust 1.95 was released.");
    assert_eq!(
        result["structuredContent"],
        json!({ "result": "Rust 1.95 was released." })
    );
    upstream.verify().await;
}

#[tokio::test]
async fn chat_sends_the_gumcp_defaults_and_returns_the_answer() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", "Bearer pplx-test"))
        .and(body_json(json!({
            "model": "sonar",
            "messages": [
                { "role": "system", "content": "Be helpful, concise, and precise." },
                { "role": "user", "content": "hello" }
            ],
            "temperature": 0.7
        })))
        .respond_with(completion("Hi!"))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = perplexity(root.path(), &upstream);
    let result = call(&mut client, 1, "chat", json!({ "message": "hello" })).await;
    assert_eq!(result["content"][0]["text"], "Hi!", "{result}");
    upstream.verify().await;
}

#[tokio::test]
async fn a_rejected_key_is_a_tool_error_not_a_crash() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "error": { "message": "Invalid API key" } })),
        )
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = perplexity(root.path(), &upstream);
    let result = call(&mut client, 1, "chat", json!({ "message": "hello" })).await;
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("gumcp-actors auth --server perplexity --user-id alice"),
        "{result}"
    );
}

#[tokio::test]
async fn both_prompts_fill_in_their_arguments() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = perplexity(root.path(), &upstream);
    let listed = client
        .request(1, "prompts/list", json!({ "_meta": modern_meta() }))
        .await;
    let names: Vec<&str> = listed["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search_with_recency", "code_assistant"]);
    let get = |name: &str, args: Value| json!({ "name": name, "arguments": args, "_meta": modern_meta() });
    let text = |reply: &Value| {
        reply["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let search = client
        .request(
            2,
            "prompts/get",
            get(
                "search_with_recency",
                json!({ "query": "mcp", "recency": "day" }),
            ),
        )
        .await;
    assert!(
        text(&search).ends_with("Search for: mcp (from the past day)"),
        "{search}"
    );
    let code = client
        .request(
            3,
            "prompts/get",
            get(
                "code_assistant",
                json!({ "problem": "sort a list", "language": "Rust" }),
            ),
        )
        .await;
    assert!(
        text(&code).ends_with("I need help with this Rust code problem: sort a list"),
        "{code}"
    );
    let plain = client
        .request(
            4,
            "prompts/get",
            get("code_assistant", json!({ "problem": "sort a list" })),
        )
        .await;
    assert!(text(&plain).ends_with("\n\nsort a list"), "{plain}");
    // guMCP's `none` (or a value it does not know) leaves the time range out.
    for (id, recency) in [(5, "none"), (6, "decade")] {
        let unbounded = client
            .request(
                id,
                "prompts/get",
                get(
                    "search_with_recency",
                    json!({ "query": "mcp", "recency": recency }),
                ),
            )
            .await;
        assert!(text(&unbounded).ends_with("Search for: mcp"), "{unbounded}");
    }
}
