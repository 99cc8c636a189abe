//! Servers: what an MCP server is to this runtime, how servers are found (built in, or in the
//! servers folder), and the compiled-in native implementations.
//!
//! A server implementation sees only this module's API — [`McpServer`] and the
//! [`RequestContext`] of each call — never actors, transports or protocol eras. The same code
//! therefore serves stdio and HTTP, legacy sessions and 2026-07-28 stateless requests.

pub mod built_in;
pub mod context;
pub mod hosted;
pub mod http;
pub mod kit;
pub mod manifest;
pub mod native;
pub mod registry;
pub mod schema;
pub mod shape;
pub mod store;

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};

pub use context::{
    CallError, CredentialSource, EventRelay, InputRequired, RequestContext, ServerEvent,
    ServerEvents, WeakServerEvents,
};
pub use registry::{NativeFactory, ServerEntry, ServerInit, ServerRegistry};
pub use store::UserStore;

use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;

/// What the server says about itself at `initialize` and `server/discover`.
#[derive(Debug, Clone)]
pub struct ServerDescription {
    pub name: String,
    pub title: Option<String>,
    pub version: String,
    pub instructions: Option<String>,
    pub features: Features,
}

/// What a server offers beyond tools, used to build its capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub tools_list_changed: bool,
    pub resources: bool,
    pub resources_subscribe: bool,
    pub resources_list_changed: bool,
    pub prompts: bool,
    pub prompts_list_changed: bool,
    pub completions: bool,
    pub logging: bool,
}

/// Whether a tool may run as a task (`execution.taskSupport`): a tool says so itself, and
/// `forbidden` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    #[default]
    Forbidden,
    Optional,
    Required,
}

impl TaskSupport {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSupport::Forbidden => "forbidden",
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}

/// A JSON object literal (a schema, usually) as rmcp's shared object type; anything but an
/// object becomes an empty object.
pub fn json_object(value: serde_json::Value) -> std::sync::Arc<JsonObject> {
    match value {
        serde_json::Value::Object(object) => std::sync::Arc::new(object),
        _ => std::sync::Arc::default(),
    }
}

/// A future a server returns; `Send` so the runtime may move work between threads later.
pub type ServerFuture<'a, T> = BoxFuture<'a, T>;

/// One user's instance of an MCP server.
///
/// Lists are answered synchronously from the instance's state; calls are futures that run
/// concurrently with each other. Everything but tools has an empty default, so a server only
/// writes what it offers.
pub trait McpServer: Send + Sync + 'static {
    fn features(&self) -> Features {
        Features::default()
    }

    /// Makes the instance ready to be listed and called, with the credentials of whoever is
    /// asking: a hosted server starts (or restarts) its child here and reads its lists. Code
    /// compiled in is always ready. A missing account is [`CallError::Account`], so the
    /// request can answer it with the connect link.
    fn prepare<'a>(
        &'a self,
        _credentials: &'a std::sync::Arc<dyn CredentialSource>,
    ) -> ServerFuture<'a, Result<(), CallError>> {
        Box::pin(async { Ok(()) })
    }

    /// The instance is retired (idle): let go of what it holds outside the process, such as
    /// a hosted server's child. Calls still running may finish.
    fn shutdown(&self) {}

    /// A session (or a 2026-07-28 listen; `holder` names it) subscribed to `uri`, or let go
    /// of it. The runtime keeps each session's subscriptions itself; a server whose updates
    /// come from elsewhere (a hosted server's child) passes them on here.
    fn subscribe<'a>(
        &'a self,
        _holder: u64,
        _uri: &'a str,
        _subscribed: bool,
    ) -> ServerFuture<'a, Result<(), McpError>> {
        Box::pin(async { Ok(()) })
    }

    /// A session asked for log messages from `level` up (the runtime filters each session's
    /// messages itself); a hosted server passes on the most verbose level any holder asked for.
    fn set_log_level(
        &self,
        _holder: u64,
        _level: LogLevel,
    ) -> ServerFuture<'_, Result<(), McpError>> {
        Box::pin(async { Ok(()) })
    }

    /// `holder` is gone: what it subscribed to and the level it asked for are let go of.
    fn release(&self, _holder: u64) {}

    /// Whether sessions' subscriptions are held here: the instance is then not retired for
    /// idleness, which would end them.
    fn holds_subscriptions(&self) -> bool {
        false
    }

    /// Tools in a stable order (clients cache by it).
    fn tools(&self) -> Vec<Tool>;

    /// Whether `tool` may run as a task the client polls (`execution.taskSupport`): a call
    /// that can take long enough to outlive a connection says so here.
    fn task_support(&self, _tool: &str) -> TaskSupport {
        TaskSupport::Forbidden
    }

    /// Runs a tool whose arguments already passed its input schema. A failure the model should
    /// see is `Ok` with `isError: true`; `Err` is for protocol errors and input requests.
    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>>;

    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }

    /// The resources to list for this request. Servers whose resources live upstream (an
    /// account's channels, labels, repositories) fetch them here with the user's credentials;
    /// the default lists [`McpServer::resources`]. A failure is the JSON-RPC error to answer.
    fn list_resources<'a>(
        &'a self,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        let resources = self.resources();
        Box::pin(async move { Ok(resources) })
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        Vec::new()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        Box::pin(async move { Err(CallError::ResourceNotFound(uri.to_owned())) })
    }

    fn prompts(&self) -> Vec<Prompt> {
        Vec::new()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        _arguments: JsonObject,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        Box::pin(
            async move { Err(McpError::invalid_params(format!("Unknown prompt: {name}")).into()) },
        )
    }

    fn complete<'a>(
        &'a self,
        _params: CompleteRequestParams,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CompleteResult, McpError>> {
        Box::pin(async { Ok(CompleteResult::default()) })
    }
}
