//! One token refresh per account in the whole cluster. On one node the auth actor already
//! coalesces the refreshes of an account into one flight; across nodes, a flight that must
//! refresh first takes this account's lock in Redis (`SET NX PX`): the node that gets it
//! refreshes, the others wait until it is released and read what the holder saved.
//!
//! The lock expires unless its holder renews it (every third of `cluster.refresh_lock_ms`,
//! while the provider takes its time), so a node that dies mid-refresh holds it for at most
//! that long; then another node takes it and refreshes. Each lock taken carries a *fence*, a
//! number from a per-account counter (`INCR`) raised above the fence the store last saved, so
//! a later holder always has a greater one; the store refuses a save whose fence is not
//! greater than the one it holds (`AuthClient::save_fenced`), so a holder that lost its lock
//! (paused past the expiry) can never save over what a later holder saved.
//!
//! Keys: `gumcp:refresh:lock:{digest}` (the holder's fence and node id, expiring) and
//! `gumcp:refresh:fence:{digest}` (the counter, kept for a day after its last use: the stored
//! fence is the floor when it is gone). The digest is SHA-256 over the service, the user and
//! the caller's key digest where the store answers per key: no user id or key in a key name.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::{Cluster, ClusterError};

/// How long a fence counter outlives its last use.
const FENCE_KEPT_MS: u64 = 24 * 3600 * 1000;
/// The first and the longest pause between two looks at a lock held elsewhere.
const FIRST_LOOK_GAP: Duration = Duration::from_millis(20);
const LONGEST_LOOK_GAP: Duration = Duration::from_millis(200);

/// Takes the lock if nobody holds it: the fence (at least `floor + 1`), or 0 when it is held.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local fence = redis.call('INCR', KEYS[2])
        local floor = tonumber(ARGV[2])
        if fence <= floor then
            fence = floor + 1
            redis.call('SET', KEYS[2], fence)
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        redis.call('SET', KEYS[1], fence .. ' ' .. ARGV[4], 'PX', ARGV[1])
        return fence
        ",
    )
});

/// Renews the lock if it is still this holder's: 1, else 0.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        ",
    )
});

/// Releases the lock if it is still this holder's.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

/// The account whose refresh is locked, as Redis names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshAccount {
    digest: String,
}

impl RefreshAccount {
    /// `caller` is the caller's key digest when the store answers per key, else `None`.
    pub fn new(service: &str, user: &str, caller: Option<&[u8]>) -> RefreshAccount {
        let mut hash = Sha256::new();
        hash.update(b"gumcp-refresh\0");
        hash.update(service.as_bytes());
        hash.update([0]);
        hash.update(user.as_bytes());
        hash.update([0]);
        if let Some(caller) = caller {
            hash.update(caller);
        }
        RefreshAccount {
            digest: hex::encode(hash.finalize()),
        }
    }

    fn lock_key(&self) -> String {
        format!("gumcp:refresh:lock:{}", self.digest)
    }

    fn fence_key(&self) -> String {
        format!("gumcp:refresh:fence:{}", self.digest)
    }
}

/// The lock on one account's refresh, held by this node until released (or until it lapses,
/// if this node stops renewing it).
pub struct RefreshLease {
    cluster: Arc<Cluster>,
    key: String,
    /// What the lock holds: the fence and this node's id.
    value: String,
    fence: i64,
    renewal: tokio::task::JoinHandle<()>,
}

impl RefreshLease {
    /// The fence the refreshed credentials are saved with.
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// Lets the next node in; a lock this node no longer holds is left alone.
    pub async fn release(self) {
        self.renewal.abort();
        if let Ok(mut redis) = self.cluster.redis().await {
            let mut release = RELEASE.prepare_invoke();
            release.key(&self.key).arg(&self.value);
            let _ = self
                .cluster
                .bounded(release.invoke_async::<i64>(&mut redis))
                .await;
        }
    }
}

impl Drop for RefreshLease {
    /// A lease dropped without [`RefreshLease::release`] (its flight cancelled) stops being
    /// renewed and lapses.
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl Cluster {
    /// Takes `account`'s refresh lock with a fence above `floor` (the fence the store last
    /// saved), or `None` while another node holds it.
    pub async fn try_refresh_lock(
        self: &Arc<Self>,
        account: &RefreshAccount,
        floor: i64,
    ) -> Result<Option<RefreshLease>, ClusterError> {
        let mut redis = self.redis().await?;
        let ttl = self.refresh_lock.as_millis() as u64;
        let mut acquire = ACQUIRE.prepare_invoke();
        acquire
            .key(account.lock_key())
            .key(account.fence_key())
            .arg(ttl)
            .arg(floor)
            .arg(FENCE_KEPT_MS)
            .arg(self.node_id());
        let fence: i64 = self.bounded(acquire.invoke_async(&mut redis)).await?;
        if fence == 0 {
            return Ok(None);
        }
        let key = account.lock_key();
        let value = format!("{fence} {}", self.node_id());
        let renewal = {
            let (cluster, key, value) = (self.clone(), key.clone(), value.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(cluster.refresh_lock / 3).await;
                    let Ok(mut redis) = cluster.redis().await else {
                        continue;
                    };
                    let mut renew = RENEW.prepare_invoke();
                    renew.key(&key).arg(&value).arg(ttl);
                    if let Ok(0) = cluster.bounded(renew.invoke_async::<i64>(&mut redis)).await {
                        return;
                    }
                }
            })
        };
        Ok(Some(RefreshLease {
            cluster: self.clone(),
            key,
            value,
            fence,
            renewal,
        }))
    }

    /// A fence above every fence handed out for `account` so far (and above `floor`), for a
    /// save that is not a refresh — an account connected again — so no refresh that started
    /// before it can save over it.
    pub async fn next_fence(
        &self,
        account: &RefreshAccount,
        floor: i64,
    ) -> Result<i64, ClusterError> {
        let mut redis = self.redis().await?;
        let fence: i64 = self.bounded(redis.incr(account.fence_key(), 1)).await?;
        if fence > floor {
            return Ok(fence);
        }
        let raised = floor + 1;
        self.bounded(redis.set::<_, _, ()>(account.fence_key(), raised))
            .await?;
        Ok(raised)
    }

    /// Waits while another node holds `account`'s refresh lock, looking again at growing
    /// intervals, until it is released or has lapsed, or `until` (then `false`).
    pub async fn await_refresh_lock(
        &self,
        account: &RefreshAccount,
        until: Instant,
    ) -> Result<bool, ClusterError> {
        let mut gap = FIRST_LOOK_GAP;
        loop {
            let mut redis = self.redis().await?;
            let held: bool = self.bounded(redis.exists(account.lock_key())).await?;
            if !held {
                return Ok(true);
            }
            if Instant::now() + gap > until {
                return Ok(false);
            }
            tokio::time::sleep(gap).await;
            gap = (gap * 2).min(LONGEST_LOOK_GAP);
        }
    }

    /// How long a flight waits for a refresh held elsewhere before giving up: long enough for
    /// a holder that died to let its lock lapse and another node to refresh.
    pub fn refresh_wait(&self) -> Duration {
        (self.refresh_lock * 3).max(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterSettings;

    /// Database 12 of the machines' Redis, apart from other tests' keys.
    fn node(id: &str, lock_ms: u64) -> Arc<Cluster> {
        Arc::new(
            Cluster::from_settings(&ClusterSettings {
                redis_url: Some("redis://127.0.0.1:6379/12".to_owned()),
                node_id: Some(id.to_owned()),
                redis_timeout_ms: 500,
                refresh_lock_ms: lock_ms,
                ..ClusterSettings::default()
            })
            .unwrap(),
        )
    }

    fn account() -> RefreshAccount {
        let user = uuid::Uuid::new_v4().simple().to_string();
        RefreshAccount::new("github", &user, None)
    }

    #[test]
    fn key_names_hold_no_user_and_callers_have_locks_of_their_own() {
        let alice = RefreshAccount::new("github", "alice", None);
        assert!(!alice.lock_key().contains("alice") && !alice.fence_key().contains("github"));
        assert_ne!(alice, RefreshAccount::new("github", "alice", Some(b"key")));
        assert_ne!(alice, RefreshAccount::new("github", "alicf", None));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_with_growing_fences_above_the_floor() {
        let (one, two) = (node("one", 5_000), node("two", 5_000));
        let account = account();
        let first = one.try_refresh_lock(&account, 40).await.unwrap().unwrap();
        assert_eq!(first.fence(), 41);
        assert!(two.try_refresh_lock(&account, 0).await.unwrap().is_none());
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(!two.await_refresh_lock(&account, soon).await.unwrap());
        first.release().await;
        let later = Instant::now() + Duration::from_secs(5);
        assert!(two.await_refresh_lock(&account, later).await.unwrap());
        let second = two.try_refresh_lock(&account, 0).await.unwrap().unwrap();
        assert_eq!(second.fence(), 42);
        assert!(one.next_fence(&account, 0).await.unwrap() > second.fence());
        second.release().await;
    }

    /// A holder that stops renewing (its node died) lets the lock lapse; one that renews keeps
    /// it past its expiry.
    #[tokio::test]
    async fn a_renewed_lock_stays_and_an_abandoned_one_lapses() {
        let (one, two) = (node("one", 1_000), node("two", 1_000));
        let account = account();
        let held = one.try_refresh_lock(&account, 0).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert!(two.try_refresh_lock(&account, 0).await.unwrap().is_none());
        drop(held);
        let until = Instant::now() + Duration::from_secs(5);
        assert!(two.await_refresh_lock(&account, until).await.unwrap());
        let taken = two.try_refresh_lock(&account, 0).await.unwrap().unwrap();
        assert_eq!(taken.fence(), 2);
        taken.release().await;
    }
}
