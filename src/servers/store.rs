//! Per-(server, user) key-value data that outlives a server actor: it is kept by the
//! supervisor and handed to every new instance, so a restart or an idle stop loses nothing.
//! Each store is bounded in bytes (`runtime.max_store_bytes_per_user`): stores live in the
//! memory every user shares, for as long as the process runs. In a cluster the data is kept
//! in the cluster's Redis instead ([`crate::cluster::user_store`]), with the same bound, so it
//! is the same whichever node a request lands on.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::actors::server_core::ServerKey;
use crate::cluster::user_store::{Inserted, RedisUserStore};
use crate::cluster::Cluster;

/// An insert refused because the store would pass its bound; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the store is full: {used} of {limit} bytes used (runtime.max_store_bytes_per_user), \
     and this entry takes {needed} bytes"
)]
pub struct StoreFull {
    /// Bytes of keys and values stored now.
    pub used: usize,
    /// Bytes the refused key and value take.
    pub needed: usize,
    pub limit: usize,
}

/// Why the store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Full(#[from] StoreFull),
    /// Cluster mode: the cluster's Redis, which keeps the data, did not answer in time.
    #[error(
        "the store is unavailable for now (the cluster's Redis did not answer); retry shortly"
    )]
    Unavailable,
}

/// A user's data for one server: in memory on a single node, as the embedded default
/// promises; in the cluster's Redis when clustered.
pub struct UserStore {
    place: Place,
    max_bytes: usize,
}

enum Place {
    Memory(RwLock<Data>),
    Redis(RedisUserStore),
}

#[derive(Debug, Default)]
struct Data {
    entries: BTreeMap<String, String>,
    /// Sum of the lengths of every key and value, kept with the entries so checking an
    /// insert never walks them.
    bytes: usize,
}

impl UserStore {
    /// An empty store that holds at most `max_bytes` of keys and values.
    pub fn new(max_bytes: usize) -> UserStore {
        UserStore {
            place: Place::Memory(RwLock::default()),
            max_bytes,
        }
    }

    /// The store of `key` (server and principal) kept in `cluster`'s Redis, bounded alike.
    pub fn in_cluster(cluster: Arc<Cluster>, key: &ServerKey, max_bytes: usize) -> UserStore {
        UserStore {
            place: Place::Redis(RedisUserStore::new(cluster, key)),
            max_bytes,
        }
    }

    /// Stores `value` under `key`, unless the store would then hold more than its bound;
    /// replacing a key counts only the difference, so a shorter value always fits.
    pub async fn insert(&self, key: String, value: String) -> Result<(), StoreError> {
        let data = match &self.place {
            Place::Memory(data) => data,
            Place::Redis(redis) => {
                return match redis.insert(&key, &value, self.max_bytes).await {
                    Ok(Inserted::Stored) => Ok(()),
                    Ok(Inserted::Full { used }) => Err(StoreError::Full(StoreFull {
                        used,
                        needed: key.len() + value.len(),
                        limit: self.max_bytes,
                    })),
                    Err(_) => Err(StoreError::Unavailable),
                };
            }
        };
        let mut data = Self::write(data);
        let replaced = data
            .entries
            .get(&key)
            .map_or(0, |old| key.len() + old.len());
        let needed = key.len() + value.len();
        let after = data.bytes - replaced + needed;
        if after > self.max_bytes {
            return Err(StoreError::Full(StoreFull {
                used: data.bytes,
                needed,
                limit: self.max_bytes,
            }));
        }
        data.entries.insert(key, value);
        data.bytes = after;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        match &self.place {
            Place::Memory(data) => Ok(Self::read(data).entries.get(key).cloned()),
            Place::Redis(redis) => redis.get(key).await.map_err(|_| StoreError::Unavailable),
        }
    }

    /// Whether this process holds data of the store (which must then outlive the server
    /// instance); a store kept in Redis holds none here.
    pub fn holds_data_here(&self) -> bool {
        match &self.place {
            Place::Memory(data) => !Self::read(data).entries.is_empty(),
            Place::Redis(_) => false,
        }
    }

    /// All entries, in key order.
    pub async fn entries(&self) -> Result<Vec<(String, String)>, StoreError> {
        match &self.place {
            Place::Memory(data) => Ok(Self::read(data)
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
            Place::Redis(redis) => redis.entries().await.map_err(|_| StoreError::Unavailable),
        }
    }

    /// Bytes of keys and values stored.
    pub async fn used_bytes(&self) -> Result<usize, StoreError> {
        match &self.place {
            Place::Memory(data) => Ok(Self::read(data).bytes),
            Place::Redis(redis) => redis
                .used_bytes()
                .await
                .map_err(|_| StoreError::Unavailable),
        }
    }

    // A panic while holding the lock cannot leave the data half-updated in a way that matters
    // here (an insert changes the map and the count only after every check), so a poisoned
    // lock is simply taken over.
    fn read(data: &RwLock<Data>) -> std::sync::RwLockReadGuard<'_, Data> {
        data.read().unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(data: &RwLock<Data>) -> std::sync::RwLockWriteGuard<'_, Data> {
        data.write().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::principal::{KeyDigest, Principal};
    use crate::config::ClusterSettings;

    fn full(used: usize, needed: usize, limit: usize) -> StoreError {
        StoreError::Full(StoreFull {
            used,
            needed,
            limit,
        })
    }

    #[tokio::test]
    async fn keys_and_values_count_up_to_the_bound_exactly() {
        let store = UserStore::new(10);
        store.insert("ab".into(), "cdef".into()).await.unwrap();
        store.insert("g".into(), "hij".into()).await.unwrap();
        assert_eq!(store.used_bytes().await.unwrap(), 10);
        let refused = store.insert("m".into(), "n".into()).await.unwrap_err();
        assert_eq!(refused, full(10, 2, 10));
        assert_eq!(
            store.get("m").await.unwrap(),
            None,
            "a refused insert changes nothing"
        );
        assert_eq!(store.get("ab").await.unwrap().as_deref(), Some("cdef"));
    }

    #[tokio::test]
    async fn replacing_a_key_counts_the_difference() {
        let store = UserStore::new(10);
        store.insert("k".into(), "12345678".into()).await.unwrap();
        store.insert("k".into(), "123456789".into()).await.unwrap();
        assert_eq!(store.used_bytes().await.unwrap(), 10);
        assert!(store.insert("k".into(), "1234567890".into()).await.is_err());
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("123456789"));
        store.insert("k".into(), "1".into()).await.unwrap();
        assert_eq!(store.used_bytes().await.unwrap(), 2);
        store.insert("other".into(), "abc".into()).await.unwrap();
        assert_eq!(store.entries().await.unwrap().len(), 2);
        assert!(store.holds_data_here());
    }

    #[tokio::test]
    async fn the_message_names_the_setting_and_the_numbers() {
        let store = UserStore::new(4);
        let text = store
            .insert("key".into(), "value".into())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "the store is full: 0 of 4 bytes used (runtime.max_store_bytes_per_user), and this \
             entry takes 8 bytes"
        );
    }

    /// Database 12 of the machines' Redis; a user of this run's own.
    fn node(id: &str) -> Arc<Cluster> {
        Arc::new(
            Cluster::from_settings(&ClusterSettings {
                redis_url: Some("redis://127.0.0.1:6379/12".to_owned()),
                node_id: Some(id.to_owned()),
                ..ClusterSettings::default()
            })
            .unwrap(),
        )
    }

    /// What one node stores another reads, within the same bound counted the same way; other
    /// users and a key merely claiming the user have stores of their own.
    #[tokio::test]
    async fn in_a_cluster_every_node_sees_the_same_bounded_store() {
        let user = uuid::Uuid::new_v4().simple().to_string();
        let key = |principal: Principal| ServerKey {
            server: Arc::from("simple-tools-server"),
            principal,
        };
        let alice = key(Principal::user(user.as_str()));
        let (one, two) = (node("one"), node("two"));
        let here = UserStore::in_cluster(one.clone(), &alice, 10);
        let there = UserStore::in_cluster(two.clone(), &alice, 10);
        here.insert("ab".into(), "cdef".into()).await.unwrap();
        there.insert("g".into(), "hij".into()).await.unwrap();
        assert_eq!(here.get("g").await.unwrap().as_deref(), Some("hij"));
        assert_eq!(there.used_bytes().await.unwrap(), 10);
        assert_eq!(
            here.insert("m".into(), "n".into()).await.unwrap_err(),
            full(10, 2, 10)
        );
        there.insert("ab".into(), "c".into()).await.unwrap();
        assert_eq!(here.used_bytes().await.unwrap(), 7);
        assert_eq!(
            here.entries().await.unwrap(),
            vec![("ab".into(), "c".into()), ("g".into(), "hij".into())]
        );
        assert!(!here.holds_data_here());
        let claimed = key(Principal::claimed_by(user.as_str(), KeyDigest::of("guess")));
        let guesser = UserStore::in_cluster(two, &claimed, 10);
        assert_eq!(guesser.get("g").await.unwrap(), None);
        let bob = UserStore::in_cluster(one, &key(Principal::user("bob-other")), 10);
        assert_eq!(bob.get("ab").await.unwrap(), None);
    }

    #[tokio::test]
    async fn in_a_cluster_without_redis_the_store_is_unavailable_not_empty() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let cluster = Arc::new(
            Cluster::from_settings(&ClusterSettings {
                redis_url: Some(format!("redis://127.0.0.1:{port}")),
                redis_timeout_ms: 200,
                ..ClusterSettings::default()
            })
            .unwrap(),
        );
        let key = ServerKey {
            server: Arc::from("s"),
            principal: Principal::user("alice"),
        };
        let store = UserStore::in_cluster(cluster, &key, 10);
        assert_eq!(store.get("k").await, Err(StoreError::Unavailable));
        assert_eq!(
            store.insert("k".into(), "v".into()).await,
            Err(StoreError::Unavailable)
        );
    }
}
