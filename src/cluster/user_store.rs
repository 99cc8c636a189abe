//! Per-(server, principal) user data ([`crate::servers::UserStore`]) in Redis when clustered,
//! so what a user stored through one node is read through any other. Bounded as on one node:
//! the keys' and values' bytes together at most `runtime.max_store_bytes_per_user`, checked and
//! written in one Lua script, so concurrent inserts on several nodes cannot pass the bound.
//!
//! Keys: `gumcp:store:{digest}` (a hash of the entries) and `gumcp:store-bytes:{digest}` (their
//! byte count); the digest is SHA-256 over the server and the principal (user, and the key
//! where keys partition): no user id in a key name, and a key that merely claims a user has a
//! store of its own.

use std::sync::{Arc, LazyLock};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::{Cluster, ClusterError};
use crate::actors::server_core::ServerKey;

/// Stores `ARGV[1] = ARGV[2]` unless the bytes would pass `ARGV[3]`: `{1, used after}` when
/// stored, `{0, used}` when refused.
static INSERT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local old = redis.call('HGET', KEYS[1], ARGV[1])
        local replaced = 0
        if old then replaced = string.len(ARGV[1]) + string.len(old) end
        local used = tonumber(redis.call('GET', KEYS[2]) or '0')
        local after = used - replaced + string.len(ARGV[1]) + string.len(ARGV[2])
        if after > tonumber(ARGV[3]) then return {0, used} end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('SET', KEYS[2], after)
        return {1, after}
        ",
    )
});

/// What an insert did.
pub enum Inserted {
    Stored,
    /// Refused: the store would pass its bound; `used` bytes are stored now.
    Full {
        used: usize,
    },
}

/// One (server, principal)'s data in the cluster's Redis.
pub struct RedisUserStore {
    cluster: Arc<Cluster>,
    entries_key: String,
    bytes_key: String,
}

impl RedisUserStore {
    pub fn new(cluster: Arc<Cluster>, key: &ServerKey) -> RedisUserStore {
        let mut hash = Sha256::new();
        hash.update(b"gumcp-user-store\0");
        hash.update(key.server.as_bytes());
        hash.update([0]);
        hash.update(key.principal.seal_subject().as_bytes());
        let digest = hex::encode(hash.finalize());
        RedisUserStore {
            cluster,
            entries_key: format!("gumcp:store:{digest}"),
            bytes_key: format!("gumcp:store-bytes:{digest}"),
        }
    }

    pub async fn insert(
        &self,
        key: &str,
        value: &str,
        max_bytes: usize,
    ) -> Result<Inserted, ClusterError> {
        let mut redis = self.cluster.redis().await?;
        let mut insert = INSERT.prepare_invoke();
        insert
            .key(&self.entries_key)
            .key(&self.bytes_key)
            .arg(key)
            .arg(value)
            .arg(max_bytes);
        let (stored, used): (i64, i64) = self
            .cluster
            .bounded(insert.invoke_async(&mut redis))
            .await?;
        Ok(if stored == 1 {
            Inserted::Stored
        } else {
            Inserted::Full {
                used: usize::try_from(used).unwrap_or(0),
            }
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, ClusterError> {
        let mut redis = self.cluster.redis().await?;
        self.cluster
            .bounded(redis.hget(&self.entries_key, key))
            .await
    }

    /// All entries, in key order.
    pub async fn entries(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let mut redis = self.cluster.redis().await?;
        let mut entries: Vec<(String, String)> = self
            .cluster
            .bounded(redis.hgetall(&self.entries_key))
            .await?;
        entries.sort();
        Ok(entries)
    }

    pub async fn used_bytes(&self) -> Result<usize, ClusterError> {
        let mut redis = self.cluster.redis().await?;
        let used: Option<i64> = self.cluster.bounded(redis.get(&self.bytes_key)).await?;
        Ok(used
            .and_then(|used| usize::try_from(used).ok())
            .unwrap_or(0))
    }
}
