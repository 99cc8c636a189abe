//! Per-(server, user) key-value data that outlives a server actor: it is kept by the
//! supervisor and handed to every new instance, so a restart or an idle stop loses nothing.

use std::collections::BTreeMap;
use std::sync::RwLock;

/// A user's data for one server. In memory, as the embedded default promises.
#[derive(Debug, Default)]
pub struct UserStore {
    entries: RwLock<BTreeMap<String, String>>,
}

impl UserStore {
    pub fn insert(&self, key: String, value: String) {
        self.write().insert(key, value);
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.read().get(key).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// All entries, in key order.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    // A panic while holding the lock cannot leave a BTreeMap half-updated in a way that matters
    // here (insert is all-or-nothing), so a poisoned lock is simply taken over.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, String>> {
        self.entries
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, String>> {
        self.entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
