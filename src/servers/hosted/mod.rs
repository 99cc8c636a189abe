//! Hosted MCP servers: any server that speaks MCP over stdio (an npm or PyPI package, a
//! binary), run as one child process per (server, principal) and spoken to by the runtime's
//! own MCP client ([`client`]). To the rest of the runtime a hosted server is one more
//! [`McpServer`]: its lists are the child's, its calls are relayed, and what the child sends
//! unasked — progress, log messages, questions for the client — reaches the caller.
//!
//! The child starts on the first request (with the user's credential in its environment or
//! arguments), stops with the instance when it has been idle for
//! `runtime.server_idle_ttl_secs`, and is started again after a crash — with a growing
//! pause, and not at all past `runtime.max_restarts_per_minute` until the minute is over.
//! Changed credentials (a refresh) start a fresh child with the new ones.

pub mod client;
pub mod limits;
pub mod remote;
pub mod spec;
pub mod stdio;
pub mod tasks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, ServerCapabilities, Tool,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::client::Peer;
use self::spec::{StdioSpec, CREDENTIAL_PLACEHOLDER};
use self::stdio::{Launch, Owner};
use super::context::CredentialSource;
use super::manifest::{AuthKind, Manifest};
use super::{
    CallError, Features, InputRequired, McpServer, RequestContext, ServerEvent, ServerFuture,
    ServerInit, TaskSupport,
};
use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;

pub use limits::HostedRuntime;

/// The window `runtime.max_restarts_per_minute` counts child restarts over.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// The pause before the first restart after a crash; it doubles with each further one
/// within the window.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Pages of one listing read from a child before it is taken as endless.
const MAX_PAGES: usize = 100;

/// How long a new remote connection waits for its standalone stream to be answered.
const MAX_SETTLE: Duration = Duration::from_secs(2);

/// Resources one principal's sessions may keep subscribed at a hosted server at once (each
/// subscribed upstream once, however many sessions asked); one more is refused.
const MAX_UPSTREAM_SUBSCRIPTIONS: usize = 1024;

/// A live connection to a hosted server: its client, a digest of the credential it was opened
/// with (another one means a new connection), and what keeps it running — a child process, a
/// remote session's task — which dropping it ends.
pub struct Connection {
    pub peer: Arc<Peer>,
    pub fingerprint: Option<[u8; 32]>,
    _running: Box<dyn Send + Sync>,
    /// Turns true once what the connection opens after the handshake is open (a remote
    /// session's standalone stream), so nothing the server sends after it starts is missed.
    settled: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Connection {
    pub fn new(
        peer: Arc<Peer>,
        fingerprint: Option<[u8; 32]>,
        running: Box<dyn Send + Sync>,
    ) -> Self {
        Connection {
            peer,
            fingerprint,
            _running: running,
            settled: None,
        }
    }

    /// The same, ready only once `settled` turns true.
    pub fn settled_by(self, settled: tokio::sync::watch::Receiver<bool>) -> Self {
        Connection {
            settled: Some(settled),
            ..self
        }
    }

    /// Waits until what opens after the handshake is open — at most [`MAX_SETTLE`]: a server
    /// that holds its stream's answer back until it has something to send delays no start.
    async fn settle(&self) {
        if let Some(settled) = &self.settled {
            let mut settled = settled.clone();
            let _ = tokio::time::timeout(MAX_SETTLE, settled.wait_for(|done| *done)).await;
        }
    }
}

/// One principal's instance of a hosted server (`stdio` or `mcp`).
pub struct HostedServer {
    manifest: Arc<Manifest>,
    /// The server's folder: relative commands and working folders are taken from it.
    folder: Option<PathBuf>,
    init: ServerInit,
    user_label: String,
    /// The live child, if any.
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while a child is being started, so concurrent first calls start one.
    starting: tokio::sync::Mutex<()>,
    lists: RwLock<Lists>,
    restarts: Mutex<VecDeque<Instant>>,
    /// Set when the instance is retired: no child is started for it any more.
    shut_down: AtomicBool,
    /// What this principal's sessions asked the child for.
    asked: Mutex<Asked>,
}

/// What this principal's sessions (and listens: each a holder) asked the server for: the
/// resources they subscribed to, each subscribed upstream once while any holder wants it, and
/// the log levels they asked for, of which the most verbose is passed on. A new child is told
/// all of it when it starts.
#[derive(Default)]
struct Asked {
    uris: HashMap<String, HashSet<u64>>,
    levels: HashMap<u64, LogLevel>,
    /// The level last passed on.
    sent_level: Option<LogLevel>,
}

impl Asked {
    fn most_verbose(&self) -> Option<LogLevel> {
        self.levels.values().min().copied()
    }

    /// Takes `holder`'s subscriptions away; the resources no holder wants any more.
    fn release(&mut self, holder: u64) -> Vec<String> {
        let mut emptied = Vec::new();
        self.uris.retain(|uri, holders| {
            holders.remove(&holder);
            if holders.is_empty() {
                emptied.push(uri.clone());
            }
            !holders.is_empty()
        });
        emptied
    }

    /// The level to pass on now, when it differs from the one last passed on.
    fn level_to_send(&mut self) -> Option<LogLevel> {
        let most = self.most_verbose();
        if most.is_none() || most == self.sent_level {
            return None;
        }
        self.sent_level = most;
        most
    }
}

/// What the child listed when it was last asked.
#[derive(Default)]
struct Lists {
    capabilities: ServerCapabilities,
    /// Whether the server speaks 2026-07-28 too (it answered `server/discover`).
    modern: bool,
    /// Whether it speaks only 2026-07-28 (it refused `initialize`): each request stands
    /// alone, with its own `_meta`; subscriptions and log levels are not passed on (that
    /// revision has no `resources/subscribe` or `logging/setLevel`; a request's level is in
    /// its `_meta`).
    modern_only: bool,
    tools: Vec<Tool>,
    /// Each tool's `execution.taskSupport` as the child declared it (rmcp's `Tool` has no
    /// place for it).
    task_support: HashMap<String, TaskSupport>,
    prompts: Vec<Prompt>,
    templates: Vec<ResourceTemplate>,
}

impl HostedServer {
    pub fn new(manifest: Arc<Manifest>, folder: Option<PathBuf>, init: ServerInit) -> Self {
        HostedServer {
            user_label: crate::telemetry::user_label(&init.user_id),
            manifest,
            folder,
            init,
            current: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
            lists: RwLock::new(Lists::default()),
            restarts: Mutex::new(VecDeque::new()),
            shut_down: AtomicBool::new(false),
            asked: Mutex::new(Asked::default()),
        }
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Asked> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live child, whatever credential it was started with.
    fn running_child(&self) -> Option<Arc<Connection>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|child| !child.peer.is_closed())
            .cloned()
    }

    fn upstream_subscribe(&self) -> bool {
        let lists = self.lists();
        if lists.modern_only {
            return false;
        }
        let resources = lists.capabilities.resources.as_ref();
        resources.and_then(|r| r.subscribe).unwrap_or(false)
    }

    /// Whether `logging/setLevel` is passed on (a server that takes it).
    fn passes_levels(&self) -> bool {
        let lists = self.lists();
        lists.capabilities.logging.is_some() && !lists.modern_only
    }

    /// Tells a new child what the sessions asked for: their subscriptions and log level.
    async fn pass_on_asked(&self, peer: &Peer) {
        let (uris, level) = {
            let mut asked = self.asked();
            asked.sent_level = None;
            let level = asked.level_to_send();
            (asked.uris.keys().cloned().collect::<Vec<_>>(), level)
        };
        let mut requests: Vec<(&str, Value)> = Vec::new();
        if self.upstream_subscribe() {
            requests.extend(
                uris.into_iter()
                    .map(|uri| ("resources/subscribe", json!({ "uri": uri }))),
            );
        }
        if let (Some(level), true) = (level, self.passes_levels()) {
            requests.push(("logging/setLevel", json!({ "level": level })));
        }
        for (method, params) in requests {
            if let Err(error) = peer.request(method, params, None).await {
                tracing::warn!(server = %self.server(), user = %self.user_label, %error, "{method} refused by the hosted server");
            }
        }
    }

    fn server(&self) -> &str {
        &self.manifest.name
    }

    fn lists(&self) -> std::sync::RwLockReadGuard<'_, Lists> {
        self.lists.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live child, if it was started with this credential.
    fn live_child(&self, fingerprint: Option<[u8; 32]>) -> Option<Arc<Connection>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|child| !child.peer.is_closed() && child.fingerprint == fingerprint)
            .cloned()
    }

    /// The child to talk to: the live one, or a new one (after a crash, within the restart
    /// budget; after a credential change, with the new credential).
    async fn child(
        &self,
        credentials: &Arc<dyn CredentialSource>,
    ) -> Result<Arc<Connection>, CallError> {
        let secret = self.secret(credentials).await?;
        let fingerprint = secret
            .as_deref()
            .map(|secret| Sha256::digest(secret.as_bytes()).into());
        if let Some(child) = self.live_child(fingerprint) {
            return Ok(child);
        }
        let _starting = self.starting.lock().await;
        if let Some(child) = self.live_child(fingerprint) {
            return Ok(child);
        }
        if self.shut_down.load(Ordering::Acquire) {
            return Err(McpError::internal(format!(
                "this instance of the {} server was stopped; retry",
                self.server()
            ))
            .into());
        }
        let previous = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(previous) = previous {
            if previous.peer.is_closed() {
                self.before_restart().await?;
            } else {
                tracing::info!(
                    server = %self.server(),
                    user = %self.user_label,
                    "credentials changed: restarting the hosted server with the new ones"
                );
            }
        }
        let child = Arc::new(self.start(secret.as_deref(), fingerprint).await?);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(child.clone());
        Ok(child)
    }

    /// Counts a restart after a crash: refused past `runtime.max_restarts_per_minute`, else
    /// after a pause that doubles with each restart in the window.
    async fn before_restart(&self) -> Result<(), McpError> {
        let now = Instant::now();
        let restarts = {
            let mut restarts = self.restarts.lock().unwrap_or_else(PoisonError::into_inner);
            while restarts
                .front()
                .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
            {
                restarts.pop_front();
            }
            let allowed = self.init.hosted.max_restarts_per_minute as usize;
            if restarts.len() >= allowed {
                self.count_restart("paused");
                let oldest = restarts.front().copied().unwrap_or(now);
                let wait = (oldest + RESTART_WINDOW).saturating_duration_since(now);
                return Err(McpError::internal(format!(
                    "the {} server's process keeps failing ({} restarts within a minute, \
                     runtime.max_restarts_per_minute); it is paused for {} s more",
                    self.server(),
                    restarts.len(),
                    wait.as_secs().max(1)
                )));
            }
            restarts.push_back(now);
            restarts.len()
        };
        self.count_restart("restarted");
        let doublings = u32::try_from(restarts.saturating_sub(1)).unwrap_or(u32::MAX);
        let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(doublings.min(6)));
        tracing::warn!(
            server = %self.server(),
            user = %self.user_label,
            restarts,
            "hosted server process ended; starting it again"
        );
        tokio::time::sleep(backoff).await;
        Ok(())
    }

    fn count_restart(&self, outcome: &str) {
        self.init
            .hosted
            .metrics
            .server_restarts
            .with_label_values(&[self.server(), outcome])
            .inc();
    }

    /// The user's secret, when the child is to be given one; a missing account is
    /// [`CallError::Account`] (the request's credentials make its connect link).
    async fn secret(
        &self,
        credentials: &Arc<dyn CredentialSource>,
    ) -> Result<Option<String>, CallError> {
        // A remote server is always sent the credential; a child only where `[stdio]` says.
        let wanted = self
            .manifest
            .stdio
            .as_ref()
            .is_none_or(StdioSpec::wants_credential);
        if self.manifest.auth.kind == AuthKind::None || !wanted {
            return Ok(None);
        }
        let stored = credentials.get().await.map_err(CallError::Account)?;
        super::http::secret_of(&self.manifest, &stored)
            .map(Some)
            .ok_or_else(|| {
                McpError::internal(format!(
                    "the stored {} credentials hold neither an access token nor an API key",
                    self.manifest.auth_service()
                ))
                .into()
            })
    }

    /// Starts a child, shakes hands, and reads its lists.
    async fn start(
        &self,
        secret: Option<&str>,
        fingerprint: Option<[u8; 32]>,
    ) -> Result<Connection, McpError> {
        let hosted = &self.init.hosted;
        let child = match (&self.manifest.mcp, &self.manifest.stdio) {
            (Some(remote), _) => {
                let endpoint = remote::Endpoint {
                    url: remote.url.clone(),
                    client: self.init.upstream.client.clone(),
                    auth: self.manifest.auth.clone(),
                    secret: secret.map(str::to_owned),
                    max_response_bytes: self.init.upstream.max_response_bytes,
                };
                let server = Arc::from(self.server());
                remote::connect(endpoint, server, self.init.events.clone(), fingerprint)
            }
            (None, Some(spec)) => {
                let slot = hosted.slots.take(&self.init.principal)?;
                let owner = Owner {
                    server: Arc::from(self.server()),
                    user_label: self.user_label.clone(),
                };
                let events = self.init.events.clone();
                let launch = self.launch(spec, secret);
                stdio::spawn(launch, owner, events, &hosted.settings, slot, fingerprint)?
            }
            (None, None) => {
                return Err(McpError::internal(format!(
                    "the {} server has neither [stdio] nor [mcp]",
                    self.server()
                )))
            }
        };
        let timeout = Duration::from_secs(hosted.settings.initialize_timeout_secs);
        let (capabilities, modern, modern_only) = match child.peer.initialize(timeout).await {
            Ok(initialized) => {
                child.settle().await;
                let modern = child.peer.speaks_modern(timeout).await;
                (initialized.capabilities, modern, false)
            }
            // A remote server that speaks only 2026-07-28 refuses the handshake; its
            // `server/discover` says what it offers.
            Err(refused) if self.manifest.mcp.is_some() => {
                let Some(discovered) = child.peer.discover(timeout).await else {
                    return Err(refused);
                };
                child.peer.speak_modern_only();
                let capabilities = discovered
                    .get("capabilities")
                    .cloned()
                    .and_then(|capabilities| serde_json::from_value(capabilities).ok())
                    .unwrap_or_default();
                (capabilities, true, true)
            }
            Err(refused) => return Err(refused),
        };
        self.read_lists(&child.peer, capabilities).await?;
        {
            let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
            lists.modern = modern;
            lists.modern_only = modern_only;
        }
        self.pass_on_asked(&child.peer).await;
        Ok(child)
    }

    fn launch(&self, spec: &StdioSpec, secret: Option<&str>) -> Launch {
        let in_folder = |path: &Path| match &self.folder {
            Some(folder) => folder.join(path),
            None => path.to_owned(),
        };
        let command = Path::new(&spec.command);
        let program = if spec.command.contains('/') && command.is_relative() {
            in_folder(command)
        } else {
            command.to_owned()
        };
        let args = spec
            .args
            .iter()
            .map(|arg| match secret {
                Some(secret) => arg.replace(CREDENTIAL_PLACEHOLDER, secret),
                None => arg.clone(),
            })
            .collect();
        let working_dir = match &spec.working_dir {
            Some(dir) => Some(in_folder(dir)),
            None => self.folder.clone(),
        };
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        if let (Some(name), Some(secret)) = (&spec.credential_env, secret) {
            env.push((name.clone(), secret.to_owned()));
        }
        Launch {
            program,
            args,
            working_dir,
            env,
            secret: secret.map(str::to_owned),
        }
    }

    /// Reads the child's tools, prompts and resource templates (what it declared it has);
    /// a changed tool list is announced, so every holder reads it again.
    async fn read_lists(
        &self,
        peer: &Peer,
        capabilities: ServerCapabilities,
    ) -> Result<(), McpError> {
        let listed = match capabilities.tools {
            Some(_) => list_all::<Value>(peer, "tools/list", "tools", None).await?,
            None => Vec::new(),
        };
        let task_support = listed
            .iter()
            .filter_map(|tool| {
                let name = tool.get("name")?.as_str()?.to_owned();
                let support = tool.get("execution")?.get("taskSupport")?.clone();
                Some((name, serde_json::from_value(support).ok()?))
            })
            .collect();
        let tools: Vec<Tool> = parse(self.server(), "tools/list", Value::Array(listed))?;
        let prompts = match capabilities.prompts {
            Some(_) => list_all::<Prompt>(peer, "prompts/list", "prompts", None).await?,
            None => Vec::new(),
        };
        let templates = match capabilities.resources {
            Some(_) => {
                list_all::<ResourceTemplate>(
                    peer,
                    "resources/templates/list",
                    "resourceTemplates",
                    None,
                )
                .await?
            }
            None => Vec::new(),
        };
        let changed = {
            let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
            let changed = lists.tools != tools;
            *lists = Lists {
                capabilities,
                modern: lists.modern,
                modern_only: lists.modern_only,
                tools,
                task_support,
                prompts,
                templates,
            };
            changed
        };
        if changed {
            self.init.events.send(ServerEvent::ToolsListChanged);
        }
        Ok(())
    }

    /// Relays one request of a call to the child (started first if need be).
    async fn relay<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        ctx: &RequestContext,
    ) -> Result<T, CallError> {
        let child = self.child(&ctx.credentials).await?;
        let params = if self.lists().modern {
            client::modern_params(params, ctx)
        } else {
            params
        };
        let answer = child.peer.request(method, params, Some(ctx)).await?;
        if answer.get("resultType").and_then(Value::as_str) == Some("input_required") {
            return Err(CallError::InputRequired(input_required(answer)));
        }
        Ok(parse(self.server(), method, answer)?)
    }
}

/// Every page of a listing.
async fn list_all<T: DeserializeOwned>(
    peer: &Peer,
    method: &str,
    key: &str,
    ctx: Option<&RequestContext>,
) -> Result<Vec<T>, McpError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let mut page = peer.request(method, params, ctx).await?;
        let listed = page.get_mut(key).map(Value::take).unwrap_or(json!([]));
        let mut batch: Vec<T> = parse("hosted", method, listed)?;
        items.append(&mut batch);
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => return Ok(items),
        }
    }
    Err(McpError::internal(format!(
        "{method}: more than {MAX_PAGES} pages; the listing was abandoned"
    )))
}

/// A server's `InputRequiredResult` as the runtime hands it on: its input requests, and its
/// state (which the runtime seals before it reaches the client).
fn input_required(mut answer: Value) -> InputRequired {
    let requests = match answer.get_mut("inputRequests").map(Value::take) {
        Some(Value::Object(requests)) => requests.into_iter().collect(),
        _ => Default::default(),
    };
    let state = answer
        .get("requestState")
        .and_then(Value::as_str)
        .map(str::to_owned);
    InputRequired { requests, state }
}

/// A failure as the JSON-RPC error of a method that has no other way to answer.
fn protocol_error(error: CallError) -> McpError {
    match error {
        CallError::Protocol(error) => error,
        other => McpError::internal(other.to_string()),
    }
}

fn parse<T: DeserializeOwned>(server: &str, method: &str, answer: Value) -> Result<T, McpError> {
    serde_json::from_value(answer).map_err(|err| {
        McpError::internal(format!(
            "the {server} server answered {method} with an invalid result: {err}"
        ))
    })
}

impl McpServer for HostedServer {
    fn features(&self) -> Features {
        let lists = self.lists();
        let capabilities = &lists.capabilities;
        // A server that speaks only 2026-07-28 announces changes on `subscriptions/listen`,
        // which is not held open to it: none reach us.
        let changes = |flag: Option<bool>| flag.unwrap_or(false) && !lists.modern_only;
        Features {
            tools_list_changed: changes(capabilities.tools.as_ref().and_then(|t| t.list_changed)),
            resources: capabilities.resources.is_some(),
            resources_subscribe: changes(capabilities.resources.as_ref().and_then(|r| r.subscribe)),
            resources_list_changed: changes(
                capabilities.resources.as_ref().and_then(|r| r.list_changed),
            ),
            prompts: capabilities.prompts.is_some(),
            prompts_list_changed: changes(
                capabilities.prompts.as_ref().and_then(|p| p.list_changed),
            ),
            completions: capabilities.completions.is_some(),
            logging: capabilities.logging.is_some(),
        }
    }

    fn prepare<'a>(
        &'a self,
        credentials: &'a Arc<dyn CredentialSource>,
    ) -> ServerFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let child = self.child(credentials).await?;
            if child.peer.take_lists_stale() {
                let capabilities = self.lists().capabilities.clone();
                self.read_lists(&child.peer, capabilities).await?;
            }
            Ok(())
        })
    }

    fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn subscribe<'a>(
        &'a self,
        holder: u64,
        uri: &'a str,
        subscribed: bool,
    ) -> ServerFuture<'a, Result<(), McpError>> {
        Box::pin(async move {
            if !self.upstream_subscribe() {
                return Ok(());
            }
            let method = {
                let mut asked = self.asked();
                let full = asked.uris.len() >= MAX_UPSTREAM_SUBSCRIPTIONS;
                if subscribed {
                    match asked.uris.get_mut(uri) {
                        Some(holders) => {
                            holders.insert(holder);
                            None
                        }
                        None if full => {
                            return Err(McpError::busy(format!(
                                "your sessions are subscribed to {MAX_UPSTREAM_SUBSCRIPTIONS} \
                                 resources of the {} server already; unsubscribe from some first",
                                self.server()
                            )));
                        }
                        None => {
                            asked.uris.insert(uri.to_owned(), HashSet::from([holder]));
                            Some("resources/subscribe")
                        }
                    }
                } else {
                    let emptied = asked.uris.get_mut(uri).is_some_and(|holders| {
                        holders.remove(&holder);
                        holders.is_empty()
                    });
                    if emptied {
                        asked.uris.remove(uri);
                    }
                    emptied.then_some("resources/unsubscribe")
                }
            };
            // No child running: the next one is told when it starts.
            let (Some(method), Some(child)) = (method, self.running_child()) else {
                return Ok(());
            };
            let sent = child
                .peer
                .request(method, json!({ "uri": uri }), None)
                .await;
            if let (Err(_), true) = (&sent, subscribed) {
                let mut asked = self.asked();
                let emptied = asked.uris.get_mut(uri).is_some_and(|holders| {
                    holders.remove(&holder);
                    holders.is_empty()
                });
                if emptied {
                    asked.uris.remove(uri);
                }
            }
            sent.map(drop)
        })
    }

    fn set_log_level(
        &self,
        holder: u64,
        level: LogLevel,
    ) -> ServerFuture<'_, Result<(), McpError>> {
        Box::pin(async move {
            if !self.passes_levels() {
                return Ok(());
            }
            let level = {
                let mut asked = self.asked();
                asked.levels.insert(holder, level);
                asked.level_to_send()
            };
            let (Some(level), Some(child)) = (level, self.running_child()) else {
                return Ok(());
            };
            let params = json!({ "level": level });
            child
                .peer
                .request("logging/setLevel", params, None)
                .await
                .map(drop)
        })
    }

    fn release(&self, holder: u64) {
        let (emptied, level) = {
            let mut asked = self.asked();
            let emptied = asked.release(holder);
            let had_level = asked.levels.remove(&holder).is_some();
            (emptied, had_level.then(|| asked.level_to_send()).flatten())
        };
        if emptied.is_empty() && level.is_none() {
            return;
        }
        let (Some(child), Ok(runtime)) =
            (self.running_child(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let mut requests: Vec<(&'static str, Value)> = emptied
            .into_iter()
            .map(|uri| ("resources/unsubscribe", json!({ "uri": uri })))
            .collect();
        if let Some(level) = level {
            requests.push(("logging/setLevel", json!({ "level": level })));
        }
        runtime.spawn(async move {
            for (method, params) in requests {
                let _ = child.peer.request(method, params, None).await;
            }
        });
    }

    fn holds_subscriptions(&self) -> bool {
        !self.asked().uris.is_empty()
    }

    fn tools(&self) -> Vec<Tool> {
        self.lists().tools.clone()
    }

    fn task_support(&self, tool: &str) -> TaskSupport {
        let lists = self.lists();
        lists.task_support.get(tool).copied().unwrap_or_default()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            let support = self.task_support(name);
            if support == TaskSupport::Required {
                ctx.link.awaits_first_answer();
            }
            // Whether the runtime's first poll of a call that may become a task finds it done
            // must not depend on how fast the child answered: the call is never done then.
            tokio::task::yield_now().await;
            let child = self.child(&ctx.credentials).await?;
            if let Some(resumed) = tasks::resume(&child.peer, ctx).await {
                return Ok(parse(self.server(), "tools/call", resumed?)?);
            }
            let params = json!({ "name": name, "arguments": arguments });
            let modern = self.lists().modern && ctx.protocol.is_modern();
            let mut params = if modern {
                client::modern_params(params, ctx)
            } else {
                params
            };
            tasks::ask_for_task(&mut params, support, modern);
            let mut answer = if support == TaskSupport::Required {
                tasks::call_for_task(&child.peer, params, ctx, modern).await?
            } else {
                child.peer.request("tools/call", params, Some(ctx)).await?
            };
            if answer.get("resultType").and_then(Value::as_str) == Some("input_required") {
                return Err(CallError::InputRequired(input_required(answer)));
            }
            if let Some(task) = tasks::child_task(&answer) {
                ctx.link.continues();
                answer = tasks::follow(&child.peer, task, ctx, modern).await?;
            }
            Ok(parse(self.server(), "tools/call", answer)?)
        })
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        Box::pin(async move {
            if self.lists().capabilities.resources.is_none() {
                return Ok(Vec::new());
            }
            let child = self.child(&ctx.credentials).await.map_err(protocol_error)?;
            list_all(&child.peer, "resources/list", "resources", Some(ctx)).await
        })
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        self.lists().templates.clone()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        Box::pin(async move {
            self.relay("resources/read", json!({ "uri": uri }), ctx)
                .await
        })
    }

    fn prompts(&self) -> Vec<Prompt> {
        self.lists().prompts.clone()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        Box::pin(async move {
            let params = json!({ "name": name, "arguments": arguments });
            self.relay("prompts/get", params, ctx).await
        })
    }

    fn complete<'a>(
        &'a self,
        params: CompleteRequestParams,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CompleteResult, McpError>> {
        Box::pin(async move {
            let params =
                serde_json::to_value(params).map_err(|err| McpError::internal(err.to_string()))?;
            self.relay("completion/complete", params, ctx)
                .await
                .map_err(protocol_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_verbose_level_is_passed_on_once_and_a_released_holder_lets_go() {
        let mut asked = Asked::default();
        asked.levels.insert(1, LogLevel::Error);
        assert_eq!(asked.level_to_send(), Some(LogLevel::Error));
        asked.levels.insert(2, LogLevel::Debug);
        assert_eq!(asked.level_to_send(), Some(LogLevel::Debug));
        asked.levels.insert(3, LogLevel::Warning);
        assert_eq!(
            asked.level_to_send(),
            None,
            "nothing more verbose was asked for"
        );
        for (holder, uri) in [(1, "a"), (2, "a"), (2, "b")] {
            asked.uris.entry(uri.to_owned()).or_default().insert(holder);
        }
        assert_eq!(asked.release(2), vec!["b".to_owned()]);
        asked.levels.remove(&2);
        assert_eq!(asked.level_to_send(), Some(LogLevel::Warning));
        assert_eq!(asked.release(1), vec!["a".to_owned()]);
        assert!(asked.uris.is_empty());
    }
}
