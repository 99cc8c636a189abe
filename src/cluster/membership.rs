//! Who is in the cluster: every node writes its id and base URL to Redis with an expiry and
//! renews it each [`HEARTBEAT`]; the nodes whose record has not expired are the membership. A
//! node that is killed drops out within [`EXPIRY`]; one that stops cleanly deletes its record
//! at once.
//!
//! Each node keeps the membership it last read, refreshed with every heartbeat, so routing a
//! request to a session's owner costs no Redis round trip. A view older than [`STALE`] — Redis
//! has not answered for that long — is not trusted: requests that need it are refused as
//! [`ClusterError::Unavailable`] (503) until Redis answers again.
//!
//! Keys: `gumcp:node:{id}` (the URL, expiring) and the set `gumcp:nodes` of ids ever seen, from
//! which ids whose record expired are removed as they are noticed.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::{Cluster, ClusterError};

/// How often a node renews its record and rereads the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a record outlives the last heartbeat that wrote it: a node missing three
/// heartbeats in a row is no longer a member.
pub const EXPIRY: Duration = Duration::from_secs(3);
/// How old the last membership read may be before it is no longer trusted.
pub const STALE: Duration = Duration::from_secs(3);
/// How long reads must have succeeded without a break before a node missing from them is
/// taken for gone: every live node has registered again by then (a Redis that came back
/// empty, a node that just started).
pub const SETTLED: Duration = Duration::from_millis(EXPIRY.as_millis() as u64 + 1000);
/// Fewest time between two reads forced by a session whose owner is not in the view (a node
/// that joined since the last heartbeat), so made-up session ids cannot hammer Redis.
const FORCED_READ_GAP: Duration = Duration::from_millis(200);

const NODES: &str = "gumcp:nodes";

fn record_key(id: &str) -> String {
    format!("gumcp:node:{id}")
}

/// The four bytes that stand for a node in the ids of the sessions it holds: the start of the
/// SHA-256 of its id, so every node computes every other node's tag from membership alone.
pub type NodeTag = [u8; 4];

/// The tag of the node called `id`.
pub fn tag_of(id: &str) -> NodeTag {
    let digest = Sha256::digest(id.as_bytes());
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A member of the cluster, as it advertised itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub id: String,
    pub url: String,
}

/// The nodes this node last saw alive, and when it last read them.
#[derive(Default)]
pub struct Membership {
    view: RwLock<View>,
}

#[derive(Default)]
struct View {
    nodes: Vec<Node>,
    read_at: Option<Instant>,
    forced_at: Option<Instant>,
    /// Since when every read has succeeded; `None` after a failed one.
    healthy_since: Option<Instant>,
}

impl Membership {
    /// The members last seen, this node included once it has registered.
    pub fn nodes(&self) -> Vec<Node> {
        self.view
            .read()
            .map(|view| view.nodes.clone())
            .unwrap_or_default()
    }

    /// How many members were last seen.
    pub fn count(&self) -> usize {
        self.view.read().map_or(0, |view| view.nodes.len())
    }

    /// Whether the last read is recent enough to route by.
    fn fresh(&self) -> bool {
        self.view
            .read()
            .ok()
            .and_then(|view| view.read_at)
            .is_some_and(|at| at.elapsed() < STALE)
    }

    fn with_tag(&self, tag: NodeTag) -> Option<Node> {
        let view = self.view.read().ok()?;
        view.nodes
            .iter()
            .find(|node| tag_of(&node.id) == tag)
            .cloned()
    }

    /// What a node missing from the view means: gone (`Ok(None)`) once reads have succeeded
    /// for [`SETTLED`]; before that it may simply not have registered again yet, and the
    /// request is refused as unavailable rather than told its session is gone.
    fn absent(&self) -> Result<Option<Node>, ClusterError> {
        let settled = self
            .view
            .read()
            .ok()
            .and_then(|view| view.healthy_since)
            .is_some_and(|since| since.elapsed() >= SETTLED);
        if settled {
            Ok(None)
        } else {
            Err(ClusterError::Unavailable)
        }
    }

    fn failed(&self) {
        if let Ok(mut view) = self.view.write() {
            view.healthy_since = None;
        }
    }

    fn store(&self, nodes: Vec<Node>, forced: bool) {
        if let Ok(mut view) = self.view.write() {
            let now = Instant::now();
            view.nodes = nodes;
            view.read_at = Some(now);
            view.healthy_since.get_or_insert(now);
            if forced {
                view.forced_at = Some(now);
            }
        }
    }

    /// Claims the right to a forced read, at most once per [`FORCED_READ_GAP`].
    fn may_force(&self) -> bool {
        let Ok(mut view) = self.view.write() else {
            return false;
        };
        let now = Instant::now();
        if view
            .forced_at
            .is_some_and(|at| now.duration_since(at) < FORCED_READ_GAP)
        {
            return false;
        }
        view.forced_at = Some(now);
        true
    }
}

impl Cluster {
    /// Writes this node's record (`url`, its advertised base URL) with its expiry.
    pub async fn register(&self, url: &str) -> Result<(), ClusterError> {
        let mut redis = self.redis().await?;
        let ttl = EXPIRY.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.set_options(
            record_key(self.node_id()),
            url,
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl)),
        )
        .ignore()
        .sadd(NODES, self.node_id())
        .ignore();
        self.bounded(pipe.query_async::<()>(&mut redis)).await
    }

    /// Removes this node's record, so its sessions answer 404 elsewhere at once (clean stop).
    pub async fn leave(&self) {
        if let Ok(mut redis) = self.redis().await {
            let mut pipe = redis::pipe();
            pipe.del(record_key(self.node_id()))
                .ignore()
                .srem(NODES, self.node_id())
                .ignore();
            let _ = self.bounded(pipe.query_async::<()>(&mut redis)).await;
        }
    }

    /// Reads the members from Redis into the view, forgetting ids whose record expired.
    pub async fn read_members(&self) -> Result<Vec<Node>, ClusterError> {
        self.read_members_into(false).await
    }

    async fn read_members_into(&self, forced: bool) -> Result<Vec<Node>, ClusterError> {
        let read = self.read_members_once(forced).await;
        if read.is_err() {
            self.membership.failed();
        }
        read
    }

    async fn read_members_once(&self, forced: bool) -> Result<Vec<Node>, ClusterError> {
        let mut redis = self.redis().await?;
        let mut ids: Vec<String> = self.bounded(redis.smembers(NODES)).await?;
        ids.sort();
        let urls: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            let keys: Vec<String> = ids.iter().map(|id| record_key(id)).collect();
            self.bounded(redis.mget(keys)).await?
        };
        let mut nodes = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (id, url) in ids.into_iter().zip(urls) {
            match url {
                Some(url) => nodes.push(Node { id, url }),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _ = self.bounded(redis.srem::<_, _, ()>(NODES, gone)).await;
        }
        self.membership.store(nodes.clone(), forced);
        Ok(nodes)
    }

    /// The node holding sessions tagged `tag`: `Ok(None)` when no live member has that tag (the
    /// owner died or left, or the id was made up), `Err` when the view is stale and Redis cannot
    /// be read, or has been readable again for too short a time to tell (see [`SETTLED`]).
    pub async fn owner(&self, tag: NodeTag) -> Result<Option<Node>, ClusterError> {
        if self.membership.fresh() {
            if let Some(node) = self.membership.with_tag(tag) {
                return Ok(Some(node));
            }
            if !self.membership.may_force() {
                return self.membership.absent();
            }
        }
        self.read_members_into(true).await?;
        match self.membership.with_tag(tag) {
            Some(node) => Ok(Some(node)),
            None => self.membership.absent(),
        }
    }

    /// Registers this node and keeps its record and its view of the others current, for as
    /// long as the returned task runs (abort it, then [`Cluster::leave`], at shutdown).
    pub fn keep_membership(
        self: &std::sync::Arc<Self>,
        url: String,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut reachable = true;
            loop {
                ticks.tick().await;
                let beat = match cluster.register(&url).await {
                    Ok(()) => cluster.read_members().await.map(|_| ()),
                    Err(err) => Err(err),
                };
                match (beat, reachable) {
                    (Err(_), true) => {
                        tracing::warn!("the cluster's Redis is unavailable: sessions held by other nodes cannot be reached until it is back");
                        reachable = false;
                    }
                    (Ok(()), false) => {
                        tracing::info!("the cluster's Redis is back");
                        reachable = true;
                    }
                    _ => {}
                }
            }
        })
    }

    /// `command`, bounded by the Redis timeout.
    pub(crate) async fn bounded<T>(
        &self,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout(), command).await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(ClusterError::Unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterSettings;

    /// Database 11 of the machines' Redis, so these keys stay apart from other tests'.
    fn node(id: &str) -> Cluster {
        Cluster::from_settings(&ClusterSettings {
            redis_url: Some("redis://127.0.0.1:6379/11".to_owned()),
            node_id: Some(id.to_owned()),
            redis_timeout_ms: 500,
            ..ClusterSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn nodes_see_each_other_and_a_node_that_leaves_is_gone() {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let one = node(&format!("one-{suffix}"));
        let two = node(&format!("two-{suffix}"));
        one.register("http://127.0.0.1:1001").await.unwrap();
        two.register("http://127.0.0.1:1002").await.unwrap();
        let seen = one.read_members().await.unwrap();
        assert!(seen.contains(&Node {
            id: two.node_id().to_owned(),
            url: "http://127.0.0.1:1002".to_owned(),
        }));
        let owner = one.owner(tag_of(two.node_id())).await.unwrap();
        assert_eq!(
            owner.map(|node| node.url).as_deref(),
            Some("http://127.0.0.1:1002")
        );

        two.leave().await;
        let seen = one.read_members().await.unwrap();
        assert!(seen.iter().all(|node| node.id != two.node_id()));
        // Too soon after the first read to tell a node that left from one not registered
        // again yet; once reads have gone on for long enough, it is gone.
        let early = one.owner(tag_of(two.node_id())).await;
        assert!(matches!(early, Err(ClusterError::Unavailable)), "{early:?}");
        if let Ok(mut view) = one.membership.view.write() {
            view.healthy_since = Some(Instant::now() - SETTLED);
        }
        assert_eq!(one.owner(tag_of(two.node_id())).await.unwrap(), None);
        one.leave().await;
    }

    #[test]
    fn tags_differ_between_nodes_and_are_stable() {
        assert_eq!(tag_of("a"), tag_of("a"));
        assert_ne!(tag_of("a"), tag_of("b"));
    }
}
