//! The supervisor: owns the server registry and the table of live per-(server, user) server
//! instances and their actors. It is asked only when an instance must be created or has
//! stopped — requests find a live one through the lock-free [`Directory`] without coming here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::directory::Directory;
use super::server::{ServerActor, ServerStopped};
use super::server_core::{ServerCore, ServerKey, Supervision};
use crate::config::RuntimeSettings;
use crate::metrics::Metrics;
use crate::servers::hosted::HostedRuntime;
use crate::servers::http::Upstream;
use crate::servers::{ServerEvents, ServerInit, ServerRegistry, UserStore};

/// Capacity of each server's change-event channel; a listener that falls further behind skips
/// ahead (list-changed events are idempotent, so skipping loses nothing that matters).
const EVENT_CHANNEL_CAPACITY: usize = 64;

/// Why no server actor could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("unknown server {name:?}; available: {}", available.join(", "))]
    UnknownServer {
        name: String,
        available: Vec<String>,
    },
}

/// What outlives a server actor: the user's data and the event channel sessions listen on.
/// Kept while its instance lives, and after only while it holds data or has listeners — so
/// callers who come once and store nothing leave nothing behind.
struct Lasting {
    store: Arc<UserStore>,
    events: ServerEvents,
}

impl Lasting {
    fn worth_keeping(&self) -> bool {
        self.store.holds_data_here() || self.events.has_listeners()
    }
}

pub struct Supervisor {
    registry: Arc<ServerRegistry>,
    directory: Arc<Directory>,
    settings: RuntimeSettings,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    lasting: HashMap<ServerKey, Lasting>,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    hosted: HostedRuntime,
    /// Cluster mode: relays each event channel's changes to and from the other nodes.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Supervisor {
    /// `arbiters` are the threads server actors are spread over (round robin).
    pub fn new(
        registry: Arc<ServerRegistry>,
        directory: Arc<Directory>,
        settings: RuntimeSettings,
        arbiters: Vec<ArbiterHandle>,
        upstream: Upstream,
        metrics: Arc<Metrics>,
        hosted: HostedRuntime,
    ) -> Self {
        Supervisor {
            hosted,
            upstream,
            metrics,
            registry,
            directory,
            settings,
            arbiters,
            next_arbiter: 0,
            lasting: HashMap::new(),
            cluster: None,
        }
    }

    /// The same supervisor, whose event channels reach the other nodes of `cluster`.
    pub fn in_cluster(self, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        Supervisor { cluster, ..self }
    }

    fn start_server(
        &mut self,
        key: ServerKey,
        ctx: &mut Context<Self>,
    ) -> Result<Arc<ServerCore>, LookupError> {
        let entry =
            self.registry
                .get(&key.server)
                .cloned()
                .ok_or_else(|| LookupError::UnknownServer {
                    name: key.server.to_string(),
                    available: self.registry.names(),
                })?;
        let cluster = self.cluster.as_ref();
        let lasting = self.lasting.entry(key.clone()).or_insert_with(|| {
            let events = ServerEvents::new(EVENT_CHANNEL_CAPACITY);
            if let Some(cluster) = cluster {
                cluster.events().attach(&key, &events);
            }
            let max_bytes = self.settings.max_store_bytes_per_user;
            let store = match cluster {
                Some(cluster) => UserStore::in_cluster(cluster.clone(), &key, max_bytes),
                None => UserStore::new(max_bytes),
            };
            Lasting {
                store: Arc::new(store),
                events,
            }
        });
        let init = ServerInit {
            manifest: entry.manifest.clone(),
            user_id: key.principal.user.clone(),
            principal: key.principal.clone(),
            store: lasting.store.clone(),
            events: lasting.events.clone(),
            upstream: Upstream {
                server: key.server.clone(),
                ..self.upstream.clone()
            },
            hosted: self.hosted.clone(),
        };
        let supervision = Supervision {
            idle_ttl: Duration::from_secs(self.settings.server_idle_ttl_secs),
            max_restarts_per_minute: self.settings.max_restarts_per_minute,
            metrics: self.metrics.clone(),
        };
        let core = Arc::new(ServerCore::new(key.clone(), entry, init, supervision));
        let on_stop = ctx.address().downgrade().recipient();
        let actor_core = core.clone();
        let make = move |_: &mut Context<ServerActor>| ServerActor::new(actor_core, on_stop);
        match self
            .arbiters
            .get(self.next_arbiter % self.arbiters.len().max(1))
        {
            Some(arbiter) => ServerActor::start_in_arbiter(arbiter, make),
            None => ServerActor::create(make),
        };
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        self.metrics.user_states.set(self.lasting.len() as i64);
        tracing::debug!(server = %key.server, "server actor started");
        self.directory.servers.insert(key, core.clone());
        Ok(core)
    }
}

impl Supervisor {
    /// Forgets the states of stopped instances that no longer hold anything (their last
    /// listener left after the instance stopped).
    fn forget_unused(&mut self) {
        let directory = &self.directory;
        self.lasting
            .retain(|key, lasting| lasting.worth_keeping() || directory.servers.contains_key(key));
        self.metrics.user_states.set(self.lasting.len() as i64);
    }
}

/// How often states left without data or listeners are looked for.
const FORGET_UNUSED_EVERY: Duration = Duration::from_secs(60);

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FORGET_UNUSED_EVERY, |supervisor, _| {
            supervisor.forget_unused()
        });
    }
}

/// Gets the live instance of (server, user), starting it if there is none or the old one
/// stopped.
#[derive(Message)]
#[rtype(result = "Result<Arc<ServerCore>, LookupError>")]
pub struct GetServer {
    pub key: ServerKey,
}

impl Handler<GetServer> for Supervisor {
    type Result = Result<Arc<ServerCore>, LookupError>;

    fn handle(&mut self, get: GetServer, ctx: &mut Self::Context) -> Self::Result {
        if let Some(addr) = self.directory.live_server(&get.key) {
            return Ok(addr);
        }
        self.start_server(get.key, ctx)
    }
}

impl Handler<ServerStopped> for Supervisor {
    type Result = ();

    fn handle(&mut self, stopped: ServerStopped, _: &mut Self::Context) {
        let key = &stopped.core.key;
        self.directory
            .servers
            .remove_if(key, |_, core| Arc::ptr_eq(core, &stopped.core));
        let replaced = self.directory.servers.contains_key(key);
        if !replaced && self.lasting.get(key).is_some_and(|l| !l.worth_keeping()) {
            self.lasting.remove(key);
        }
        self.metrics.user_states.set(self.lasting.len() as i64);
    }
}

/// How many server actors are live (for `servers` output, metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountLive;

impl Handler<CountLive> for Supervisor {
    type Result = usize;

    fn handle(&mut self, _: CountLive, _: &mut Self::Context) -> usize {
        self.directory.live_count()
    }
}
