//! The multi-user HTTP service (`gumcp-actors serve`), on actix-web.
//!
//! - [`legacy_sse`] — guMCP's HTTP+SSE routes (MCP 2024-11-05).
//! - [`streamable`] — Streamable HTTP: sessions of the 2025 revisions and stateless 2026-07-28
//!   requests on the same endpoint.
//! - [`sessions`] — the table of live sessions and its caps; [`replay`] — the resumable streams
//!   of a Streamable session.
//! - [`events`] — outgoing messages as an SSE body.
//! - [`connect`] — the web connect pages under `/connect`, where users connect their own
//!   accounts; [`pages`] — their HTML and the headers every one carries.
//! - [`router`] — which MCP route a path is; [`guard`] — Origin/Host checks; [`reply`] — shared responses and the body limit;
//!   [`session_key`] — guMCP's `user_id[:api_key]` path segment; [`peer`] — where a request
//!   comes from (forwarding headers believed from trusted proxies only).
//!
//! Every connection gets a session actor of its own (an SSE stream, a Streamable session, or a
//! single 2026-07-28 request); the actor ends when the connection does.
//!
//! A client that goes away is noticed by actix-web itself, on every platform: with half-closed
//! connections refused, the FIN (or RST) of a client that closed its socket, exited or was
//! killed ends its connection as soon as it arrives, which drops the handler or the response
//! body that stands for the session or call. By default actix-web keeps serving a connection
//! whose client has stopped sending, and learns of the close only when a write fails
//! (actix/actix-web#1313) — for an idle SSE stream, the second keep-alive after it.

mod connect;
/// Public (hidden from the docs) only for the SSE framing micro-benchmark in `benches/`.
#[doc(hidden)]
pub mod events;
mod forward;
mod guard;
mod legacy_sse;
mod pages;
mod peer;
mod replay;
mod reply;
mod router;
/// Public (hidden from the docs) only so the fuzz targets in `fuzz/` can reach the parser.
#[doc(hidden)]
pub mod session_key;
mod sessions;
mod streamable;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Serialize;

use crate::actors::runtime::Runtime;
use crate::auth::access::{Caller, CallerAccess};
use crate::auth::resource_server::ResourceServer;
use crate::config::AccessMode;
use crate::telemetry;
use guard::OriginPolicy;
use peer::TrustedProxies;
use router::McpRoute;
use session_key::SessionKey;
use sessions::SessionTable;

pub use session_key::SessionKeyError;

/// Where `serve` ended up listening.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub api: SocketAddr,
    pub metrics: SocketAddr,
}

/// Why the service could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for {what} on {address}: {source} (set {setting} or --{flag})")]
    Bind {
        what: &'static str,
        address: String,
        setting: &'static str,
        flag: &'static str,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Server(#[from] std::io::Error),
    #[error(transparent)]
    Client(#[from] crate::upstream::ClientError),
}

/// What every handler shares.
pub struct HttpState {
    runtime: Runtime,
    sessions: Arc<SessionTable>,
    max_body: usize,
    keep_alive: Duration,
    replay_events: usize,
    outbound_buffer: usize,
    body_timeout: Duration,
    access: CallerAccess,
    /// Open access that the operator did not extend to the network: only requests from this
    /// machine may act as the user their path names.
    open_for_local_only: bool,
    trusted_proxies: TrustedProxies,
    /// OAuth sign-ins started on the connect pages, waiting for the provider's answer.
    sign_ins: connect::PendingSignIns,
    /// Cluster mode: passes requests for other nodes' sessions on.
    forwarder: Option<forward::Forwarder>,
}

/// The server and caller a request is for.
pub struct Target {
    server: Arc<str>,
    caller: Caller,
    /// The session key the path named, if it named one.
    key: Option<SessionKey>,
}

impl Target {
    /// The session key as guMCP writes it back in the `endpoint` event (made only for the
    /// legacy stream that needs it, not on every request).
    fn quoted_key(&self) -> String {
        self.key.as_ref().map_or_else(
            || self.caller.principal.user.to_string(),
            SessionKey::quoted,
        )
    }
}

impl HttpState {
    fn body_limits(&self) -> reply::BodyLimits<'_> {
        reply::BodyLimits {
            max_bytes: self.max_body,
            timeout: self.body_timeout,
            metrics: &self.runtime.metrics,
        }
    }

    /// The target of a request on any route with `{server}` and, optionally, `{session_key}`.
    /// Decided from the request's head alone, before any body is read.
    #[allow(clippy::result_large_err)]
    async fn route_target(&self, request: &HttpRequest) -> Result<Target, HttpResponse> {
        let Some(route) = McpRoute::of(request.match_info().as_str()) else {
            return Err(reply::plain(StatusCode::NOT_FOUND, "Not Found"));
        };
        let target = self.target(request, route.server(), route.session_key())?;
        match self.access.vouch(target.caller).await {
            Ok(caller) => Ok(Target { caller, ..target }),
            Err(denied) if denied.is_transient() => Err(reply::busy(denied)),
            Err(denied) => Err(reply::unauthorized(
                &denied.to_string(),
                &self.access.challenge(&denied),
                false,
            )),
        }
    }

    /// Resolves the server name and the caller (see [`CallerAccess`]): 404 for an unknown
    /// server, 400 for a malformed session key, 401 when the access rules say no, 403 for a
    /// request from beyond this machine while access is open to local callers only.
    #[allow(clippy::result_large_err)]
    fn target(
        &self,
        request: &HttpRequest,
        server: &str,
        key: Option<&str>,
    ) -> Result<Target, HttpResponse> {
        let Some(entry) = self.runtime.registry.get(server) else {
            return Err(reply::unknown_server(
                server,
                &self.runtime.registry.names(),
            ));
        };
        let server = entry.name.clone();
        tracing::Span::current().record("server", &*server);
        if self.open_for_local_only && !self.trusted_proxies.is_local(request) {
            return Err(reply::plain(
                StatusCode::FORBIDDEN,
                "Forbidden: access is open (the path names the user), which serves this \
                 machine only, and this request came from elsewhere or through a proxy; set \
                 access.mode to api_keys, remote or oauth (or list the proxy in \
                 http.trusted_proxies, or set access.allow_open_on_network)",
            ));
        }
        let key = key
            .map(SessionKey::parse)
            .transpose()
            .map_err(|err| reply::plain(StatusCode::BAD_REQUEST, format!("Bad Request: {err}")))?;
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        let path = key
            .as_ref()
            .map(|key| (key.user_id.as_str(), key.api_key.as_deref()));
        let caller = self
            .access
            .caller(path, bearer, request.path())
            .map_err(|denied| {
                reply::unauthorized(
                    &denied.to_string(),
                    &self.access.challenge(&denied),
                    denied.is_forbidden(),
                )
            })?;
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record(
                "user",
                telemetry::user_label(&caller.principal.user).as_str(),
            );
        }
        Ok(Target {
            server,
            caller,
            key,
        })
    }
}

/// A span around every request (`http.request`: method, route shape, then server, user,
/// status and duration), a child of the caller's W3C `traceparent` if it sent one.
async fn traced(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = match request.path() {
        "/" => "/",
        "/health_check" => "/health_check",
        path if path.starts_with("/.well-known/") => "/.well-known/…",
        path if path == "/connect" || path.starts_with("/connect/") => "/connect/…",
        path => McpRoute::of(path).map_or("other", |route| route.label()),
    };
    let span = tracing::info_span!(
        "http.request",
        http.method = %request.method(),
        http.route = route,
        server = tracing::field::Empty,
        user = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let headers = request.headers();
    telemetry::adopt_parent(&span, |name| {
        headers.get(name).and_then(|value| value.to_str().ok())
    });
    let started = Instant::now();
    let response = next.call(request).instrument(span.clone()).await;
    if let Ok(response) = &response {
        span.record("http.status_code", response.status().as_u16());
    }
    span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
    response
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// The static routes; every other path goes to [`router::mcp`], which tells the MCP routes
/// apart without the regular expressions actix-router would run for `{parameter}` patterns.
/// The well-known documents sit in a scope, so only requests under `/.well-known` meet their
/// pattern.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(health_root))
        .service(
            web::scope("/.well-known")
                .route(
                    "/oauth-protected-resource",
                    web::get().to(resource_metadata),
                )
                .route(
                    "/oauth-protected-resource/{path:.*}",
                    web::get().to(resource_metadata),
                )
                .default_service(web::to(not_found)),
        )
        .route("/health_check", web::get().to(health_check))
        .configure(connect::routes)
        .default_service(web::to(router::mcp));
}

async fn not_found() -> HttpResponse {
    reply::plain(StatusCode::NOT_FOUND, "Not Found")
}

/// The health answers, with guMCP's fields in guMCP's order.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    servers: Vec<String>,
    /// Cluster mode only (guMCP's shape is unchanged on a single node).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterHealth>,
    /// Stores with a database of their own only (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_store: Option<StoreHealth>,
}

/// The credential store's database as this node reaches it.
#[derive(Serialize)]
struct StoreHealth {
    backend: &'static str,
    /// `up` when it answered `SELECT 1` within a second, else `down`.
    status: &'static str,
}

/// The credential store's health, when its backend has a service to ask.
async fn store_health(runtime: &Runtime) -> Option<StoreHealth> {
    let up = runtime.auth.store_reachable().await?;
    Some(StoreHealth {
        backend: runtime.settings.auth.backend.name(),
        status: if up { "up" } else { "down" },
    })
}

/// This node's view of the cluster.
#[derive(Serialize)]
struct ClusterHealth {
    node_id: String,
    /// `up` when Redis answered a `PING` within `cluster.redis_timeout_ms`, else `down`.
    redis: &'static str,
    /// The nodes this node last saw alive (itself included once registered).
    members: Vec<crate::cluster::membership::Node>,
}

/// `GET /` as guMCP answers it.
async fn health_root(state: web::Data<HttpState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        message: Some("guMCP server running"),
        servers: state.runtime.registry.names(),
        cluster: None,
        credential_store: None,
    })
}

/// `GET /health_check` as guMCP answers it; in cluster mode with the node's view of the
/// cluster too, and with a database-backed credential store its reachability. A Redis or
/// PostgreSQL that is down does not make the node unhealthy: its own sessions and stateless
/// requests are still served, and cached credentials until they expire.
async fn health_check(state: web::Data<HttpState>) -> HttpResponse {
    let cluster = match &state.runtime.cluster {
        Some(cluster) => Some(ClusterHealth {
            node_id: cluster.node_id().to_owned(),
            redis: if cluster.redis_healthy().await {
                "up"
            } else {
                "down"
            },
            members: cluster.members(),
        }),
        None => None,
    };
    HttpResponse::Ok().json(Health {
        status: "ok",
        message: None,
        servers: state.runtime.registry.names(),
        cluster,
        credential_store: store_health(&state.runtime).await,
    })
}

/// RFC 9728 metadata (only in `oauth` access mode).
async fn resource_metadata(request: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    match state
        .access
        .resource_metadata(request.match_info().get("path"))
    {
        Some(metadata) => HttpResponse::Ok().json(metadata),
        None => reply::plain(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn metrics(runtime: web::Data<Runtime>) -> HttpResponse {
    runtime
        .metrics
        .live_actors
        .with_label_values(&["server"])
        .set(runtime.live_servers_now() as i64);
    if let Some(cluster) = &runtime.cluster {
        let (metrics, node) = (&runtime.metrics, [cluster.node_id()]);
        metrics.cluster_node.with_label_values(&node).set(1);
        metrics
            .cluster_members
            .with_label_values(&node)
            .set(cluster.members().len() as i64);
        metrics
            .cluster_redis_up
            .with_label_values(&node)
            .set(i64::from(cluster.redis_healthy().await));
    }
    if let Some(store) = store_health(&runtime).await {
        (runtime.metrics.credential_store_up)
            .with_label_values(&[store.backend])
            .set(i64::from(store.status == "up"));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(runtime.metrics.render())
}

/// Connections the kernel queues until they are accepted (std's `bind` asks for 128): a burst
/// of clients connecting at once, such as every SSE client reconnecting after a restart, waits
/// in the queue instead of having its SYNs dropped and retried a second later. The kernel caps
/// it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

fn bind(
    host: &str,
    port: u16,
    what: &'static str,
    setting: &'static str,
    flag: &'static str,
) -> Result<TcpListener, ServeError> {
    let listening = TcpListener::bind((host, port)).and_then(|listener| {
        socket2::SockRef::from(&listener).listen(LISTEN_BACKLOG)?;
        Ok(listener)
    });
    listening.map_err(|source| ServeError::Bind {
        what,
        address: format!("{host}:{port}"),
        setting,
        flag,
        source,
    })
}

/// Runs the service until SIGTERM or SIGINT (Ctrl-C off unix), then drains: no new
/// connections, requests in flight get `runtime.shutdown_grace_secs` to finish, streams are
/// closed, and it returns.
/// `on_bound` learns the listening addresses once both ports are bound.
pub async fn serve(runtime: Runtime, on_bound: impl FnOnce(Bound)) -> Result<(), ServeError> {
    let settings = runtime.settings.clone();
    let http = &settings.http;
    let api_listener = bind(&http.host, http.port, "HTTP", "http.port", "port")?;
    let metrics_listener = bind(
        &http.host,
        http.metrics_port,
        "metrics",
        "http.metrics_port",
        "metrics-port",
    )?;
    let bound = Bound {
        api: api_listener.local_addr()?,
        metrics: metrics_listener.local_addr()?,
    };
    let grace = Duration::from_secs(settings.runtime.shutdown_grace_secs);
    let tokens = match (&settings.access.oauth, settings.access_mode()) {
        (Some(oauth), AccessMode::Oauth) => {
            let client =
                crate::upstream::client(Duration::from_secs(settings.auth.upstream_timeout_secs))?;
            let server = ResourceServer::new(oauth.clone(), client);
            server.refresh().await;
            server.keep_fresh();
            Some(server)
        }
        _ => None,
    };
    let cluster = runtime.cluster.clone();
    let sessions = Arc::new(
        SessionTable::new(
            http.max_sessions,
            http.max_sessions_per_user,
            runtime.metrics.clone(),
        )
        .in_cluster(cluster.clone()),
    );
    let forwarder = cluster
        .clone()
        .map(|cluster| {
            forward::Forwarder::new(
                cluster,
                Duration::from_secs(settings.protocol.client_request_timeout_secs),
                runtime.metrics.clone(),
            )
        })
        .transpose()?;
    let sign_in_ttl = Duration::from_secs(http.connect_link_secs);
    // A clustered node has its shared keys: the runtime refused to start without them.
    let sign_ins = match (&cluster, settings.cluster.shared_keys()) {
        (Some(cluster), Ok(keys)) => {
            connect::PendingSignIns::in_cluster(sign_in_ttl, cluster.clone(), &keys)
        }
        _ => connect::PendingSignIns::here(sign_in_ttl),
    };
    let access = CallerAccess::from_settings(
        &settings,
        tokens,
        crate::auth::configured_verifier(&settings, &runtime.upstream_client()),
    );
    if access.mode() == AccessMode::Open {
        tracing::warn!(
            local_only = !settings.access.allow_open_on_network,
            "access is open: every request acts as whichever user its path names; set \
             access.mode for anything but a single-user machine"
        );
    }
    let state = web::Data::new(HttpState {
        runtime: runtime.clone(),
        sessions: sessions.clone(),
        max_body: settings.protocol.max_message_bytes,
        keep_alive: Duration::from_secs(http.keep_alive_secs),
        replay_events: http.replay_events,
        outbound_buffer: settings.protocol.outbound_buffer,
        body_timeout: Duration::from_secs(http.body_timeout_secs),
        open_for_local_only: access.mode() == AccessMode::Open
            && !settings.access.allow_open_on_network,
        access,
        trusted_proxies: TrustedProxies::parse(&http.trusted_proxies),
        sign_ins,
        forwarder,
    });
    let origins = web::Data::new(OriginPolicy::from_settings(http));
    let metrics_origins = origins.clone();
    let api = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(origins.clone())
            .wrap(from_fn(guard::check))
            .wrap(from_fn(traced))
            .configure(routes)
    })
    .workers(http.worker_count())
    .tcp_nodelay(true)
    // How a client's leaving is noticed (see the module docs). The cost: an HTTP/1 client that
    // shuts down its sending side after its request (`nc -N`, a few HTTP/1.0 tools) gets no
    // answer; the MCP SDKs' clients, browsers and curl keep it open.
    .h1_allow_half_closed(false)
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(api_listener)?
    .run();
    let metrics_runtime = web::Data::new(runtime.clone());
    // Same guard as the API: a page rebinding its own name to this address must not read the
    // metrics either.
    let metrics_server = HttpServer::new(move || {
        App::new()
            .app_data(metrics_runtime.clone())
            .app_data(metrics_origins.clone())
            .wrap(from_fn(guard::check))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(metrics_listener)?
    .run();
    if http.connect_pages && !runtime.auth.connects_here() {
        tracing::warn!(
            "the connect pages are off: the credential store is read-only here (connect \
             accounts through it)"
        );
    } else if http.connect_pages {
        match &http.public_url {
            Some(public) => runtime.connect_links.set_base(public),
            None if http.binds_loopback() => runtime
                .connect_links
                .set_base(&format!("http://{}", bound.api)),
            None => tracing::warn!(
                "the connect pages are off: http.public_url is unset and the service is not                  on loopback"
            ),
        }
    }
    let api_handle = api.handle();
    let metrics_handle = metrics_server.handle();
    let api_task = actix_rt::spawn(api);
    let metrics_task = actix_rt::spawn(metrics_server);
    on_bound(bound);
    tracing::info!(address = %bound.api, metrics = %bound.metrics, "serving");

    let heartbeat = cluster.as_ref().map(|cluster| {
        let advertised = settings
            .cluster
            .advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", bound.api));
        cluster.relay_events();
        cluster.keep_membership(advertised)
    });
    let sweeper = actix_rt::spawn(sweep(
        sessions.clone(),
        Duration::from_secs(http.session_idle_secs),
        Duration::from_secs(http.detached_session_secs),
    ));
    shutdown_signal().await;
    tracing::info!(
        sessions = sessions.len(),
        grace_secs = grace.as_secs(),
        "shutting down: draining"
    );
    sweeper.abort();
    if let (Some(cluster), Some(heartbeat)) = (&cluster, heartbeat) {
        heartbeat.abort();
        cluster.leave().await;
    }
    sessions.drain_all(grace);
    let stopped = api_handle.stop(true);
    if tokio::time::timeout(grace + Duration::from_secs(1), stopped)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    sessions.clear();
    metrics_handle.stop(false).await;
    let _ = api_task.await;
    let _ = metrics_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Ends idle, detached and dead sessions now and then.
async fn sweep(sessions: Arc<SessionTable>, idle: Duration, detached: Duration) {
    let period = (idle.min(detached) / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        sessions.sweep(idle, detached);
    }
}

/// Resolves when the service is asked to stop: SIGTERM (what service managers and container
/// runtimes send) or SIGINT on unix; Ctrl-C elsewhere (Windows has no SIGTERM).
#[cfg(unix)]
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot listen for SIGTERM; stopping on Ctrl-C only");
            ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() {
    ctrl_c().await;
}

async fn ctrl_c() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!(%err, "cannot listen for Ctrl-C; stop the process to stop serving");
        std::future::pending::<()>().await;
    }
}
