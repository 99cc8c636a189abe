//! OAuth sign-ins started on the connect pages and not yet come back from the provider.
//!
//! On one node they are kept in memory. In a cluster the provider may send the browser back to
//! any node, so they are kept in Redis: each sign-in encrypted (AES-256-GCM with a key derived
//! from `cluster.shared_keys`, bound to its state's digest, since it holds the PKCE verifier)
//! under the digest of its state, with the per-user and overall bounds of one node kept by a
//! script that runs atomically in Redis. Taking a sign-in deletes it: the first node to take it
//! wins, so a state is still used once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;
use oauth2::url::Url;
use oauth2::{CsrfToken, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::connect::Authorization;
use crate::cluster::keys::purpose_key;
use crate::cluster::Cluster;
use crate::config::EncryptionKey;

/// Sign-ins started and not yet come back, at most, over all users; and per user (starting
/// one more drops that user's oldest).
const MAX_PENDING: usize = 10_000;
const MAX_PENDING_PER_USER: usize = 8;

/// A sign-in sent to the provider, waiting for the browser to come back.
pub struct Pending {
    pub user: Arc<str>,
    pub server: Arc<str>,
    pub authorization: Authorization,
    /// SHA-256 of the browser cookie's value.
    pub browser: [u8; 32],
    /// The link the sign-in was started with, for the way back to the list.
    pub link_token: String,
}

/// Why a sign-in could not be kept.
pub enum Refused {
    /// Too many sign-ins are waiting.
    Full,
    /// The cluster's Redis did not answer.
    Unavailable,
}

/// Why a sign-in's return was refused.
pub enum Return {
    Unknown,
    OtherBrowser,
    /// The cluster's Redis did not answer; the sign-in may still be there.
    Unavailable,
}

/// Sign-ins in progress, by state; bounded in all and per user, expired ones dropped.
pub struct PendingSignIns {
    kept: Kept,
    pub ttl: Duration,
}

enum Kept {
    Here(Mutex<HashMap<String, (Pending, Instant)>>),
    InRedis {
        cluster: Arc<Cluster>,
        /// One cipher per shared key: the first encrypts, every one decrypts.
        ciphers: Vec<Aes256Gcm>,
    },
}

impl PendingSignIns {
    /// Sign-ins kept by this process.
    pub fn here(ttl: Duration) -> PendingSignIns {
        PendingSignIns {
            kept: Kept::Here(Mutex::new(HashMap::new())),
            ttl,
        }
    }

    /// Sign-ins every node of `cluster` can finish, encrypted with keys derived from `keys`.
    pub fn in_cluster(ttl: Duration, cluster: Arc<Cluster>, keys: &[EncryptionKey]) -> Self {
        let ciphers = keys
            .iter()
            .map(|key| Aes256Gcm::new(&purpose_key(key, "connect-sign-in").into()))
            .collect();
        PendingSignIns {
            kept: Kept::InRedis { cluster, ciphers },
            ttl,
        }
    }

    /// Keeps `pending` under its state.
    pub async fn insert(&self, pending: Pending) -> Result<(), Refused> {
        match &self.kept {
            Kept::Here(flows) => {
                let mut flows = flows.lock().map_err(|_| Refused::Unavailable)?;
                insert_here(&mut flows, pending, self.ttl)
            }
            Kept::InRedis { cluster, ciphers } => {
                insert_in_redis(cluster, ciphers, pending, self.ttl).await
            }
        }
    }

    /// Takes the sign-in of `state` if it is known, unexpired, and this browser's; a sign-in
    /// presented by another browser stays (it is not that browser's to cancel).
    pub async fn take(&self, state: &str, browser: Option<[u8; 32]>) -> Result<Pending, Return> {
        match &self.kept {
            Kept::Here(flows) => {
                let mut flows = flows.lock().map_err(|_| Return::Unknown)?;
                let (flow, started) = flows.get(state).ok_or(Return::Unknown)?;
                if started.elapsed() >= self.ttl {
                    flows.remove(state);
                    return Err(Return::Unknown);
                }
                if browser != Some(flow.browser) {
                    return Err(Return::OtherBrowser);
                }
                flows
                    .remove(state)
                    .map(|(flow, _)| flow)
                    .ok_or(Return::Unknown)
            }
            Kept::InRedis { cluster, ciphers } => {
                take_from_redis(cluster, ciphers, state, browser).await
            }
        }
    }
}

fn insert_here(
    flows: &mut HashMap<String, (Pending, Instant)>,
    pending: Pending,
    ttl: Duration,
) -> Result<(), Refused> {
    flows.retain(|_, (_, started)| started.elapsed() < ttl);
    let mine: Vec<(&String, Instant)> = flows
        .iter()
        .filter(|(_, (flow, _))| flow.user == pending.user)
        .map(|(state, (_, started))| (state, *started))
        .collect();
    if mine.len() >= MAX_PENDING_PER_USER {
        if let Some(oldest) = mine
            .iter()
            .min_by_key(|(_, started)| *started)
            .map(|(state, _)| (*state).clone())
        {
            flows.remove(&oldest);
        }
    }
    if flows.len() >= MAX_PENDING {
        return Err(Refused::Full);
    }
    let state = pending.authorization.state.secret().clone();
    flows.insert(state, (pending, Instant::now()));
    Ok(())
}

/// What Redis keeps of a sign-in, before encryption.
#[derive(Serialize, Deserialize)]
struct Stored {
    user: String,
    server: String,
    url: String,
    verifier: String,
    redirect: String,
    browser: String,
    link_token: String,
    /// The `[[auth.fields]]` the user gave before the sign-in, checked when given.
    #[serde(default)]
    given: serde_json::Map<String, serde_json::Value>,
}

/// Purges expired entries, makes room in the user's set (dropping the oldest sign-in), and
/// keeps the new one unless the cluster-wide set is full: 1 kept, 0 full. Scores are expiry
/// times in milliseconds since the epoch.
const INSERT_SCRIPT: &str = r"
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  redis.call('ZREM', KEYS[2], oldest)
  redis.call('ZREM', KEYS[3], oldest)
  redis.call('DEL', ARGV[7] .. oldest)
end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  return 0
end
local expires = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], expires, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], expires, ARGV[4])
return 1
";

const SIGN_IN_PREFIX: &str = "gumcp:connect:sign-in:";
const ALL_SIGN_INS: &str = "gumcp:connect:sign-ins";

fn hex_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The user's set of sign-ins; named by a digest, so Redis holds no user id in a key name.
fn user_set(user: &str) -> String {
    format!("{ALL_SIGN_INS}:user:{}", hex_digest(user))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

async fn insert_in_redis(
    cluster: &Cluster,
    ciphers: &[Aes256Gcm],
    pending: Pending,
    ttl: Duration,
) -> Result<(), Refused> {
    let digest = hex_digest(pending.authorization.state.secret());
    let stored = Stored {
        user: pending.user.to_string(),
        server: pending.server.to_string(),
        url: pending.authorization.url.to_string(),
        verifier: pending.authorization.verifier.secret().clone(),
        redirect: pending.authorization.redirect.to_string(),
        browser: hex::encode(pending.browser),
        link_token: pending.link_token,
        given: pending.authorization.given,
    };
    let plain = serde_json::to_vec(&stored).map_err(|_| Refused::Unavailable)?;
    let (Ok(nonce), Some(cipher)) = (Nonce::<Aes256Gcm>::try_generate(), ciphers.first()) else {
        return Err(Refused::Unavailable);
    };
    let hidden = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: digest.as_bytes(),
            },
        )
        .map_err(|_| Refused::Unavailable)?;
    let mut sealed = nonce.to_vec();
    sealed.extend(hidden);
    let mut redis = cluster.redis().await.map_err(|_| Refused::Unavailable)?;
    let kept: i64 = redis::Script::new(INSERT_SCRIPT)
        .key(format!("{SIGN_IN_PREFIX}{digest}"))
        .key(user_set(&stored.user))
        .key(ALL_SIGN_INS)
        .arg(sealed)
        .arg(ttl.as_millis() as u64)
        .arg(now_millis())
        .arg(&digest)
        .arg(MAX_PENDING_PER_USER)
        .arg(MAX_PENDING)
        .arg(SIGN_IN_PREFIX)
        .invoke_async(&mut redis)
        .await
        .map_err(|_| Refused::Unavailable)?;
    if kept == 1 {
        Ok(())
    } else {
        Err(Refused::Full)
    }
}

async fn take_from_redis(
    cluster: &Cluster,
    ciphers: &[Aes256Gcm],
    state: &str,
    browser: Option<[u8; 32]>,
) -> Result<Pending, Return> {
    let digest = hex_digest(state);
    let key = format!("{SIGN_IN_PREFIX}{digest}");
    let mut redis = cluster.redis().await.map_err(|_| Return::Unavailable)?;
    let sealed: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .map_err(|_| Return::Unavailable)?;
    let stored = open(ciphers, &sealed.ok_or(Return::Unknown)?, &digest)?;
    if browser.map(hex::encode).as_deref() != Some(stored.browser.as_str()) {
        return Err(Return::OtherBrowser);
    }
    let removed: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .map_err(|_| Return::Unavailable)?;
    if removed != 1 {
        return Err(Return::Unknown);
    }
    // The sets are bookkeeping for the bounds: an entry left by a failure here expires.
    let _: Result<(), _> = redis::pipe()
        .cmd("ZREM")
        .arg(user_set(&stored.user))
        .arg(&digest)
        .ignore()
        .cmd("ZREM")
        .arg(ALL_SIGN_INS)
        .arg(&digest)
        .ignore()
        .query_async(&mut redis)
        .await;
    let unreadable = |_| Return::Unknown;
    Ok(Pending {
        user: Arc::from(stored.user),
        server: Arc::from(stored.server),
        authorization: Authorization {
            url: Url::parse(&stored.url).map_err(unreadable)?,
            state: CsrfToken::new(state.to_owned()),
            verifier: PkceCodeVerifier::new(stored.verifier),
            redirect: Url::parse(&stored.redirect).map_err(unreadable)?,
            given: stored.given,
        },
        browser: browser.ok_or(Return::OtherBrowser)?,
        link_token: stored.link_token,
    })
}

/// A stored sign-in decrypted with whichever shared key encrypted it; one that no key opens,
/// or that was copied under another state, is unknown.
fn open(ciphers: &[Aes256Gcm], sealed: &[u8], digest: &str) -> Result<Stored, Return> {
    let (nonce, hidden) = sealed.split_at_checked(12).ok_or(Return::Unknown)?;
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| Return::Unknown)?;
    let plain = ciphers
        .iter()
        .find_map(|cipher| {
            let payload = Payload {
                msg: hidden,
                aad: digest.as_bytes(),
            };
            cipher.decrypt(&nonce, payload).ok()
        })
        .ok_or(Return::Unknown)?;
    serde_json::from_slice(&plain).map_err(|_| Return::Unknown)
}
