//! The `http` server kind: tools declared in `server.toml` as calls to an upstream HTTP API,
//! all run by this one engine. It injects the user's credentials the way the auth kind says,
//! maps upstream failures to tool errors a model can act on (401 → one forced refresh and one
//! retry, then "reconnect"; 403/404 → the upstream's reason; 429 → waits out a short
//! Retry-After once, else says when; 5xx, timeouts and malformed answers → a clear error), and
//! returns the projected answer as text and as structured content.
//!
//! - [`spec`] — the declarations and their checks.
//! - [`call`] — building and sending one upstream request.

pub mod call;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use rmcp::model::{
    CallToolResult, GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role, Tool,
};
use serde_json::Value;

use super::kit::{success, tool_error};
use super::manifest::{AuthKind, Manifest};
use super::{json_object, CallError, Features, McpServer, RequestContext, ServerFuture};
use crate::auth::credentials::Credentials;
use crate::protocol::error::McpError;
use call::{Failure, Page, Request};
use spec::{render_prompt, HttpTool, Pagination};

/// What every `http` server shares: the pooled client, timeouts, and base-URL overrides.
#[derive(Clone)]
pub struct Upstream {
    pub client: reqwest::Client,
    /// Per server name: the base URL to use instead of the manifest's (tests, proxies).
    pub base_urls: Arc<BTreeMap<String, String>>,
    /// The longest `Retry-After` the engine waits out before retrying once.
    pub max_retry_wait: Duration,
    pub timeout: Duration,
    /// `servers.max_response_bytes`: the largest answer body read, so no upstream can make a
    /// user's call hold memory without end.
    pub max_response_bytes: usize,
    /// The server whose requests these are (empty for the runtime's own copy): the label of
    /// their spans and `gumcp_upstream_request_duration_seconds`.
    pub server: Arc<str>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// How many `each` follow-up requests run at once.
const EACH_CONCURRENCY: usize = 8;

/// One user's instance of an `http` server.
pub struct HttpServer {
    manifest: Arc<Manifest>,
    base_url: String,
    tools: Vec<Tool>,
    upstream: Upstream,
}

impl HttpServer {
    pub fn new(manifest: Arc<Manifest>, upstream: Upstream) -> HttpServer {
        let base_url = upstream
            .base_urls
            .get(&manifest.name)
            .cloned()
            .or_else(|| manifest.base_url.clone())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let tools = manifest
            .tools
            .iter()
            .map(|tool| {
                Tool::new(
                    tool.name.clone(),
                    tool.description.clone(),
                    json_object(tool.input_schema.clone()),
                )
            })
            .collect();
        HttpServer {
            manifest,
            base_url,
            tools,
            upstream,
        }
    }

    /// Whether `name` is one of the declared tools (a native server hands those over).
    pub fn declares(&self, name: &str) -> bool {
        self.manifest.tools.iter().any(|tool| tool.name == name)
    }

    fn secret_of(&self, credentials: &Credentials) -> Option<String> {
        secret_of(&self.manifest, credentials)
    }

    async fn run(
        &self,
        tool: &HttpTool,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let mut arguments = arguments;
        for (name, value) in &tool.defaults {
            arguments
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        let mut secret = None;
        if self.manifest.auth.kind != AuthKind::None {
            match ctx.credentials.get().await {
                Ok(credentials) => secret = self.secret_of(&credentials),
                Err(err) => return Ok(tool_error(err.to_string())),
            }
        }
        let request = Request {
            base_url: &self.base_url,
            server_headers: &self.manifest.headers,
            tool,
            arguments: &arguments,
            auth: &self.manifest.auth,
            body_errors: &self.manifest.body_errors,
        };
        let first = match call::send(&self.upstream, &request, Page::First, secret.as_deref()).await
        {
            Err(Failure::Unauthorized) if secret.is_some() => {
                let rejected = secret.clone().unwrap_or_default();
                secret = match ctx.credentials.after_rejection(&rejected).await {
                    Ok(credentials) => self.secret_of(&credentials),
                    Err(err) => return Ok(tool_error(err.to_string())),
                };
                call::send(&self.upstream, &request, Page::First, secret.as_deref()).await
            }
            other => other,
        };
        let first = match first {
            Ok(answer) => answer,
            Err(failure) => return Ok(tool_error(self.explain(failure, &ctx.user_id))),
        };
        let answer = match &tool.pagination {
            None => first.body,
            Some(pagination) => {
                match self
                    .more_pages(&request, pagination, first, secret.as_deref())
                    .await
                {
                    Ok(items) => items,
                    Err(failure) => return Ok(tool_error(self.explain(failure, &ctx.user_id))),
                }
            }
        };
        let answer = match &tool.each {
            None => answer,
            Some(each) => {
                let limit = each
                    .limit_arg
                    .as_ref()
                    .and_then(|arg| arguments.get(arg))
                    .and_then(Value::as_u64)
                    .map_or(each.default_limit, |n| n as usize)
                    .min(each.max_limit);
                let ids: Vec<Value> = match self.picked(answer, tool) {
                    Value::Array(ids) => ids.into_iter().take(limit).collect(),
                    _ => Vec::new(),
                };
                let items = futures::stream::iter(ids.into_iter().map(|id| {
                    let request = &request;
                    let secret = secret.as_deref();
                    async move {
                        call::send(&self.upstream, request, Page::Item(&id), secret)
                            .await
                            .map(|answer| answer.body)
                    }
                }))
                .buffered(EACH_CONCURRENCY)
                .try_collect::<Vec<Value>>()
                .await;
                match items {
                    Ok(items) => Value::Array(items.into_iter().filter(|i| !i.is_null()).collect()),
                    Err(failure) => return Ok(tool_error(self.explain(failure, &ctx.user_id))),
                }
            }
        };
        let picked = if tool.each.is_some() {
            answer
        } else {
            self.picked(answer, tool)
        };
        Ok(success(project_fields(picked, &tool.result.fields)))
    }

    /// `result.pick` of an answer — unless pagination already picked and joined the pages.
    fn picked(&self, answer: Value, tool: &HttpTool) -> Value {
        if tool.pagination.is_some() {
            answer
        } else {
            project_pick(answer, tool)
        }
    }

    /// Follows further pages and returns the picked items of all pages, joined.
    async fn more_pages(
        &self,
        request: &Request<'_>,
        pagination: &Pagination,
        first: call::Answer,
        secret: Option<&str>,
    ) -> Result<Value, Failure> {
        let bounds = pagination.bounds();
        let max_pages = bounds
            .max_pages_arg
            .and_then(|arg| request.arguments.get(arg))
            .and_then(Value::as_u64)
            .map_or(bounds.max_pages, |n| n as usize)
            .max(1);
        let limit = bounds.limit(request.arguments);
        let mut items = Vec::new();
        let mut page = first;
        for fetched in 1.. {
            let next = match pagination {
                Pagination::Cursor { next, .. } => page
                    .body
                    .pointer(next)
                    .and_then(Value::as_str)
                    .filter(|cursor| !cursor.is_empty())
                    .map(str::to_owned),
                Pagination::Link { .. } => page.next_link.clone(),
            };
            match project_pick(page.body, request.tool) {
                Value::Array(more) => items.extend(more),
                Value::Null => {}
                other => items.push(other),
            }
            if let Some(limit) = limit.filter(|limit| items.len() >= *limit) {
                items.truncate(limit);
                break;
            }
            let Some(next) = next.filter(|_| fetched < max_pages) else {
                break;
            };
            let target = match pagination {
                Pagination::Cursor { param, .. } => Page::Cursor(param, &next),
                Pagination::Link { .. } => Page::Url(&next),
            };
            page = call::send(&self.upstream, request, target, secret).await?;
        }
        Ok(Value::Array(items))
    }

    fn explain(&self, failure: Failure, user: &str) -> String {
        explain(failure, &self.manifest, user, self.upstream.timeout)
    }
}

/// A failure as the sentence the model (and the user) sees.
fn explain(failure: Failure, manifest: &Manifest, user: &str, timeout: Duration) -> String {
    let service = manifest.auth_service();
    let server = &manifest.name;
    match failure {
        Failure::Unauthorized => format!(
            "{service} rejected the credentials of user {user} even after a refresh; \
                 reconnect with `gumcp-actors auth --server {server} --user-id {user}`"
        ),
        Failure::Status { status, message } => {
            format!("{service} answered HTTP {status}: {message}")
        }
        Failure::RateLimited { retry_after } => match retry_after {
            Some(secs) => {
                format!("{service} is rate limiting these calls; retry after {secs} s")
            }
            None => format!("{service} is rate limiting these calls; retry later"),
        },
        Failure::Unavailable { status } => {
            format!("{service} is having trouble (HTTP {status}); try again later")
        }
        Failure::TimedOut => format!(
            "{service} did not answer within {} s; try again later",
            timeout.as_secs()
        ),
        Failure::Unreachable(reason) => format!("{service} could not be reached: {reason}"),
        Failure::NotJson => format!("{service} answered with something that is not JSON"),
        Failure::TooLarge { limit } => format!(
            "{service}'s answer is larger than servers.max_response_bytes ({limit} bytes); \
             ask for less (a smaller limit or page, a narrower query)"
        ),
        Failure::BadArgument(why) => format!("invalid argument: {why}"),
    }
}

impl McpServer for HttpServer {
    fn features(&self) -> Features {
        Features {
            prompts: !self.manifest.prompts.is_empty(),
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn prompts(&self) -> Vec<Prompt> {
        self.manifest
            .prompts
            .iter()
            .map(|prompt| {
                let arguments = prompt
                    .arguments
                    .iter()
                    .map(|argument| {
                        let declared =
                            PromptArgument::new(&argument.name).with_required(argument.required);
                        match &argument.description {
                            Some(description) => declared.with_description(description),
                            None => declared,
                        }
                    })
                    .collect();
                Prompt::new(&prompt.name, Some(&prompt.description), Some(arguments))
            })
            .collect()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        Box::pin(async move {
            let Some(prompt) = self.manifest.prompts.iter().find(|p| p.name == name) else {
                return Err(McpError::invalid_params(format!("Unknown prompt: {name}")).into());
            };
            let values: BTreeMap<String, String> = arguments
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect();
            for argument in prompt.arguments.iter().filter(|a| a.required) {
                if values.get(&argument.name).is_none_or(|v| v.is_empty()) {
                    return Err(McpError::invalid_params(format!(
                        "prompt {name} needs the argument {:?}",
                        argument.name
                    ))
                    .into());
                }
            }
            let messages = prompt
                .messages
                .iter()
                .map(|message| {
                    let role = if message.role == "assistant" {
                        Role::Assistant
                    } else {
                        Role::User
                    };
                    PromptMessage::new_text(role, render_prompt(&message.text, &values))
                })
                .collect();
            Ok(GetPromptResult::new(messages))
        })
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            let Some(tool) = self.manifest.tools.iter().find(|tool| tool.name == name) else {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            };
            self.run(tool, arguments, ctx).await
        })
    }
}

/// The secret to send: the access token (OAuth) or the API key.
pub fn secret_of(manifest: &Manifest, credentials: &Credentials) -> Option<String> {
    match manifest.auth.kind {
        AuthKind::ApiKey => credentials
            .api_key
            .clone()
            .or_else(|| credentials.access_token.clone()),
        // A personal access token may be stored as either (guMCP's GitHub reads both).
        _ => credentials
            .access_token
            .clone()
            .or_else(|| credentials.api_key.clone()),
    }
}

/// An upstream API as native server code calls it. The runtime applies the user's credentials
/// (the tool never handles the token), refreshes once and retries on a 401, and words every
/// failure the way declared tools do — so a native server differs from an `http` one only where
/// its logic needs code.
pub struct Api<'a> {
    upstream: &'a Upstream,
    manifest: &'a Manifest,
    ctx: &'a RequestContext,
    base_url: String,
}

impl Upstream {
    /// The upstream the settings describe; `metrics` counts its requests.
    pub fn from_settings(
        settings: &crate::config::Settings,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Upstream, crate::upstream::ClientError> {
        let timeout = Duration::from_secs(settings.auth.upstream_timeout_secs);
        Ok(Upstream {
            client: crate::upstream::client(timeout)?,
            base_urls: Arc::new(settings.servers.base_urls.clone()),
            max_retry_wait: Duration::from_secs(settings.servers.max_retry_wait_secs),
            timeout,
            max_response_bytes: settings.servers.max_response_bytes,
            server: Arc::from(""),
            metrics,
        })
    }
}

impl Upstream {
    /// The API of `manifest`'s server for the user of `ctx`, at `default_base_url` unless the
    /// config overrides it.
    pub fn api<'a>(
        &'a self,
        manifest: &'a Manifest,
        default_base_url: &str,
        ctx: &'a RequestContext,
    ) -> Api<'a> {
        let base_url = self
            .base_urls
            .get(&manifest.name)
            .map_or(default_base_url, String::as_str)
            .trim_end_matches('/')
            .to_owned();
        Api {
            upstream: self,
            manifest,
            ctx,
            base_url,
        }
    }
}

impl Upstream {
    /// The API at the base URL `manifest` declares (unless the config overrides it).
    pub fn manifest_api<'a>(&'a self, manifest: &'a Manifest, ctx: &'a RequestContext) -> Api<'a> {
        self.api(
            manifest,
            manifest.base_url.as_deref().unwrap_or_default(),
            ctx,
        )
    }
}

impl Api<'_> {
    /// `method` on `path` (under the base URL) with `query` and an optional JSON `body`; the
    /// JSON answer, or the sentence a tool error should say.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let user = &self.ctx.user_id;
        let mut secret = match self.manifest.auth.kind {
            AuthKind::None => None,
            _ => match self.ctx.credentials.get().await {
                Ok(credentials) => secret_of(self.manifest, &credentials),
                Err(err) => return Err(err.to_string()),
            },
        };
        let url = format!("{}{path}", self.base_url);
        let make = |secret: Option<&str>| {
            let mut query: Vec<(String, String)> = query
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect();
            let mut builder = self
                .upstream
                .client
                .request(method.clone(), &url)
                .timeout(self.upstream.timeout);
            if !call::names_accept(self.manifest.headers.keys()) {
                builder = builder.header(reqwest::header::ACCEPT, "application/json");
            }
            for (name, value) in &self.manifest.headers {
                builder = builder.header(name, value);
            }
            if let Some(secret) = secret {
                builder = call::authorize(builder, &mut query, &self.manifest.auth, secret);
            }
            if !query.is_empty() {
                builder = builder.query(&query);
            }
            if let Some(body) = body {
                builder = builder.json(body);
            }
            Ok(builder)
        };
        let mut outcome = call::exchange(self.upstream, || make(secret.as_deref()), |_| None).await;
        if let (Err(Failure::Unauthorized), Some(rejected)) = (&outcome, secret.clone()) {
            secret = match self.ctx.credentials.after_rejection(&rejected).await {
                Ok(credentials) => secret_of(self.manifest, &credentials),
                Err(err) => return Err(err.to_string()),
            };
            outcome = call::exchange(self.upstream, || make(secret.as_deref()), |_| None).await;
        }
        outcome
            .map(|answer| answer.body)
            .map_err(|failure| explain(failure, self.manifest, user, self.upstream.timeout))
    }
}

/// The `result.pick` part of an answer (all of it when unset or absent).
fn project_pick(answer: Value, tool: &HttpTool) -> Value {
    match tool.result.pick.as_deref() {
        Some(pointer) if !pointer.is_empty() => {
            answer.pointer(pointer).cloned().unwrap_or(Value::Null)
        }
        _ => answer,
    }
}

/// Keeps only `fields` of an object, or of each object of an array.
fn project_fields(value: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return value;
    }
    let keep = |object: serde_json::Map<String, Value>| {
        Value::Object(
            object
                .into_iter()
                .filter(|(key, _)| fields.iter().any(|field| field == key))
                .collect(),
        )
    };
    match value {
        Value::Object(object) => keep(object),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Object(object) => keep(object),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}
