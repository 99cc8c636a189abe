//! Per-(server, user) key-value data that outlives a server actor: it is kept by the
//! supervisor and handed to every new instance, so a restart or an idle stop loses nothing.
//! Each store is bounded in bytes (`runtime.max_store_bytes_per_user`): stores live in the
//! memory every user shares, for as long as the process runs.

use std::collections::BTreeMap;
use std::sync::RwLock;

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

/// A user's data for one server. In memory, as the embedded default promises.
#[derive(Debug)]
pub struct UserStore {
    data: RwLock<Data>,
    max_bytes: usize,
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
            data: RwLock::default(),
            max_bytes,
        }
    }

    /// Stores `value` under `key`, unless the store would then hold more than its bound;
    /// replacing a key counts only the difference, so a shorter value always fits.
    pub fn insert(&self, key: String, value: String) -> Result<(), StoreFull> {
        let mut data = self.write();
        let replaced = data
            .entries
            .get(&key)
            .map_or(0, |old| key.len() + old.len());
        let needed = key.len() + value.len();
        let after = data.bytes - replaced + needed;
        if after > self.max_bytes {
            return Err(StoreFull {
                used: data.bytes,
                needed,
                limit: self.max_bytes,
            });
        }
        data.entries.insert(key, value);
        data.bytes = after;
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.read().entries.get(key).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.read().entries.is_empty()
    }

    /// All entries, in key order.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.read()
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Bytes of keys and values stored.
    pub fn used_bytes(&self) -> usize {
        self.read().bytes
    }

    // A panic while holding the lock cannot leave the data half-updated in a way that matters
    // here (an insert changes the map and the count only after every check), so a poisoned
    // lock is simply taken over.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        self.data
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Data> {
        self.data
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_count_up_to_the_bound_exactly() {
        let store = UserStore::new(10);
        store.insert("ab".into(), "cdef".into()).unwrap();
        store.insert("g".into(), "hij".into()).unwrap();
        assert_eq!(store.used_bytes(), 10);
        let full = store.insert("m".into(), "n".into()).unwrap_err();
        assert_eq!(
            full,
            StoreFull {
                used: 10,
                needed: 2,
                limit: 10
            }
        );
        assert_eq!(store.get("m"), None, "a refused insert changes nothing");
        assert_eq!(store.get("ab").as_deref(), Some("cdef"));
    }

    #[test]
    fn replacing_a_key_counts_the_difference() {
        let store = UserStore::new(10);
        store.insert("k".into(), "12345678".into()).unwrap();
        store.insert("k".into(), "123456789".into()).unwrap();
        assert_eq!(store.used_bytes(), 10);
        assert!(store.insert("k".into(), "1234567890".into()).is_err());
        assert_eq!(store.get("k").as_deref(), Some("123456789"));
        store.insert("k".into(), "1".into()).unwrap();
        assert_eq!(store.used_bytes(), 2);
        store.insert("other".into(), "abc".into()).unwrap();
        assert_eq!(store.entries().len(), 2);
    }

    #[test]
    fn the_message_names_the_setting_and_the_numbers() {
        let store = UserStore::new(4);
        let text = store
            .insert("key".into(), "value".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "the store is full: 0 of 4 bytes used (runtime.max_store_bytes_per_user), and this \
             entry takes 8 bytes"
        );
    }
}
