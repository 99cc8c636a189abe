//! The `http` server kind: tools declared in `server.toml` as calls to an upstream HTTP API,
//! all run by this one engine. It injects the user's credentials the way the auth kind says,
//! maps upstream failures to tool errors a model can act on (401 → one forced refresh and one
//! retry, then "reconnect"; 403/404 → the upstream's reason; 429 → waits out a short
//! Retry-After once, else says when; 5xx, timeouts and malformed answers → a clear error), and
//! returns the projected answer as text and as structured content.
//!
//! - [`spec`] — the declarations and their checks.
//! - [`call`] — building and sending one upstream request.
//! - [`poll`] — following a job the request started, with progress and cancellation.

pub mod call;
pub mod poll;
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
use super::manifest::{AuthKind, Inject, Manifest};
use super::{json_object, CallError, Features, McpServer, RequestContext, ServerFuture};
use crate::auth::credentials::Credentials;
use crate::auth::fields;
use crate::auth::key_fields::{self, KeyField};
use crate::protocol::error::McpError;
use call::{BaseUrl, Failure, Page, Request};
use spec::{fill_text, render_prompt, HttpTool, Pagination};

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
    /// `servers.fetch_private_urls`: whether [`Upstream::fetch_file`] may reach loopback,
    /// private and link-local addresses.
    pub fetch_private_urls: bool,
    /// `servers.local_files_dir`: the only folder whose files tools may read or write.
    pub local_files_dir: Option<Arc<std::path::Path>>,
}

/// How many `each` follow-up requests run at once.
const EACH_CONCURRENCY: usize = 8;

/// One user's instance of an `http` server.
pub struct HttpServer {
    manifest: Arc<Manifest>,
    base_url: BaseUrl,
    /// The base URL as configured when it names `[[auth.fields]]` (`https://{subdomain}.…`):
    /// filled from the caller's credential on each call.
    base_template: Option<String>,
    tools: Vec<Tool>,
    upstream: Upstream,
}

impl HttpServer {
    pub fn new(manifest: Arc<Manifest>, upstream: Upstream) -> HttpServer {
        let configured = upstream
            .base_urls
            .get(&manifest.name)
            .or(manifest.base_url.as_ref())
            .map_or("", String::as_str);
        let base_template =
            fields::names_a_field(configured, &manifest.auth.fields).then(|| configured.to_owned());
        let base_url = BaseUrl::new(configured);
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
            base_template,
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

    /// Runs the declared tool `name` with `prefix` between the base URL and the tool's path:
    /// for an API whose root depends on the user (Jira's `/ex/jira/{cloud id}/rest/api/3`,
    /// found by the server's code), so its plain calls can still be declared.
    pub async fn call_tool_under(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: &RequestContext,
        prefix: &str,
    ) -> Result<CallToolResult, CallError> {
        let Some(tool) = self.manifest.tools.iter().find(|tool| tool.name == name) else {
            return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
        };
        self.run(tool, arguments, ctx, prefix).await
    }

    /// The base URL of this call when it is not the instance's own: the caller's fields
    /// filled in (each checked again), and `prefix` after it.
    fn base_of(
        &self,
        credentials: Option<&Credentials>,
        prefix: &str,
    ) -> Result<Option<BaseUrl>, fields::FieldError> {
        match (&self.base_template, credentials) {
            (Some(template), Some(credentials)) => {
                let filled =
                    fields::fill(template, &self.manifest.auth.fields, &credentials.extra)?;
                Ok(Some(BaseUrl::new(&format!(
                    "{}{prefix}",
                    filled.trim_end_matches('/')
                ))))
            }
            _ if prefix.is_empty() => Ok(None),
            _ => Ok(Some(self.base_url.under(prefix))),
        }
    }

    async fn run(
        &self,
        tool: &HttpTool,
        arguments: JsonObject,
        ctx: &RequestContext,
        prefix: &str,
    ) -> Result<CallToolResult, CallError> {
        let mut arguments = arguments;
        for (name, value) in &tool.defaults {
            arguments
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        let mut secret = None;
        let mut credentials = None;
        if self.manifest.auth.kind != AuthKind::None {
            match ctx.credentials.get().await {
                Ok(found) => {
                    secret = self.secret_of(&found);
                    credentials = Some(found);
                }
                Err(err) => return Ok(tool_error(err.to_string())),
            }
        }
        let own_base = match self.base_of(credentials.as_ref(), prefix) {
            Ok(base) => base,
            Err(err) => return Ok(tool_error(err.to_string())),
        };
        let request = Request {
            base_url: own_base.as_ref().unwrap_or(&self.base_url),
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
        if let Some(poll) = &tool.poll {
            return Ok(self
                .follow_job(&request, poll, first.body, secret.as_deref(), ctx)
                .await);
        }
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
        if let (Value::Null, Some(empty)) = (&answer, &tool.result.empty) {
            return Ok(success(Value::String(fill_text(empty, &arguments))));
        }
        let picked = if tool.each.is_some() {
            answer
        } else {
            self.picked(answer, tool)
        };
        Ok(success(project_fields(picked, &tool.result.fields)))
    }

    /// Follows the job `start` announced (see [`poll`]) and answers with its end: the start
    /// answer with the last status over it, projected as declared; a job still running at the
    /// end of the wait as it stands, and a sentence saying so.
    async fn follow_job(
        &self,
        request: &Request<'_>,
        poll: &spec::Poll,
        start: Value,
        secret: Option<&str>,
        ctx: &RequestContext,
    ) -> CallToolResult {
        let service = self
            .manifest
            .title
            .as_deref()
            .unwrap_or(&self.manifest.name);
        let id = match start.pointer(&poll.id) {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => return tool_error(format!("{service} started no job (its answer has no id)")),
        };
        let stop = poll.cancel.as_ref().and_then(|cancel| {
            call::build(&self.upstream, request, Page::Job(cancel, &id), secret).ok()
        });
        let mut cancel = poll::CancelOnDrop::new(self.upstream.clone(), stop, &id);
        let status = spec::JobRequest {
            method: spec::Method::Get,
            path: poll.path.clone(),
        };
        let page = Page::Job(&status, &id);
        let upstream = &self.upstream;
        let status_of = move || async move {
            call::send(upstream, request, page, secret)
                .await
                .map(|a| a.body)
        };
        let followed = poll::follow(poll, ctx, &start, status_of).await;
        if !matches!(followed, Err(poll::Stop::Cancelled)) {
            cancel.disarm();
        }
        match followed {
            Ok(poll::Followed::Done(status)) => {
                let answer = project_pick(poll::merged(start, status), request.tool);
                success(project_fields(answer, &request.tool.result.fields))
            }
            Ok(poll::Followed::Running(status)) => {
                let mut answer = success(poll::merged(start, status));
                answer.content.push(rmcp::model::ContentBlock::text(format!(
                    "The job {id} is still running after {} s; it goes on at {service}: \
                     ask for its status later with its id.",
                    poll.max_wait_secs
                )));
                answer
            }
            Err(poll::Stop::Failed { status, reason }) => tool_error(match reason {
                Some(reason) => format!("{service}'s job {id} ended {status}: {reason}"),
                None => format!("{service}'s job {id} ended {status}"),
            }),
            Err(poll::Stop::Cancelled) if poll.cancel.is_some() => tool_error(format!(
                "the call was cancelled; {service}'s job {id} is being stopped"
            )),
            Err(poll::Stop::Cancelled) => tool_error(format!(
                "the call was cancelled; {service}'s job {id} goes on"
            )),
            Err(poll::Stop::Upstream(failure)) => tool_error(format!(
                "{} (while following the job {id})",
                self.explain(failure, &ctx.user_id)
            )),
        }
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
            self.run(tool, arguments, ctx, "").await
        })
    }
}

/// The secret to send: the access token (OAuth) or the API key.
pub fn secret_of(manifest: &Manifest, credentials: &Credentials) -> Option<String> {
    if let Some(Inject::BasicFields { user, password }) = &manifest.auth.inject {
        let field = |name: &str| {
            let field = manifest.auth.key_fields.iter().find(|f| f.name == name)?;
            key_fields::value_of(credentials, field)
        };
        return Some(format!("{}:{}", field(user)?, field(password)?));
    }
    match manifest.auth.kind {
        AuthKind::ApiKey => credentials
            .api_key
            .clone()
            .or_else(|| stored_key(credentials, &manifest.auth.key_fields))
            .or_else(|| credentials.access_token.clone()),
        // A personal access token may be stored as either (guMCP's GitHub reads both).
        _ => credentials
            .access_token
            .clone()
            .or_else(|| credentials.api_key.clone()),
    }
}

/// The key of a credential of several fields: its own field (`key_fields::key_field`), or
/// guMCP's metadata shape.
fn stored_key(credentials: &Credentials, fields: &[KeyField]) -> Option<String> {
    key_fields::value_of(credentials, key_fields::key_field(fields)?).map(str::to_owned)
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
    /// Headers of this API's requests beside the manifest's (`Api::header`).
    headers: Vec<(String, String)>,
    /// Whether the user's credentials go with the requests (`Api::anonymous`: no).
    authorized: bool,
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
            fetch_private_urls: settings.servers.fetch_private_urls,
            local_files_dir: settings.servers.local_files_dir.as_deref().map(Arc::from),
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
            headers: Vec::new(),
            authorized: true,
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

/// A file fetched from a URL a user named: its bytes and the type its server gave.
pub struct FetchedFile {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

impl Upstream {
    /// Fetches the file at `url`, a URL a user gave (a file to upload elsewhere): http(s) only,
    /// no redirects followed, within the timeout and `servers.max_response_bytes`, and — unless
    /// `servers.fetch_private_urls` — not from a loopback, private or link-local address
    /// named by the URL (a host name is not resolved first: a name that resolves to such an
    /// address is not caught). No credentials go with it. Failures never repeat the URL, whose
    /// query may carry a token.
    pub async fn fetch_file(&self, url: &str) -> Result<FetchedFile, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|_| "the url is not a valid URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("the url must be an http or https URL".to_owned());
        }
        if !self.fetch_private_urls && names_private_host(&parsed) {
            return Err(
                "the url names a local or private address, which this server does not fetch                  (servers.fetch_private_urls)"
                    .to_owned(),
            );
        }
        let response = self
            .client
            .get(parsed)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|err| format!("the file could not be fetched: {}", err.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "fetching the file answered HTTP {}",
                status.as_u16()
            ));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = crate::upstream::read_capped(response, self.max_response_bytes)
            .await
            .map_err(|err| format!("the file could not be read: {err}"))?;
        Ok(FetchedFile {
            bytes,
            content_type,
        })
    }
}

impl Upstream {
    /// The file `given` names inside `servers.local_files_dir`: a relative path is taken from
    /// there, an absolute one must lie within it; `..` is refused, and so is a path whose real
    /// location (symbolic links followed, for what exists of it) is outside the folder.
    pub fn local_file(&self, given: &str) -> Result<std::path::PathBuf, String> {
        use std::path::{Component, Path};
        let Some(root) = self.local_files_dir.as_deref() else {
            return Err(
                "this server does not read or write files of its machine                  (servers.local_files_dir is not set)"
                    .to_owned(),
            );
        };
        let path = Path::new(given);
        if given.trim().is_empty()
            || path
                .components()
                .any(|part| matches!(part, Component::ParentDir))
        {
            return Err(format!(
                "{given:?} is not a file path inside the local files folder"
            ));
        }
        let root = root
            .canonicalize()
            .map_err(|err| format!("the local files folder cannot be used: {err}"))?;
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        let existing = match joined.canonicalize() {
            Ok(real) => real,
            Err(_) => joined
                .parent()
                .and_then(|parent| parent.canonicalize().ok())
                .ok_or_else(|| format!("the folder of {given:?} does not exist"))?,
        };
        if !existing.starts_with(&root) {
            return Err(format!("{given:?} is outside the local files folder"));
        }
        Ok(joined)
    }
}

impl Upstream {
    /// The bytes of the file `given` names inside `servers.local_files_dir` (see
    /// [`Upstream::local_file`]), refused past `servers.max_response_bytes` (what one request
    /// may carry here), read off the async threads; `argument` names it in errors.
    pub async fn read_local_file(&self, given: &str, argument: &str) -> Result<Vec<u8>, String> {
        let path = self.local_file(given)?;
        let limit = self.max_response_bytes;
        let argument = argument.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let metadata = std::fs::metadata(&path)
                .map_err(|err| format!("the file cannot be read: {err}"))?;
            if !metadata.is_file() {
                return Err(format!("{argument} is not a file"));
            }
            if metadata.len() > limit as u64 {
                return Err(format!(
                    "the file is larger than servers.max_response_bytes ({limit} bytes)"
                ));
            }
            std::fs::read(&path).map_err(|err| format!("the file cannot be read: {err}"))
        });
        read.await.map_err(|err| err.to_string())?
    }
}

impl Upstream {
    /// Whether requests to `url`, an address a user gave as their service's root (a Discourse
    /// forum), are refused because it names a loopback, private or link-local host — as
    /// [`Upstream::fetch_file`] refuses them, unless `servers.fetch_private_urls`.
    pub fn refuses_site(&self, url: &str) -> bool {
        !self.fetch_private_urls
            && reqwest::Url::parse(url).map_or(true, |parsed| names_private_host(&parsed))
    }
}

/// Whether a URL's host is `localhost` or an address of this host or its networks.
fn names_private_host(url: &reqwest::Url) -> bool {
    use std::net::IpAddr;
    let private = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| {
                    v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
                })
        }
    };
    let Some(host) = url.host_str() else {
        return true;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => private(ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

impl Api<'_> {
    /// The same API with `prefix` after its base URL on each of its requests (an API whose
    /// root depends on the user: Jira's `/ex/jira/{cloud id}/rest/api/3`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.base_url.push_str(prefix);
        self
    }

    /// The same requests sent to `base_url` exactly, whatever the config overrides: a second
    /// host of the same service, derived by the server from the effective base URL
    /// (PostHog's ingestion host beside its app host).
    pub fn at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_owned();
        self
    }

    /// The same API without the user's credentials: an endpoint that authenticates by what
    /// the body carries (PostHog's event capture takes the project's public token).
    pub fn anonymous(mut self) -> Self {
        self.authorized = false;
        self
    }

    /// The same API with `name: value` on each of its requests (an argument an API takes in a
    /// header: Dropbox's `Dropbox-API-Arg`).
    pub fn header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }

    /// `method` on `path` (under the base URL) with `query` and an optional JSON `body`; the
    /// JSON answer, or the sentence a tool error should say.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let body = body.map_or(ApiBody::None, ApiBody::Json);
        self.send(method, path, query, body).await
    }

    /// `method` on `path` with `query` and `body` as form fields (nested values bracketed, as
    /// [`call::form_fields`] does); the JSON answer, or the sentence a tool error should say.
    pub async fn form(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, String> {
        self.send(method, path, query, ApiBody::Form(body)).await
    }

    /// `method` on `path` with `bytes` of `content_type` as the body (an upload: Drive's
    /// multipart, a file's content); the JSON answer, or the sentence a tool error should say.
    pub async fn upload(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Value, String> {
        let body = ApiBody::Raw {
            content_type,
            bytes,
        };
        self.send(method, path, query, body).await
    }

    /// `method` on `path` with `query`, answered with bytes rather than JSON (a file's
    /// content, an export): the bytes and their content type, or the sentence a tool error
    /// should say.
    pub async fn bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<call::RawAnswer, String> {
        self.send_raw(method, path, query, ApiBody::None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: ApiBody<'_>,
    ) -> Result<Value, String> {
        let raw = self.send_raw(method, path, query, body).await?;
        call::json_answer(raw, |_| None)
            .map(|answer| answer.body)
            .map_err(|failure| {
                explain(
                    failure,
                    self.manifest,
                    &self.ctx.user_id,
                    self.upstream.timeout,
                )
            })
    }

    /// One request with the user's credentials (one refresh and retry on a 401).
    async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: ApiBody<'_>,
    ) -> Result<call::RawAnswer, String> {
        let user = &self.ctx.user_id;
        let credentials = match self.manifest.auth.kind {
            AuthKind::None => None,
            _ if !self.authorized => None,
            _ => match self.ctx.credentials.get().await {
                Ok(credentials) => Some(credentials),
                Err(err) => return Err(err.to_string()),
            },
        };
        let mut secret = credentials
            .as_ref()
            .and_then(|credentials| secret_of(self.manifest, credentials));
        let fields = &self.manifest.auth.fields;
        let base_url = match &credentials {
            Some(credentials) if fields::names_a_field(&self.base_url, fields) => {
                fields::fill(&self.base_url, fields, &credentials.extra)
                    .map_err(|err| err.to_string())?
            }
            _ => self.base_url.clone(),
        };
        let url = format!("{base_url}{path}");
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
            for (name, value) in &self.headers {
                builder = builder.header(name, value);
            }
            if let Some(secret) = secret {
                builder = call::authorize(builder, &mut query, &self.manifest.auth, secret);
            }
            if !query.is_empty() {
                builder = builder.query(&query);
            }
            match body {
                ApiBody::None => {}
                ApiBody::Json(body) => builder = builder.json(body),
                ApiBody::Form(body) => builder = builder.form(&call::form_fields(body)),
                ApiBody::Raw {
                    content_type,
                    bytes,
                } => {
                    builder = builder
                        .header(reqwest::header::CONTENT_TYPE, content_type)
                        .body(bytes.to_vec());
                }
            }
            Ok(builder)
        };
        let mut outcome = call::exchange_raw(self.upstream, || make(secret.as_deref())).await;
        if let (Err(Failure::Unauthorized), Some(rejected)) = (&outcome, secret.clone()) {
            secret = match self.ctx.credentials.after_rejection(&rejected).await {
                Ok(credentials) => secret_of(self.manifest, &credentials),
                Err(err) => return Err(err.to_string()),
            };
            outcome = call::exchange_raw(self.upstream, || make(secret.as_deref())).await;
        }
        outcome.map_err(|failure| explain(failure, self.manifest, user, self.upstream.timeout))
    }
}

/// The body of a request native code sends.
#[derive(Clone, Copy)]
enum ApiBody<'a> {
    None,
    Json(&'a Value),
    /// Form fields (Stripe's request bodies).
    Form(&'a Value),
    Raw {
        content_type: &'a str,
        bytes: &'a [u8],
    },
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

#[cfg(test)]
mod tests {
    use super::names_private_host;

    #[test]
    fn local_and_private_hosts_are_told_apart_from_public_ones() {
        for local in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://a.localhost./x",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:192.168.0.1]/x",
            "http://100.64.0.1/x",
        ] {
            assert!(names_private_host(&local.parse().unwrap()), "{local}");
        }
        for public in [
            "https://example.com/a.pdf",
            "https://8.8.8.8/x",
            "http://[2001:db8::1]/x",
        ] {
            assert!(!names_private_host(&public.parse().unwrap()), "{public}");
        }
    }
}
