//! The actor runtime through its public API: per-user isolation, lazy start, idle stop without
//! data loss.

use gumcp_actors::auth::principal::Principal;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use gumcp_actors::actors::runtime::Runtime;
use gumcp_actors::config::Settings;
use gumcp_actors::protocol::error::McpError;
use gumcp_actors::protocol::jsonrpc::Outgoing;
use gumcp_actors::protocol::version::ProtocolVersion;
use gumcp_actors::servers::context::{ClientLink, Era};
use gumcp_actors::servers::{RequestContext, ServerRegistry};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

struct NoClient;

impl ClientLink for NoClient {
    fn notify(&self, _: Outgoing) {}

    fn request(&self, _: &'static str, _: Value) -> BoxFuture<'static, Result<Value, McpError>> {
        Box::pin(async { Err(McpError::internal("no client in this test")) })
    }
}

fn context(runtime: &Runtime, user: &str) -> RequestContext {
    RequestContext {
        user_id: Arc::from(user),
        protocol: ProtocolVersion::LATEST_LEGACY,
        client_capabilities: Arc::new(JsonObject::new()),
        era: Era::Legacy,
        progress_token: None,
        log_level: None,
        cancellation: CancellationToken::new(),
        link: Arc::new(NoClient),
        credentials: runtime
            .auth
            .source(Arc::from("simple-tools-server"), Arc::from(user), None),
    }
}

fn runtime(idle_ttl_secs: u64) -> Runtime {
    let mut settings = Settings::load(None).unwrap();
    settings.runtime.server_idle_ttl_secs = idle_ttl_secs;
    let registry = ServerRegistry::discover(settings.servers_dir().as_deref());
    Runtime::start(Arc::new(settings), Arc::new(registry), Vec::new()).expect("the runtime starts")
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_value(result).unwrap()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn call(runtime: &Runtime, user: &str, tool: &str, arguments: Value) -> CallToolResult {
    let mut server = runtime
        .server("simple-tools-server", Principal::user(user))
        .await
        .unwrap();
    server
        .call_tool(tool.to_owned(), args(arguments), context(runtime, user))
        .await
        .unwrap()
}

#[actix_rt::test]
async fn one_user_never_sees_anothers_data() {
    let runtime = runtime(900);
    call(
        &runtime,
        "alice",
        "store-data",
        json!({"key": "secret", "value": "a"}),
    )
    .await;
    call(
        &runtime,
        "bob",
        "store-data",
        json!({"key": "secret", "value": "b"}),
    )
    .await;
    let alice = call(&runtime, "alice", "retrieve-data", json!({"key": "secret"})).await;
    let bob = call(&runtime, "bob", "retrieve-data", json!({"key": "secret"})).await;
    assert_eq!(text(&alice), "Value for 'secret': a");
    assert_eq!(text(&bob), "Value for 'secret': b");
    let carol = call(&runtime, "carol", "list-data", json!({})).await;
    assert_eq!(text(&carol), "No data stored");
    assert_eq!(runtime.live_servers().await, 3);
}

#[actix_rt::test]
async fn an_idle_server_actor_stops_and_the_users_data_survives() {
    let runtime = runtime(1);
    call(
        &runtime,
        "dana",
        "store-data",
        json!({"key": "k", "value": "kept"}),
    )
    .await;
    assert_eq!(runtime.live_servers().await, 1);
    let mut waited = Duration::ZERO;
    while runtime.live_servers().await > 0 {
        assert!(
            waited < Duration::from_secs(15),
            "the idle actor never stopped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += Duration::from_millis(200);
    }
    let again = call(&runtime, "dana", "retrieve-data", json!({"key": "k"})).await;
    assert!(text(&again).ends_with("kept"), "{}", text(&again));
}

#[actix_rt::test]
async fn an_unknown_server_is_a_clear_error() {
    let runtime = runtime(900);
    let err = runtime
        .server("nope", Principal::user("local"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, -32602);
    assert!(
        err.message.contains("simple-tools-server"),
        "{}",
        err.message
    );
}
