//! `[shape]` through the real binary, for a native server and a hosted `stdio` one: only the
//! allowed, not denied tools are listed, under their prefixed or new names and descriptions,
//! and a hidden tool is unknown when called — under its own name as under any other.

mod common;

use std::path::Path;

use common::StdioClient;
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `manifest` as server `name` of a servers folder in `root`, served over stdio to alice.
fn serve_one(root: &Path, name: &str, manifest: &str) -> StdioClient {
    let dir = root.join("servers").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.toml"), manifest).unwrap();
    let servers = root.join("servers");
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(["stdio", "--server", name, "--user-id", "alice"])
        .env("GUMCP__SERVERS__DIR", servers)
        .env("RUST_LOG", "warn");
    StdioClient::spawn(command)
}

async fn listed(client: &mut StdioClient) -> Vec<(String, String)> {
    let reply = client.request(1, "tools/list", json!({})).await;
    reply["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|tool| {
            let name = tool["name"].as_str().unwrap_or_default().to_owned();
            let description = tool["description"].as_str().unwrap_or_default().to_owned();
            (name, description)
        })
        .collect()
}

async fn call(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    let params = json!({ "name": tool, "arguments": arguments });
    client.request(id, "tools/call", params).await
}

fn assert_unknown(reply: &Value, tool: &str) {
    assert_eq!(reply["error"]["code"], -32602, "{tool}: {reply}");
    assert_eq!(
        reply["error"]["message"],
        format!("Unknown tool: {tool}"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_native_server_exposes_what_its_shape_says() {
    let root = tempfile::tempdir().unwrap();
    let manifest =
        std::fs::read_to_string(Path::new(ROOT).join("servers/simple-tools-server/server.toml"))
            .unwrap();
    let shaped = format!(
        "{manifest}\n[shape]\ndeny = [\"list-*\"]\nprefix = \"kv_\"\n\
         [shape.rename]\n\"store-data\" = \"put\"\n\
         [shape.descriptions]\n\"retrieve-data\" = \"Read a value back\"\n"
    );
    let mut client = serve_one(root.path(), "simple-tools-server", &shaped);
    client.initialize("2025-06-18", json!({})).await;
    let tools = listed(&mut client).await;
    let names: Vec<&str> = tools.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["put", "kv_retrieve-data"]);
    assert_eq!(tools[1].1, "Read a value back");

    let stored = call(&mut client, 2, "put", json!({"key": "k", "value": "v"})).await;
    assert_eq!(
        common::text_of(&stored["result"]),
        "Stored 'k' with value: v"
    );
    let read = call(&mut client, 3, "kv_retrieve-data", json!({"key": "k"})).await;
    assert_eq!(common::text_of(&read["result"]), "Value for 'k': v");
    for (id, hidden) in [
        (4, "list-data"),
        (5, "kv_list-data"),
        (6, "store-data"),
        (7, "kv_store-data"),
        (8, "retrieve-data"),
    ] {
        let reply = call(&mut client, id, hidden, json!({"key": "k", "value": "v"})).await;
        assert_unknown(&reply, hidden);
    }
    client.close().await;
}

#[tokio::test]
async fn a_hosted_server_exposes_what_its_shape_says() {
    let status = std::process::Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/python-env.sh"))
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = format!(
        "name = \"echo\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"stdio\"\n\
         [stdio]\ncommand = \"{python}\"\nargs = [\"{fixture}\"]\n\
         [shape]\nallow = [\"who*\", \"slow\"]\nprefix = \"py_\"\n",
        python = Path::new(ROOT).join(".tools/venv/bin/python").display(),
        fixture = Path::new(ROOT)
            .join("tests/fixtures/hosted_echo_server.py")
            .display(),
    );
    let root = tempfile::tempdir().unwrap();
    let mut client = serve_one(root.path(), "echo", &manifest);
    client.initialize("2025-06-18", json!({})).await;
    let tools = listed(&mut client).await;
    let names: Vec<&str> = tools.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["py_whoami", "py_slow"]);
    let said = call(&mut client, 2, "py_whoami", json!({})).await;
    assert!(common::text_of(&said["result"]).contains("pid"), "{said}");
    for (id, hidden) in [(3, "py_flood_lines"), (4, "flood_lines"), (5, "whoami")] {
        let reply = call(&mut client, id, hidden, json!({})).await;
        assert_unknown(&reply, hidden);
    }
    client.close().await;
}
