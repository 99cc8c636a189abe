//! Tools that start a job upstream and follow it (the `http` engine's `poll`), through the
//! real binary against a mock that takes a few status requests to finish: progress goes to
//! the client while the call waits, and a cancelled call — or a cancelled task running it —
//! stops the job upstream.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A crawl of three pages that has crawled one more page at each status request.
struct Crawling(Arc<AtomicUsize>);

impl Respond for Crawling {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let polls = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let status = if polls >= 3 { "completed" } else { "scraping" };
        let pages: Vec<Value> = (1..=polls.min(3))
            .map(|n| json!({ "markdown": format!("# Page {n}") }))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "status": status, "total": 3, "completed": polls.min(3), "creditsUsed": polls.min(3),
            "data": pages
        }))
    }
}

async fn firecrawl(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    Mock::given(method("POST"))
        .and(path("/crawl"))
        .and(header("authorization", "Bearer fc-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "id": "c1", "url": "https://api.firecrawl.dev/v1/crawl/c1"
        })))
        .mount(upstream)
        .await;
    let mut client = shipped_server(
        root,
        "firecrawl",
        json!({ "api_key": "fc-test" }),
        &upstream.uri(),
    );
    client.initialize("2025-06-18", json!({})).await;
    client
}

fn crawl_call(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "crawl_website",
            "arguments": { "url": "https://docs.example", "limit": 3 },
            "_meta": { "progressToken": "crawl-1" }
        }
    })
}

#[tokio::test]
async fn a_crawl_reports_progress_while_it_runs_and_answers_with_its_pages() {
    let upstream = MockServer::start().await;
    let polls = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/crawl/c1"))
        .and(header("authorization", "Bearer fc-test"))
        .respond_with(Crawling(polls.clone()))
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = firecrawl(root.path(), &upstream).await;
    client.send(crawl_call(1)).await;
    let reply = client.wait_for_id(&json!(1)).await;
    let result = &reply["result"];
    assert_eq!(result["isError"], false, "{reply}");
    assert_eq!(result["structuredContent"]["status"], "completed");
    assert_eq!(result["structuredContent"]["id"], "c1");
    assert_eq!(
        result["structuredContent"]["data"][2]["markdown"],
        "# Page 3"
    );
    let progress: Vec<&Value> = client
        .seen
        .iter()
        .filter(|message| message["method"] == "notifications/progress")
        .map(|message| &message["params"])
        .collect();
    assert_eq!(
        progress,
        [
            &json!({ "progressToken": "crawl-1", "progress": 1.0, "total": 3.0, "message": "scraping: 1 of 3" }),
            &json!({ "progressToken": "crawl-1", "progress": 2.0, "total": 3.0, "message": "scraping: 2 of 3" }),
        ]
    );
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_cancelled_crawl_is_cancelled_upstream() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crawl/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "scraping", "total": 50, "completed": 1, "data": []
        })))
        .mount(&upstream)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/crawl/c1"))
        .and(header("authorization", "Bearer fc-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "cancelled" })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = firecrawl(root.path(), &upstream).await;
    client.send(crawl_call(7)).await;
    first_progress(&mut client, 7).await;
    client
        .notify(
            "notifications/cancelled",
            json!({ "requestId": 7, "reason": "the user changed their mind" }),
        )
        .await;
    assert!(
        reached(&upstream, "DELETE", "/crawl/c1").await,
        "no DELETE /crawl/c1 reached the upstream"
    );
    // The session goes on, and the cancelled call is not answered.
    let pong = client.request(8, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}), "{pong}");
    assert!(client.seen.iter().all(|message| message["id"] != 7));
    upstream.verify().await;
}

/// Whether `method path` reaches the upstream within ten seconds.
async fn reached(upstream: &MockServer, method: &str, path: &str) -> bool {
    for _ in 0..200 {
        let requests = upstream.received_requests().await.unwrap_or_default();
        if requests
            .iter()
            .any(|r| r.method.as_str() == method && r.url.path() == path)
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Reads until the first progress notification of a call (the call's job is being followed).
async fn first_progress(client: &mut StdioClient, call: i64) {
    loop {
        let message = client.next().await;
        if message["method"] == "notifications/progress" {
            return;
        }
        assert_ne!(message["id"], call, "the call ended early: {message}");
    }
}

#[tokio::test]
async fn a_cancelled_actor_run_is_aborted() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/acts/a2/runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "data": { "id": "r1", "actId": "a2", "status": "READY" }
        })))
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/actor-runs/r1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "id": "r1", "status": "RUNNING", "statusMessage": "Crawling" }
        })))
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/actor-runs/r1/abort"))
        .and(header("authorization", "Bearer apify-test"))
        .and(header("content-length", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "id": "r1", "status": "ABORTING" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = shipped_server(
        root.path(),
        "apify",
        json!({ "token": "apify-test" }),
        &upstream.uri(),
    );
    client.initialize("2025-06-18", json!({})).await;
    client
        .send(json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {
                "name": "run_actor",
                "arguments": { "actor_id": "a2" },
                "_meta": { "progressToken": 3 }
            }
        }))
        .await;
    first_progress(&mut client, 3).await;
    client
        .notify("notifications/cancelled", json!({ "requestId": 3 }))
        .await;
    assert!(
        reached(&upstream, "POST", "/actor-runs/r1/abort").await,
        "the run was not aborted"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_crawl_run_as_a_task_is_cancelled_upstream_with_the_task() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crawl/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "scraping", "total": 50, "completed": 1, "data": []
        })))
        .mount(&upstream)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/crawl/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "cancelled" })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    Mock::given(method("POST"))
        .and(path("/crawl"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "id": "c1", "url": "https://api.firecrawl.dev/v1/crawl/c1"
        })))
        .mount(&upstream)
        .await;
    let mut client = shipped_server(
        root.path(),
        "firecrawl",
        json!({ "api_key": "fc-test" }),
        &upstream.uri(),
    );
    client.initialize("2025-11-25", json!({})).await;
    let listed = client.request(1, "tools/list", json!({})).await;
    let crawl = listed["result"]["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|tool| tool["name"] == "crawl_website"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(crawl["execution"]["taskSupport"], "optional", "{crawl}");
    let call = json!({
        "name": "crawl_website", "arguments": { "url": "https://docs.example" },
        "task": { "ttl": 60000 }
    });
    let created = client.request(2, "tools/call", call).await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_owned();
    assert!(
        reached(&upstream, "GET", "/crawl/c1").await,
        "the task never followed the crawl"
    );
    let cancelled = client
        .request(3, "tasks/cancel", json!({ "taskId": id }))
        .await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    assert!(
        reached(&upstream, "DELETE", "/crawl/c1").await,
        "the cancelled task left the crawl running"
    );
    upstream.verify().await;
}
