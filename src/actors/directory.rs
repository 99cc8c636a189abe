//! The lock-free directory: (server, user) → the live shared instance. Requests read it without
//! a round trip through the supervisor; only the supervisor writes it.

use std::sync::Arc;

use dashmap::DashMap;

use super::server_core::{ServerCore, ServerKey};

#[derive(Default)]
pub struct Directory {
    pub(super) servers: DashMap<ServerKey, Arc<ServerCore>>,
}

impl Directory {
    /// The instance for `key` if its actor is alive. The guard is dropped before returning, so
    /// no DashMap lock is ever held across an await.
    pub fn live_server(&self, key: &ServerKey) -> Option<Arc<ServerCore>> {
        self.servers
            .get(key)
            .map(|entry| entry.value().clone())
            .filter(|core| core.is_live())
    }

    /// How many instances are registered and alive.
    pub fn live_count(&self) -> usize {
        self.servers
            .iter()
            .filter(|entry| entry.value().is_live())
            .count()
    }
}
