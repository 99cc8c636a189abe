//! The server actor: the lifecycle of one user's instance of one server.
//!
//! Calls do not pass through it: they run on the caller's task against the shared
//! [`ServerCore`] (see there why). The actor owns what needs one owner — noticing that the
//! instance has been idle for `runtime.server_idle_ttl_secs` and stopping it, which retires the
//! core and takes it out of the directory, so the next request starts a fresh one.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::WeakRecipient;

use super::server_core::ServerCore;

/// How often an idle actor checks whether its time is up.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub struct ServerActor {
    core: Arc<ServerCore>,
    /// Who learns that this instance stopped (the supervisor).
    on_stop: WeakRecipient<ServerStopped>,
}

impl ServerActor {
    pub fn new(core: Arc<ServerCore>, on_stop: WeakRecipient<ServerStopped>) -> Self {
        ServerActor { core, on_stop }
    }
}

/// Sent by a server actor as it stops, so its instance leaves the directory.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServerStopped {
    pub core: Arc<ServerCore>,
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let idle_ttl = self.core.supervision().idle_ttl;
        ctx.run_interval(IDLE_CHECK.min(idle_ttl), move |act, ctx| {
            if act.core.is_idle(idle_ttl) {
                tracing::debug!(server = %act.core.key.server, "stopping idle server actor");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.core.retire();
        if let Some(on_stop) = self.on_stop.upgrade() {
            on_stop.do_send(ServerStopped {
                core: self.core.clone(),
            });
        }
    }
}
