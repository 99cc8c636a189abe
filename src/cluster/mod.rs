//! Cluster mode: several `serve` nodes sharing one Redis (`cluster.redis_url`). This module is
//! the node's handle on the cluster — its id and its Redis connection; what is shared through
//! it (session routing, refresh locks, bounds, user state) lives in the submodules.
//!
//! Redis is reached through one multiplexed [`ConnectionManager`], opened on first use and
//! reconnecting by itself; every command is bounded by `cluster.redis_timeout_ms`, so a Redis
//! that is gone turns into [`ClusterError::Unavailable`] quickly instead of a request that hangs.

pub mod events;
pub mod keys;
pub mod membership;
pub mod refresh_lock;
pub mod user_store;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::ClusterSettings;

/// Why a cluster operation could not be done. Never carries the Redis URL.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis did not answer in time or refused the connection; the request that needed it is
    /// answered 503 with `Retry-After`.
    #[error("the cluster's Redis is unavailable")]
    Unavailable,
}

/// This node in the cluster: its id and its connection to the cluster's Redis.
pub struct Cluster {
    node_id: Arc<str>,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    timeout: Duration,
    /// How long a refresh lock lasts unless its holder renews it (`cluster.refresh_lock_ms`).
    refresh_lock: Duration,
    membership: membership::Membership,
    events: events::ClusterEvents,
}

impl Cluster {
    /// The cluster this node belongs to, or `None` when `cluster.redis_url` is unset (a single
    /// node). Settings are validated before, so a URL that does not parse is not expected here;
    /// it is reported as `None` rather than a panic.
    pub fn from_settings(settings: &ClusterSettings) -> Option<Cluster> {
        let client = redis::Client::open(settings.redis_url.as_deref()?).ok()?;
        let node_id = settings
            .node_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
        Some(Cluster {
            client,
            connection: OnceCell::new(),
            timeout: Duration::from_millis(settings.redis_timeout_ms),
            refresh_lock: Duration::from_millis(settings.refresh_lock_ms),
            membership: membership::Membership::default(),
            events: events::ClusterEvents::new(&node_id),
            node_id: Arc::from(node_id),
        })
    }

    /// This node's id in the cluster.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The tag this node puts in the ids of the sessions it holds.
    pub fn tag(&self) -> membership::NodeTag {
        membership::tag_of(&self.node_id)
    }

    /// The members this node last saw alive.
    pub fn members(&self) -> Vec<membership::Node> {
        self.membership.nodes()
    }

    /// How many nodes the cluster has as this node last saw it (at least this one).
    pub fn live_nodes(&self) -> usize {
        self.membership.count().max(1)
    }

    /// This node's share of a per-user `limit` that holds across the cluster: the limit
    /// divided by the live nodes, rounded down, at least 1. With a round-robin balancer a
    /// user's sessions and calls spread evenly, so the shares add up to about the limit and
    /// never to more (unless there are more nodes than the limit).
    pub fn share_of(&self, limit: usize) -> usize {
        (limit / self.live_nodes()).max(1)
    }

    /// How long one Redis command may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The shared connection to Redis (a cheap clone), opened on first use. While Redis is
    /// down the manager keeps reconnecting in the background and commands fail fast.
    pub async fn redis(&self) -> Result<ConnectionManager, ClusterError> {
        let opened = self.connection.get_or_try_init(|| async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(self.client.clone(), config)
                .await
                .map_err(|_| ClusterError::Unavailable)
        });
        match tokio::time::timeout(self.timeout, opened).await {
            Ok(Ok(connection)) => Ok(connection.clone()),
            _ => Err(ClusterError::Unavailable),
        }
    }

    /// Whether Redis answers a `PING` within the timeout (`/health_check`).
    pub async fn redis_healthy(&self) -> bool {
        let Ok(mut connection) = self.redis().await else {
            return false;
        };
        let ping = redis::cmd("PING");
        let answer = ping.query_async::<String>(&mut connection);
        matches!(tokio::time::timeout(self.timeout, answer).await, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_at(url: &str) -> Cluster {
        Cluster::from_settings(&ClusterSettings {
            redis_url: Some(url.to_owned()),
            redis_timeout_ms: 300,
            ..ClusterSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn a_single_node_has_no_cluster_and_a_node_without_an_id_gets_a_random_one() {
        assert!(Cluster::from_settings(&ClusterSettings::default()).is_none());
        let one = cluster_at("redis://127.0.0.1:6379");
        let other = cluster_at("redis://127.0.0.1:6379");
        assert_eq!(one.node_id().len(), 12);
        assert_ne!(one.node_id(), other.node_id());
    }

    /// A per-user limit is split over the live nodes, never below one per node (database 12).
    #[tokio::test]
    async fn each_node_admits_its_share_of_a_per_user_limit() {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let nodes: Vec<Cluster> = (0..3)
            .map(|n| {
                Cluster::from_settings(&ClusterSettings {
                    redis_url: Some("redis://127.0.0.1:6379/12".to_owned()),
                    node_id: Some(format!("share{n}-{run}")),
                    ..ClusterSettings::default()
                })
                .unwrap()
            })
            .collect();
        assert_eq!(
            nodes[0].share_of(6),
            6,
            "alone until it has read the members"
        );
        for node in &nodes {
            node.register("http://127.0.0.1:1").await.unwrap();
        }
        nodes[0].read_members().await.unwrap();
        // Nodes of another test's run may still be there for a few seconds.
        let live = nodes[0].live_nodes();
        assert!(live >= 3, "{live}");
        assert_eq!(nodes[0].share_of(60), 60 / live);
        assert_eq!(nodes[0].share_of(2), 1);
        for node in &nodes {
            node.leave().await;
        }
    }

    /// The machines run Redis on 127.0.0.1:6379 (README); a port nobody listens on stands for
    /// a Redis that is gone, which must be told within the timeout, not hang.
    #[tokio::test]
    async fn redis_health_is_read_within_the_timeout() {
        assert!(cluster_at("redis://127.0.0.1:6379").redis_healthy().await);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let gone = cluster_at(&format!("redis://127.0.0.1:{port}"));
        let asked = std::time::Instant::now();
        assert!(!gone.redis_healthy().await);
        assert!(matches!(gone.redis().await, Err(ClusterError::Unavailable)));
        assert!(asked.elapsed() < Duration::from_secs(5));
    }
}
