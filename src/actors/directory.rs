//! The lock-free directory: (server, user) → live server actor. Requests read it without a
//! round trip through the supervisor; only the supervisor writes it.

use actix::Addr;
use dashmap::DashMap;

use super::server::ServerActor;
use super::supervisor::ServerKey;

#[derive(Default)]
pub struct Directory {
    pub(super) servers: DashMap<ServerKey, Addr<ServerActor>>,
}

impl Directory {
    /// The actor for `key` if it is alive. The guard is dropped before returning, so no
    /// DashMap lock is ever held across an await.
    pub fn live_server(&self, key: &ServerKey) -> Option<Addr<ServerActor>> {
        self.servers
            .get(key)
            .map(|entry| entry.value().clone())
            .filter(Addr::connected)
    }
}

impl Directory {
    /// How many actors are registered and alive.
    pub fn live_count(&self) -> usize {
        self.servers
            .iter()
            .filter(|entry| entry.value().connected())
            .count()
    }
}
