//! The runtime handle the transports hold: it finds (or has the supervisor start) a user's
//! server instance and wraps it in a [`ServerHandle`] whose methods are plain async calls run on
//! the caller's task, so no actor types leak past this module. (Sessions are started through
//! `session::SessionHandle::open`.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use tokio::sync::broadcast;

use super::auth::{AuthActor, AuthHandle};
use super::budget::{InFlightBudget, Permit};
use super::directory::Directory;
use super::server_core::ServerCore;
use super::server_core::ServerKey;
use super::supervisor::{CountLive, GetServer, LookupError, Supervisor};
use super::tasks::TaskStore;
use crate::audit::{Audit, AuditError};
use crate::auth::connect_link::ConnectLinks;
use crate::auth::principal::Principal;
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::protocol::dispatch::StateSeal;
use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;
use crate::servers::hosted::HostedRuntime;
use crate::servers::http::Upstream;
use crate::servers::{
    CallError, CredentialSource, RequestContext, ServerDescription, ServerEvent, ServerRegistry,
    TaskSupport,
};
use crate::upstream;

/// Shared by every transport and session; cheap to clone: its parts sit behind one reference
/// count. A request clones the runtime several times (its host, its server handle), on every
/// worker thread at once, so a count per part meant a dozen contended atomic operations per
/// clone and as many per drop (~3% of a call's instructions, measured with callgrind).
#[derive(Clone)]
pub struct Runtime(Arc<RuntimeParts>);

impl std::ops::Deref for Runtime {
    type Target = RuntimeParts;

    fn deref(&self) -> &RuntimeParts {
        &self.0
    }
}

/// What a [`Runtime`] holds.
pub struct RuntimeParts {
    pub settings: Arc<Settings>,
    pub registry: Arc<ServerRegistry>,
    /// Seals 2026-07-28 `requestState` with a key that lives as long as this runtime.
    pub seal: Arc<StateSeal>,
    pub metrics: Arc<Metrics>,
    /// Users' credentials for upstream services.
    pub auth: AuthHandle,
    /// Signed links to the web connect pages (`serve` sets their address once bound).
    pub connect_links: Arc<ConnectLinks>,
    budget: Arc<InFlightBudget>,
    directory: Arc<Directory>,
    supervisor: Addr<Supervisor>,
    upstream: reqwest::Client,
    /// Where records of served calls go.
    pub audit: Arc<Audit>,
    /// Long-running calls kept as tasks, per principal.
    pub tasks: Arc<TaskStore>,
    /// The cluster this node is part of; `None` on a single node.
    pub cluster: Option<Arc<Cluster>>,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Client(#[from] upstream::ClientError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Runtime {
    /// Starts the supervisor on the current arbiter; server actors go onto `arbiters` (or the
    /// current arbiter when the list is empty). Must run inside an actix system. Fails only
    /// when the upstream HTTP client cannot be built.
    pub fn start(
        settings: Arc<Settings>,
        registry: Arc<ServerRegistry>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Result<Runtime, StartError> {
        let directory = Arc::new(Directory::default());
        let metrics = Arc::new(Metrics::new());
        let upstream = Upstream::from_settings(&settings, metrics.clone())?;
        let audit = Arc::new(Audit::from_settings(&settings.audit, metrics.clone())?);
        let cluster = Cluster::from_settings(&settings.cluster).map(Arc::new);
        let supervisor = Supervisor::new(
            registry.clone(),
            directory.clone(),
            settings.runtime.clone(),
            arbiters,
            upstream.clone(),
            metrics.clone(),
            HostedRuntime::new(
                settings.hosted.clone(),
                settings.runtime.max_restarts_per_minute,
                metrics.clone(),
            ),
        )
        .in_cluster(cluster.clone())
        .start();
        let seal_ttl = std::time::Duration::from_secs(settings.protocol.request_state_ttl_secs);
        let upstream_client = upstream.client.clone();
        let auth = AuthHandle::start(
            auth_actor(&settings, &registry, upstream.client, metrics.clone())?
                .in_cluster(cluster.clone()),
        );
        let link_ttl = std::time::Duration::from_secs(settings.http.connect_link_secs);
        // In a cluster what is sealed for a client must open on every node; without the shared
        // keys the node does not start.
        let (seal, connect_links) = match &cluster {
            Some(_) => {
                let keys = settings.cluster.shared_keys()?;
                let refused = |_| crate::config::ConfigError::Invalid {
                    key: "cluster.shared_keys",
                    value: "(not shown)".to_owned(),
                    allowed: "keys the request-state keyring accepts",
                };
                (
                    StateSeal::with_codec(
                        crate::cluster::keys::keyring(&keys, "request-state").map_err(refused)?,
                        seal_ttl,
                    ),
                    ConnectLinks::shared(&keys, link_ttl).map_err(refused)?,
                )
            }
            None => (StateSeal::random(seal_ttl), ConnectLinks::random(link_ttl)),
        };
        let tasks = Arc::new(TaskStore::new(settings.tasks.clone(), metrics.clone()));
        let budget = Arc::new(
            InFlightBudget::new(settings.runtime.max_in_flight_per_user, metrics.clone())
                .in_cluster(cluster.clone()),
        );
        Ok(Runtime(Arc::new(RuntimeParts {
            auth,
            connect_links: Arc::new(connect_links),
            tasks,
            cluster,
            seal: Arc::new(seal),
            budget,
            metrics,
            settings,
            registry,
            directory,
            supervisor,
            upstream: upstream_client,
            audit,
        })))
    }

    /// The pooled client for everything upstream (credential APIs included).
    pub fn upstream_client(&self) -> reqwest::Client {
        self.upstream.clone()
    }

    /// `principal`'s instance of `server`, started on first use.
    pub async fn server(
        &self,
        server: &str,
        principal: Principal,
    ) -> Result<ServerHandle, McpError> {
        self.server_of(ServerKey {
            server: Arc::from(server),
            principal,
        })
        .await
    }

    /// [`Runtime::server`] for a key the caller already holds (no allocation on a hit).
    pub async fn server_of(&self, key: ServerKey) -> Result<ServerHandle, McpError> {
        let core = match self.directory.live_server(&key) {
            Some(core) => core,
            None => self
                .supervisor
                .send(GetServer { key: key.clone() })
                .await
                .map_err(|_| McpError::internal("the runtime is shutting down"))?
                .map_err(|err: LookupError| McpError::invalid_params(err.to_string()))?,
        };
        Ok(ServerHandle {
            key,
            core,
            runtime: self.clone(),
        })
    }

    /// Number of live server actors.
    pub async fn live_servers(&self) -> usize {
        self.supervisor.send(CountLive).await.unwrap_or(0)
    }

    /// Number of live server actors, read from the directory without asking the supervisor.
    pub fn live_servers_now(&self) -> usize {
        self.directory.live_count()
    }
}

/// A session's (or a 2026-07-28 listen's) subscriptions and log level at a server that passes
/// them on (a hosted server), under a name unique in the process; dropping it — the session or
/// listen ended — lets go of them at the live instance. Made with the session (or listen), so
/// no request that passes something on can leave it behind.
pub struct Interest {
    runtime: Runtime,
    key: ServerKey,
    holder: u64,
}

impl Interest {
    pub fn new(runtime: &Runtime, key: &ServerKey) -> Interest {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Interest {
            runtime: runtime.clone(),
            key: key.clone(),
            holder: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The name the server keeps it under.
    pub fn holder(&self) -> u64 {
        self.holder
    }
}

impl std::fmt::Debug for Interest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interest")
            .field("server", &self.key.server)
            .field("holder", &self.holder)
            .finish()
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        if let Some(core) = self.runtime.directory.live_server(&self.key) {
            core.release(self.holder);
        }
    }
}

/// A user's server instance, as async calls that run on the caller's task. It re-finds the
/// instance if the old one was retired (idle), so holders may keep it for as long as they like.
#[derive(Clone)]
pub struct ServerHandle {
    key: ServerKey,
    core: Arc<ServerCore>,
    runtime: Runtime,
}

impl ServerHandle {
    /// The live instance, looked up again if this one's actor stopped.
    async fn core(&mut self) -> Result<Arc<ServerCore>, McpError> {
        if !self.core.is_live() {
            let fresh = self.runtime.server_of(self.key.clone()).await?;
            self.core = fresh.core;
        }
        Ok(self.core.clone())
    }

    /// The instance, with a place in the user's share for a call that runs server code (and
    /// usually the upstream).
    async fn admitted(&mut self) -> Result<(Arc<ServerCore>, Permit), McpError> {
        let core = self.core().await?;
        let permit = self
            .runtime
            .budget
            .admit(&self.key.principal, &core.in_flight_gauge)?;
        Ok((core, permit))
    }

    /// Readies the instance for a caller with these credentials (a hosted server's child).
    pub async fn prepare(
        &mut self,
        credentials: &Arc<dyn CredentialSource>,
    ) -> Result<(), CallError> {
        self.core().await?.prepare(credentials).await
    }

    /// Passes a session's subscription (or its end) to the instance.
    pub async fn subscribe(
        &mut self,
        holder: u64,
        uri: &str,
        subscribed: bool,
    ) -> Result<(), McpError> {
        self.core().await?.subscribe(holder, uri, subscribed).await
    }

    /// Passes a session's log level to the instance.
    pub async fn set_log_level(&mut self, holder: u64, level: LogLevel) -> Result<(), McpError> {
        self.core().await?.set_log_level(holder, level).await
    }

    pub async fn describe(&mut self) -> Result<ServerDescription, McpError> {
        Ok(self.core().await?.describe())
    }

    pub async fn tools(&mut self) -> Result<Arc<Vec<Tool>>, McpError> {
        Ok(self.core().await?.tools())
    }

    pub async fn call_tool(
        &mut self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let (core, _permit) = self.admitted().await?;
        core.call_tool(name, arguments, ctx).await
    }

    pub async fn resources(&mut self, ctx: RequestContext) -> Result<Vec<Resource>, CallError> {
        let (core, _permit) = self.admitted().await?;
        core.resources(ctx).await
    }

    /// Whether `tool` may run as a task.
    pub async fn task_support(&mut self, tool: &str) -> Result<TaskSupport, McpError> {
        Ok(self.core().await?.task_support(tool))
    }

    pub async fn resource_templates(&mut self) -> Result<Vec<ResourceTemplate>, McpError> {
        Ok(self.core().await?.resource_templates())
    }

    pub async fn read_resource(
        &mut self,
        uri: String,
        ctx: RequestContext,
    ) -> Result<ReadResourceResult, CallError> {
        let (core, _permit) = self.admitted().await?;
        core.read_resource(uri, ctx).await
    }

    pub async fn prompts(&mut self) -> Result<Vec<Prompt>, McpError> {
        Ok(self.core().await?.prompts())
    }

    pub async fn get_prompt(
        &mut self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<GetPromptResult, CallError> {
        let (core, _permit) = self.admitted().await?;
        core.get_prompt(name, arguments, ctx).await
    }

    pub async fn complete(
        &mut self,
        params: CompleteRequestParams,
        ctx: RequestContext,
    ) -> Result<CompleteResult, CallError> {
        let (core, _permit) = self.admitted().await?;
        core.complete(params, ctx).await
    }

    /// Announces `event` to the listeners of this instance's events.
    pub async fn announce(&mut self, event: ServerEvent) -> Result<(), McpError> {
        self.core().await?.announce(event);
        Ok(())
    }

    pub async fn watch_events(&mut self) -> Result<broadcast::Receiver<ServerEvent>, McpError> {
        Ok(self.core().await?.watch_events())
    }
}

/// The auth actor for these settings: the configured store, the shared upstream client, and
/// the token (or refresh) endpoints the servers' manifests declare.
fn auth_actor(
    settings: &Settings,
    registry: &ServerRegistry,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
) -> Result<AuthActor, crate::config::ConfigError> {
    let auth = &settings.auth;
    let store = crate::auth::configured_store(settings, &client)?;
    let token_urls = registry
        .entries()
        .filter_map(|entry| {
            let manifest = &entry.manifest;
            let url =
                (manifest.auth.refresh_url.clone()).or_else(|| manifest.auth.token_url.clone())?;
            Some((manifest.auth_service().to_owned(), url))
        })
        .collect();
    let basic_client_auth = registry
        .entries()
        .filter(|entry| entry.manifest.auth.provider.basic_client_auth())
        .map(|entry| entry.manifest.auth_service().to_owned())
        .collect();
    let session_urls = registry
        .entries()
        .filter_map(|entry| {
            let manifest = &entry.manifest;
            let session = manifest.auth.session.as_ref()?;
            Some((
                manifest.auth_service().to_owned(),
                session.refresh_url.clone(),
            ))
        })
        .collect();
    let token_grants = registry
        .entries()
        .map(|entry| &entry.manifest)
        .filter(|manifest| {
            manifest.auth.kind == crate::servers::manifest::AuthKind::ClientCredentials
                || !manifest.auth.fields.is_empty()
        })
        .map(|manifest| {
            let grant = crate::actors::auth::TokenGrant {
                fields: manifest.auth.fields.clone().into(),
                client_credentials: manifest.auth.kind
                    == crate::servers::manifest::AuthKind::ClientCredentials,
            };
            (manifest.auth_service().to_owned(), grant)
        })
        .collect();
    Ok(AuthActor::new(
        store,
        client,
        settings.servers.max_response_bytes,
        token_urls,
        i64::try_from(auth.refresh_margin_secs).unwrap_or(i64::MAX),
    )
    .counting_refreshes_in(metrics)
    .with_basic_client_auth(basic_client_auth)
    .with_session_refresh(session_urls)
    .with_token_grants(token_grants))
}
