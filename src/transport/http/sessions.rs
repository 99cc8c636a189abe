//! The live HTTP sessions: legacy SSE streams and Streamable HTTP sessions (2025 revisions),
//! by session id, with the caps on how many there may be in all and per user. Removing an
//! entry — for any reason — stops its session actor, frees its seat and moves the gauge, so
//! every way a session ends goes through the same code.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

use super::replay::StreamHub;
use crate::actors::session::SessionHandle;
use crate::auth::principal::Principal;
use crate::cluster::membership::NodeTag;
use crate::cluster::Cluster;
use crate::metrics::{Metrics, Rejection};

/// A random session id whose first four bytes are `tag`.
fn tagged_id(tag: NodeTag) -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[..4].copy_from_slice(&tag);
    Uuid::from_bytes(bytes)
}

/// The node tag in a session id (meaningful in cluster mode only).
pub fn tag_in(id: &Uuid) -> NodeTag {
    let bytes = id.as_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// Which transport a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    LegacySse,
    Streamable,
}

/// One live session.
pub struct Entry {
    pub server: Arc<str>,
    pub principal: Principal,
    pub kind: SessionKind,
    pub session: SessionHandle,
    /// Streamable sessions only: their streams, kept for resumption.
    pub streams: Option<Arc<StreamHub>>,
    last_seen: AtomicU64,
    /// Requests being handled right now (a session is never swept from under one).
    in_use: AtomicUsize,
    epoch: Instant,
    _seat: Seat,
    metrics: Arc<Metrics>,
}

impl Entry {
    fn touch(&self) {
        self.last_seen
            .store(self.epoch.elapsed().as_secs(), Ordering::Relaxed);
    }

    /// Marks the session as in use until the guard drops (then as used just now).
    pub fn hold(self: &Arc<Self>) -> InUse {
        self.in_use.fetch_add(1, Ordering::AcqRel);
        InUse(self.clone())
    }

    /// Whether the sweep should end this session: no request for `idle`, or — with no stream
    /// open to the client — for `detached`; never while a request is being handled.
    fn expired(&self, now: u64, idle: Duration, detached: Duration) -> bool {
        if self.kind != SessionKind::Streamable || self.in_use.load(Ordering::Acquire) > 0 {
            return false;
        }
        let idle_for = now.saturating_sub(self.last_seen.load(Ordering::Relaxed));
        let attached = self.streams.as_ref().is_some_and(|hub| hub.has_listener());
        idle_for >= idle.as_secs() || (!attached && idle_for >= detached.as_secs())
    }
}

/// A request being handled by a session (see [`Entry::hold`]).
pub struct InUse(Arc<Entry>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.session.close();
        self.metrics.session_closed(&self.server);
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the server has reached its limit of {0} sessions; retry later")]
    Total(usize),
    #[error(
        "this user has reached the limit of {0} sessions on this node (http.max_sessions_per_user; \
         in a cluster each node admits its share); close one or retry later"
    )]
    PerUser(usize),
}

pub struct SessionTable {
    entries: DashMap<Uuid, Arc<Entry>>,
    /// Sessions of single 2026-07-28 requests: not addressable, but drained at shutdown.
    transient: DashMap<u64, SessionHandle>,
    next_transient: AtomicU64,
    seats: Arc<Seats>,
    metrics: Arc<Metrics>,
    epoch: Instant,
    /// In a cluster, this node's tag, put in the first bytes of every session id so any node
    /// can tell where a session lives (the other 96 bits stay random: still unguessable).
    tag: Option<NodeTag>,
    /// In a cluster, the per-user cap holds across the nodes: each admits its share of it.
    cluster: Option<Arc<Cluster>>,
}

struct Seats {
    total: AtomicUsize,
    per_user: DashMap<Principal, usize>,
    max_total: usize,
    max_per_user: usize,
}

/// A place within the caps, held by the session that took it.
pub struct Seat {
    seats: Arc<Seats>,
    principal: Principal,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.seats.total.fetch_sub(1, Ordering::AcqRel);
        self.seats
            .per_user
            .remove_if_mut(&self.principal, |_, count| {
                *count -= 1;
                *count == 0
            });
    }
}

impl SessionTable {
    pub fn new(max_total: usize, max_per_user: usize, metrics: Arc<Metrics>) -> SessionTable {
        SessionTable {
            entries: DashMap::new(),
            transient: DashMap::new(),
            next_transient: AtomicU64::new(0),
            seats: Arc::new(Seats {
                total: AtomicUsize::new(0),
                per_user: DashMap::new(),
                max_total,
                max_per_user,
            }),
            metrics,
            epoch: Instant::now(),
            tag: None,
            cluster: None,
        }
    }

    /// The same table as a node of `cluster`: session ids carry the node's tag, and each user
    /// gets this node's share of the per-user cap ([`Cluster::share_of`]).
    pub fn in_cluster(self, cluster: Option<Arc<Cluster>>) -> SessionTable {
        SessionTable {
            tag: cluster.as_ref().map(|cluster| cluster.tag()),
            cluster,
            ..self
        }
    }

    /// Takes a seat for `principal` (a user, or a key claiming one: a made-up key cannot take
    /// the seats of the user it names), or says which cap is reached.
    pub fn admit(&self, principal: &Principal) -> Result<Seat, Refused> {
        let seats = &self.seats;
        if seats.total.fetch_add(1, Ordering::AcqRel) >= seats.max_total {
            seats.total.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rejected(Rejection::SessionsTotal);
            return Err(Refused::Total(seats.max_total));
        }
        let max_per_user = match &self.cluster {
            Some(cluster) => cluster.share_of(seats.max_per_user),
            None => seats.max_per_user,
        };
        let mut count = seats.per_user.entry(principal.clone()).or_insert(0);
        if *count >= max_per_user {
            drop(count);
            seats.total.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rejected(Rejection::SessionsPerUser);
            return Err(Refused::PerUser(max_per_user));
        }
        *count += 1;
        Ok(Seat {
            seats: seats.clone(),
            principal: principal.clone(),
        })
    }

    /// Registers a session under a fresh id.
    pub fn insert(
        &self,
        seat: Seat,
        server: Arc<str>,
        kind: SessionKind,
        session: SessionHandle,
        streams: Option<Arc<StreamHub>>,
    ) -> Uuid {
        let id = match self.tag {
            Some(tag) => tagged_id(tag),
            None => Uuid::new_v4(),
        };
        let entry = Arc::new(Entry {
            principal: seat.principal.clone(),
            server,
            kind,
            session,
            streams,
            last_seen: AtomicU64::new(0),
            in_use: AtomicUsize::new(0),
            epoch: self.epoch,
            _seat: seat,
            metrics: self.metrics.clone(),
        });
        entry.touch();
        self.metrics.session_opened(&entry.server);
        self.entries.insert(id, entry);
        id
    }

    /// The session `id` if it exists and belongs to this server, principal and transport — a
    /// session id presented with another user's key, or another key for the same user where
    /// keys partition, is as unknown as a made-up one.
    pub fn find(
        &self,
        id: &Uuid,
        server: &str,
        principal: &Principal,
        kind: SessionKind,
    ) -> Option<Arc<Entry>> {
        let entry = self.entries.get(id).map(|e| e.value().clone())?;
        if &*entry.server != server || entry.principal != *principal || entry.kind != kind {
            return None;
        }
        entry.touch();
        Some(entry)
    }

    /// Ends the session `id` (its actor stops once the last holder lets go of the entry).
    pub fn remove(&self, id: &Uuid) -> bool {
        self.entries.remove(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Ends Streamable sessions that expired (see [`Entry::expired`]) and sessions whose
    /// actor has stopped.
    pub fn sweep(&self, idle: Duration, detached: Duration) {
        let now = self.epoch.elapsed().as_secs();
        self.entries
            .retain(|_, entry| entry.session.is_live() && !entry.expired(now, idle, detached));
    }

    /// Tracks the session of one stateless request (a listen, say) until the returned guard
    /// drops, which also stops the session (the response is over, or its client went away).
    /// It holds `seat` meanwhile: such sessions count against the caps like any other.
    pub fn track_transient(self: &Arc<Self>, seat: Seat, session: SessionHandle) -> TransientGuard {
        let id = self.next_transient.fetch_add(1, Ordering::Relaxed);
        self.transient.insert(id, session.clone());
        TransientGuard {
            table: self.clone(),
            id,
            session,
            _seat: seat,
        }
    }

    /// Shutdown: every session answers what is in flight within `grace`, then stops.
    pub fn drain_all(&self, grace: Duration) {
        for entry in self.entries.iter() {
            entry.session.drain(grace);
        }
        for session in self.transient.iter() {
            session.drain(grace);
        }
    }

    pub fn clear(&self) {
        self.entries.clear();
    }
}

/// Removes a session from the table when dropped: held by the response body of a legacy SSE
/// stream, so the session ends with its connection.
pub struct EvictOnDrop {
    pub table: Arc<SessionTable>,
    pub id: Uuid,
}

impl Drop for EvictOnDrop {
    fn drop(&mut self) {
        self.table.remove(&self.id);
    }
}

/// Holds a stateless request's session open; dropping it ends the session.
pub struct TransientGuard {
    table: Arc<SessionTable>,
    id: u64,
    session: SessionHandle,
    _seat: Seat,
}

impl Drop for TransientGuard {
    fn drop(&mut self) {
        self.table.transient.remove(&self.id);
        self.session.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::principal::KeyDigest;

    #[test]
    fn a_key_claiming_a_user_has_seats_of_its_own() {
        let table = SessionTable::new(10, 2, Arc::new(Metrics::new()));
        let right = Principal::claimed_by("victim", KeyDigest::of("right"));
        let guess = Principal::claimed_by("victim", KeyDigest::of("guess"));
        let held: Vec<Seat> = (0..2).map(|_| table.admit(&guess).unwrap()).collect();
        assert!(matches!(table.admit(&guess), Err(Refused::PerUser(2))));
        assert!(
            table.admit(&right).is_ok(),
            "the guesser did not take the victim's seats"
        );
        drop(held);
        assert!(table.admit(&guess).is_ok());
    }
}
