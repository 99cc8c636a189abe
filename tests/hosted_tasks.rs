//! Tasks through a hosted server: a `kind = "stdio"` child (tests/fixtures/hosted_task_server.py)
//! that declares its tools' `execution.taskSupport` and runs the required ones as tasks of its
//! own, in both revisions. The runtime lists what the child declared, runs every such call as
//! its own task, follows the child's task to its end (relaying a question asked inside it),
//! and cancels it at the child when the caller cancels.
mod common;

use std::path::Path;
use std::time::Duration;

use common::{modern_meta, StdioClient};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const POLL: Duration = Duration::from_millis(50);
const POLLS: usize = 400;

/// alice's stdio runtime hosting the fixture as `htask`, with its cancellations noted in
/// `marker`.
fn hosted(root: &Path, marker: &Path) -> StdioClient {
    let dir = root.join("servers/htask");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(ROOT).join("tests/fixtures/hosted_task_server.py");
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "name = \"htask\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"stdio\"\n\
             [stdio]\ncommand = \"python3\"\nargs = [\"{}\"]\nenv = {{ HOSTED_MARKER = \"{}\" }}\n",
            fixture.display(),
            marker.display()
        ),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(["stdio", "--server", "htask", "--user-id", "alice"])
        .env("GUMCP__SERVERS__DIR", root.join("servers"))
        .env("RUST_LOG", "warn");
    StdioClient::spawn(command)
}

fn params(extra: Value) -> Value {
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] =
        json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    let mut params = json!({ "_meta": meta });
    for (key, value) in extra.as_object().unwrap() {
        params[key] = value.clone();
    }
    params
}

/// Polls our `tasks/get` until the task is terminal; its last answer.
async fn settled(client: &mut StdioClient, id: &mut i64, task: &str) -> Value {
    for _ in 0..POLLS {
        *id += 1;
        let got = client
            .request(*id, "tasks/get", params(json!({ "taskId": task })))
            .await;
        let status = got["result"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["completed", "failed", "cancelled"].contains(&status.as_str()) {
            return got["result"].clone();
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("task {task} never ended");
}

#[tokio::test]
async fn hosted_tools_run_as_tasks_follow_the_childs_task_and_cancel_it_there() {
    let root = tempfile::tempdir().unwrap();
    let marker = root.path().join("cancelled");
    let mut client = hosted(root.path(), &marker);
    let mut id = 1;

    let listed = client.request(id, "tools/list", params(json!({}))).await;
    let support = |name: &str| {
        let tools = listed["result"]["tools"].as_array().unwrap();
        let tool = tools.iter().find(|tool| tool["name"] == name).unwrap();
        tool["execution"]["taskSupport"].clone()
    };
    assert_eq!(support("report"), "required", "{listed}");
    assert_eq!(support("endless"), "required", "{listed}");
    assert_eq!(support("echo"), "optional", "{listed}");

    // Required: the child makes a task of its own, which is followed to its result.
    id += 1;
    let call = json!({ "name": "report", "arguments": {} });
    let created = client.request(id, "tools/call", params(call)).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let ours = created["result"]["taskId"].as_str().unwrap().to_owned();
    assert!(
        !ours.starts_with("child-"),
        "the child's task id leaked: {created}"
    );
    let done = settled(&mut client, &mut id, &ours).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "report ready",
        "{done}"
    );

    // A question inside the child's task becomes our task's question; the answer goes back.
    id += 1;
    let call = json!({ "name": "ask", "arguments": {} });
    let created = client.request(id, "tools/call", params(call)).await;
    let ours = created["result"]["taskId"].as_str().unwrap().to_owned();
    let mut waiting = Value::Null;
    for _ in 0..POLLS {
        id += 1;
        let got = client
            .request(id, "tasks/get", params(json!({ "taskId": ours })))
            .await;
        if got["result"]["status"] == "input_required" {
            waiting = got["result"].clone();
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let question = &waiting["inputRequests"]["name"];
    assert_eq!(question["method"], "elicitation/create", "{waiting}");
    id += 1;
    let answer = json!({ "name": { "action": "accept", "content": { "name": "Ada" } } });
    let update = json!({ "taskId": ours, "inputResponses": answer });
    let acked = client.request(id, "tasks/update", params(update)).await;
    assert!(acked.get("result").is_some(), "{acked}");
    let done = settled(&mut client, &mut id, &ours).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, Ada!",
        "{done}"
    );

    // Optional: our task holds the call; the child is not asked for one and answers in place.
    id += 1;
    let call = json!({ "name": "echo", "arguments": {} });
    let answer = client.request(id, "tools/call", params(call)).await;
    let text = match answer["result"]["resultType"].as_str() {
        Some("task") => {
            let task = answer["result"]["taskId"].as_str().unwrap().to_owned();
            settled(&mut client, &mut id, &task).await["result"]["content"][0]["text"].clone()
        }
        _ => answer["result"]["content"][0]["text"].clone(),
    };
    assert_eq!(text, "echo; extension declared: false", "{answer}");

    // Cancelling our task cancels the child's.
    id += 1;
    let call = json!({ "name": "endless", "arguments": {} });
    let created = client.request(id, "tools/call", params(call)).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let ours = created["result"]["taskId"].as_str().unwrap().to_owned();
    id += 1;
    let cancel = client
        .request(id, "tasks/cancel", params(json!({ "taskId": ours })))
        .await;
    assert!(cancel.get("result").is_some(), "{cancel}");
    let mut cancelled = String::new();
    for _ in 0..POLLS {
        cancelled = std::fs::read_to_string(&marker).unwrap_or_default();
        if !cancelled.is_empty() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(cancelled.starts_with("child-endless"), "{cancelled:?}");
    let ended = settled(&mut client, &mut id, &ours).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    client.close().await;
}

#[tokio::test]
async fn a_2025_task_of_a_hosted_tool_follows_the_childs_task_and_cancels_it_there() {
    let root = tempfile::tempdir().unwrap();
    let marker = root.path().join("cancelled");
    let mut client = hosted(root.path(), &marker);
    client.initialize("2025-11-25", json!({})).await;

    // Required, and asked without `task`: refused by our runtime, as for any kind.
    let plain = json!({ "name": "report", "arguments": {} });
    let refused = client.request(2, "tools/call", plain).await;
    assert!(refused["error"].is_object(), "{refused}");

    // With `task`: ours at once; the child is asked for its own, and `tasks/result` waits for
    // the child's result.
    let call = json!({ "name": "report", "arguments": {}, "task": {} });
    let created = client.request(3, "tools/call", call).await;
    let ours = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!ours.starts_with("child-"), "{created}");
    let result = client
        .request(4, "tasks/result", json!({ "taskId": ours }))
        .await;
    assert_eq!(
        result["result"]["content"][0]["text"], "report ready (2025-11-25)",
        "{result}"
    );

    // Cancelling ours cancels the child's.
    let call = json!({ "name": "endless", "arguments": {}, "task": {} });
    let created = client.request(5, "tools/call", call).await;
    let ours = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = client
        .request(6, "tasks/cancel", json!({ "taskId": ours }))
        .await;
    assert_eq!(cancel["result"]["status"], "cancelled", "{cancel}");
    let mut cancelled = String::new();
    for _ in 0..POLLS {
        cancelled = std::fs::read_to_string(&marker).unwrap_or_default();
        if !cancelled.is_empty() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(cancelled.starts_with("child-endless"), "{cancelled:?}");
    client.close().await;
}
