//! Tasks through the real `serve` over 2026-07-28 HTTP: a task's call runs on after its request
//! is answered, belongs to its user only, is bounded per user, counted in `gumcp_tasks{state}`
//! and the task durations, audited when it is created and when it ends, and dropped after its
//! TTL. (The conformance suite checks the wire shapes; tests/interop/test_tasks.py the
//! 2025-11-25 flow through the official Python client.)

mod common;

use std::time::Duration;

use serde_json::{json, Value};

const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// Bounds every wait for something the server does on its own time (a task finishing, a TTL
/// running out, the audit writer): polls this often, at most `POLLS` times.
const POLL: Duration = Duration::from_millis(50);
const POLLS: usize = 400;

fn meta() -> Value {
    let mut meta = common::modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({ "extensions": { EXTENSION: {} } });
    meta
}

/// One 2026-07-28 request of `method` to `user`'s conformance-fixtures, with `Mcp-Name`
/// mirroring `name` (a tool or a task id); the JSON-RPC answer.
async fn rpc(url: &str, user: &str, method: &str, name: &str, params: Value) -> Value {
    rpc_to(url, "conformance-fixtures", user, method, name, params).await
}

/// [`rpc`] to `server`.
async fn rpc_to(
    url: &str,
    server: &str,
    user: &str,
    method: &str,
    name: &str,
    mut params: Value,
) -> Value {
    params["_meta"] = meta();
    let answer = common::http_client()
        .post(format!("{url}/{server}/{user}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .expect("serve answers");
    answer.json().await.expect("a JSON-RPC answer")
}

async fn start_task(url: &str, user: &str, seconds: f64, label: &str) -> Value {
    let args = json!({"name": "slow_compute", "arguments": {"seconds": seconds, "label": label}});
    rpc(url, user, "tools/call", "slow_compute", args).await
}

async fn task_get(url: &str, user: &str, id: &str) -> Value {
    rpc(url, user, "tasks/get", id, json!({ "taskId": id })).await
}

/// Polls `tasks/get` until the task is in `status`.
async fn settles(url: &str, user: &str, id: &str, status: &str) -> Value {
    for _ in 0..POLLS {
        let got = task_get(url, user, id).await;
        if got["result"]["status"] == status {
            return got["result"].clone();
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("task {id} never became {status}");
}

async fn metric(metrics_url: &str, series: &str) -> Option<f64> {
    let text = common::http_client()
        .get(metrics_url)
        .send()
        .await
        .expect("the metrics answer")
        .text()
        .await
        .expect("the metrics are text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
}

fn tasks_gauge(state: &str) -> String {
    format!("gumcp_tasks{{state=\"{state}\"}}")
}

#[tokio::test]
async fn tasks_belong_to_their_user_are_bounded_counted_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_path = audit.to_str().unwrap();
    let served = common::serve(
        None,
        &[
            ("GUMCP__AUDIT__PATH", audit_path),
            ("GUMCP__TASKS__MAX_PER_USER", "2"),
        ],
    )
    .await;
    let url = served.url.as_str();

    let long = start_task(url, "alice", 600.0, "long").await;
    assert_eq!(long["result"]["resultType"], "task", "{long}");
    let long_id = long["result"]["taskId"].as_str().unwrap().to_owned();
    assert!(long_id.len() >= 32, "task ids are unguessable: {long_id}");
    let short = start_task(url, "alice", 0.3, "short").await;
    let short_id = short["result"]["taskId"].as_str().unwrap().to_owned();

    // A third task is past alice's share: a tool that may run either way is answered in
    // place, one that requires a task is refused; bob's share is his own.
    let in_place = start_task(url, "alice", 0.2, "third").await;
    assert_eq!(in_place["result"]["resultType"], "complete", "{in_place}");
    assert_eq!(
        common::text_of(&in_place["result"]),
        "Computed third in 0.2 s"
    );
    let required = json!({"name": "failing_job", "arguments": {}});
    let refused = rpc(url, "alice", "tools/call", "failing_job", required).await;
    assert_eq!(refused["error"]["code"], -32000, "{refused}");
    let rejections = "gumcp_rejections_total{reason=\"tasks_per_user\"}";
    assert_eq!(metric(&served.metrics_url, rejections).await, Some(1.0));

    // Bob cannot see, cancel or answer alice's task: to him its id is unknown.
    for (method, params) in [
        ("tasks/get", json!({ "taskId": long_id })),
        ("tasks/cancel", json!({ "taskId": long_id })),
        (
            "tasks/update",
            json!({ "taskId": long_id, "inputResponses": {} }),
        ),
    ] {
        let answer = rpc(url, "bob", method, &long_id, params).await;
        assert_eq!(answer["error"]["code"], -32602, "{method}: {answer}");
    }
    assert_eq!(
        task_get(url, "alice", &long_id).await["result"]["status"],
        "working"
    );
    let bobs = start_task(url, "bob", 0.0, "bob-quick").await;
    assert!(bobs["result"]["content"].is_array(), "{bobs}");

    let done = settles(url, "alice", &short_id, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Computed short in 0.3 s"
    );
    let ack = rpc(
        url,
        "alice",
        "tasks/cancel",
        &long_id,
        json!({ "taskId": long_id }),
    )
    .await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    settles(url, "alice", &long_id, "cancelled").await;

    let metrics = &served.metrics_url;
    assert_eq!(metric(metrics, &tasks_gauge("completed")).await, Some(1.0));
    assert_eq!(metric(metrics, &tasks_gauge("cancelled")).await, Some(1.0));
    assert_eq!(metric(metrics, &tasks_gauge("working")).await, Some(0.0));
    let durations =
        "gumcp_task_duration_seconds_count{server=\"conformance-fixtures\",state=\"completed\"}";
    assert_eq!(metric(metrics, durations).await, Some(1.0));
    let refused_gets = "gumcp_requests_total{method=\"tasks/get\",outcome=\"error\",server=\"conformance-fixtures\"}";
    assert_eq!(
        metric(metrics, refused_gets).await,
        Some(1.0),
        "bob's tasks/get"
    );

    // The audit log has each task's creating call and its end, with the task's id.
    let mut records: Vec<Value> = Vec::new();
    for _ in 0..POLLS {
        records = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let ends = records.iter().filter(|r| r["method"] == "task").count();
        if ends == 2 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let find = |method: &str, id: &str| {
        records
            .iter()
            .find(|r| r["method"] == method && r["task"] == id)
            .unwrap_or_else(|| panic!("no {method} record of {id} in {records:?}"))
    };
    assert_eq!(find("tools/call", &long_id)["target"], "slow_compute");
    assert_eq!(find("task", &long_id)["outcome"], "cancelled");
    assert_eq!(find("task", &short_id)["outcome"], "completed");
    assert_eq!(find("task", &short_id)["user"], "alice");
    served.stop().await;
}

#[tokio::test]
async fn a_finished_task_is_dropped_after_its_ttl() {
    let served = common::serve(None, &[("GUMCP__TASKS__TTL_SECS", "1")]).await;
    let url = served.url.as_str();
    let created = start_task(url, "carol", 0.1, "brief").await;
    assert_eq!(created["result"]["ttlMs"], 1000, "{created}");
    let id = created["result"]["taskId"].as_str().unwrap().to_owned();
    settles(url, "carol", &id, "completed").await;
    let mut gone = None;
    for _ in 0..POLLS {
        let got = task_get(url, "carol", &id).await;
        if got["error"]["code"] == -32602 {
            gone = Some(got);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(gone.is_some(), "the task outlived its TTL");
    // A creation runs the store's maintenance, which drops the expired task from the gauge
    // once moka's timer wheel has reached it (its buckets are about a second wide). These
    // tasks keep working, so they cannot be counted as completed; 90 stay under the
    // per-user bound.
    let mut gauge = None;
    for _ in 0..90 {
        let next = start_task(url, "carol", 600.0, "next").await;
        assert_eq!(next["result"]["resultType"], "task", "{next}");
        gauge = metric(&served.metrics_url, &tasks_gauge("completed")).await;
        if gauge == Some(0.0) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(gauge, Some(0.0));
    served.stop().await;
}

#[tokio::test]
async fn an_http_kind_tool_declared_as_a_task_runs_as_one() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let upstream = MockServer::start().await;
    // Slow enough that the call is not done when first polled, so it becomes a task.
    Mock::given(method("GET"))
        .and(path("/report"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"rows": 3}))
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("servers/reports");
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = format!(
        r#"name = "reports"
description = "A slow report API"
version = "1"
kind = "http"
base_url = "{}"

[auth]
kind = "none"

[[tools]]
name = "build_report"
description = "Builds the report"
path = "/report"
input_schema = {{ type = "object", properties = {{}} }}
task_support = "optional"
"#,
        upstream.uri()
    );
    std::fs::write(folder.join("server.toml"), &manifest).unwrap();
    // The same server with its tool renamed by a `[shape]`: the declaration is still found.
    let shaped = dir.path().join("servers/shaped-reports");
    std::fs::create_dir_all(&shaped).unwrap();
    let renamed = manifest.replace("name = \"reports\"", "name = \"shaped-reports\"")
        + "\n[shape.rename]\nbuild_report = \"make_report\"\n";
    std::fs::write(shaped.join("server.toml"), renamed).unwrap();
    let servers = dir.path().join("servers");
    let served = common::serve(None, &[("GUMCP__SERVERS__DIR", servers.to_str().unwrap())]).await;
    let url = served.url.as_str();

    for (server, tool) in [
        ("reports", "build_report"),
        ("shaped-reports", "make_report"),
    ] {
        let listed = rpc_to(url, server, "dave", "tools/list", "", json!({})).await;
        assert_eq!(listed["result"]["tools"][0]["name"], tool, "{listed}");
        assert_eq!(
            listed["result"]["tools"][0]["execution"]["taskSupport"], "optional",
            "{listed}"
        );
        let params = json!({"name": tool, "arguments": {}});
        let created = rpc_to(url, server, "dave", "tools/call", tool, params).await;
        assert_eq!(created["result"]["resultType"], "task", "{created}");
        let id = created["result"]["taskId"].as_str().unwrap().to_owned();
        let mut done = Value::Null;
        for _ in 0..POLLS {
            let got = rpc_to(
                url,
                server,
                "dave",
                "tasks/get",
                &id,
                json!({ "taskId": id }),
            )
            .await;
            if got["result"]["status"] == "completed" {
                done = got["result"].clone();
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let text = done["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("\"rows\""), "{server}: {done}");
    }
    served.stop().await;
}

/// Reads (after what was already read) until a message satisfies `wanted`.
async fn read_until(client: &mut common::StdioClient, wanted: impl Fn(&Value) -> bool) -> Value {
    if let Some(at) = client.seen.iter().position(&wanted) {
        return client.seen.remove(at);
    }
    loop {
        let message = client.next().await;
        if wanted(&message) {
            return message;
        }
        client.seen.push(message);
    }
}

#[tokio::test]
async fn a_legacy_task_asks_its_session_and_announces_its_end() {
    let mut client = common::StdioClient::server("conformance-fixtures");
    let init = client
        .initialize("2025-11-25", json!({ "elicitation": {} }))
        .await;
    let capability = &init["result"]["capabilities"]["tasks"];
    assert!(
        capability["requests"]["tools"]["call"].is_object(),
        "{init}"
    );
    let call = json!({
        "name": "confirm_delete", "arguments": { "filename": "a.txt" }, "task": { "ttl": 5000 }
    });
    let created = client.request(1, "tools/call", call).await;
    let task = &created["result"]["task"];
    assert_eq!(task["status"], "working", "{created}");
    assert_eq!(task["ttl"], 5000);
    let id = task["taskId"].as_str().unwrap().to_owned();

    // The tool asks from inside the task, on the session that made it.
    let ask = read_until(&mut client, |m| m["method"] == "elicitation/create").await;
    let related = &ask["params"]["_meta"]["io.modelcontextprotocol/related-task"];
    assert_eq!(related["taskId"], id.as_str(), "{ask}");
    // While the question waits, the task says so (and announces it).
    let waiting = client
        .request(6, "tasks/get", json!({ "taskId": id }))
        .await;
    assert_eq!(waiting["result"]["status"], "input_required", "{waiting}");
    read_until(&mut client, |m| {
        m["method"] == "notifications/tasks/status" && m["params"]["status"] == "input_required"
    })
    .await;
    let answer = json!({ "action": "accept", "content": { "confirm": true } });
    client
        .send(json!({ "jsonrpc": "2.0", "id": ask["id"], "result": answer }))
        .await;
    let result = client
        .request(2, "tasks/result", json!({ "taskId": id }))
        .await;
    assert_eq!(
        common::text_of(&result["result"]),
        "Deleted a.txt",
        "{result}"
    );
    let related = &result["result"]["_meta"]["io.modelcontextprotocol/related-task"];
    assert_eq!(related["taskId"], id.as_str());
    let announced = read_until(&mut client, |m| {
        m["method"] == "notifications/tasks/status" && m["params"]["status"] == "completed"
    })
    .await;
    assert_eq!(announced["params"]["taskId"], id.as_str());
    let listed = client.request(3, "tasks/list", json!({})).await;
    assert_eq!(
        listed["result"]["tasks"][0]["taskId"],
        id.as_str(),
        "{listed}"
    );
    let made_up = client
        .request(5, "tasks/list", json!({ "cursor": "nope" }))
        .await;
    assert_eq!(made_up["error"]["code"], -32602, "{made_up}");
    let again = client
        .request(4, "tasks/cancel", json!({ "taskId": id }))
        .await;
    assert_eq!(again["error"]["code"], -32602, "{again}");
    client.close().await;
}

#[tokio::test]
async fn a_modern_listen_that_asked_for_tasks_hears_their_status() {
    let mut client = common::StdioClient::server("conformance-fixtures");
    let notifications = json!({ EXTENSION: true, "toolsListChanged": true });
    client
        .send(
            json!({"jsonrpc": "2.0", "id": "listen-tasks", "method": "subscriptions/listen",
                     "params": {"_meta": meta(), "notifications": notifications}}),
        )
        .await;
    let ack = read_until(&mut client, |m| {
        m["method"] == "notifications/subscriptions/acknowledged"
    })
    .await;
    assert_eq!(ack["params"]["notifications"][EXTENSION], true, "{ack}");
    let call = json!({"_meta": meta(), "name": "slow_compute",
                      "arguments": {"seconds": 0.2, "label": "heard"}});
    let created = client.request(1, "tools/call", call).await;
    let id = created["result"]["taskId"].as_str().unwrap().to_owned();
    let heard = read_until(&mut client, |m| {
        m["method"] == "notifications/tasks" && m["params"]["status"] == "completed"
    })
    .await;
    assert_eq!(heard["params"]["taskId"], id.as_str(), "{heard}");
    let subscription = &heard["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"];
    assert_eq!(subscription, "listen-tasks");
    client.close().await;
}
