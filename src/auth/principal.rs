//! Who a request acts for. A user id alone is not enough wherever a key is the only thing that
//! claims it: in `remote` access mode with no verification endpoint, a request with user `u` and
//! key `k` may come from anyone who knows `u`. Whatever such a request creates or finds —
//! server instances and their stores, sessions, in-flight shares, cached credentials and the
//! refreshes that fill them — is therefore kept per (user, key digest), the way guMCP keeps
//! its server instances per `user_id:api_key`. Where something did vouch for the key (the
//! configured key list, an OAuth issuer, the remote verification endpoint) or no key is
//! involved (open access, stdio), the user id is the whole principal.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The SHA-256 of a key: what is remembered of a key anywhere (never the key itself).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(key.as_bytes()).into())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex digits: enough to tell keys apart in a log, nothing to guess a key from.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl From<[u8; 32]> for KeyDigest {
    fn from(bytes: [u8; 32]) -> KeyDigest {
        KeyDigest(bytes)
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key:{}", self.short())
    }
}

/// A key a caller presented, to hand to the remote credential store, with its digest for
/// every place that must tell keys apart. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PresentedKey {
    secret: Arc<str>,
    digest: KeyDigest,
}

impl PresentedKey {
    pub fn new(secret: &str) -> PresentedKey {
        PresentedKey {
            secret: Arc::from(secret),
            digest: KeyDigest::of(secret),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn digest(&self) -> KeyDigest {
        self.digest
    }
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedKey({:?})", self.digest)
    }
}

impl PartialEq for PresentedKey {
    fn eq(&self, other: &PresentedKey) -> bool {
        self.digest == other.digest
    }
}

impl Eq for PresentedKey {}

/// A user, and the key digest that partitions what they may reach when only that key vouches
/// for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub user: Arc<str>,
    pub partition: Option<KeyDigest>,
}

impl Principal {
    /// A user something has vouched for (or that needs no vouching: stdio, open access).
    pub fn user(user: impl Into<Arc<str>>) -> Principal {
        Principal {
            user: user.into(),
            partition: None,
        }
    }

    /// What a sealed `requestState` is bound to: the user, and the key where it partitions,
    /// so a state handed out to one key is refused when another key replays it.
    pub fn seal_subject(&self) -> std::borrow::Cow<'_, str> {
        match &self.partition {
            None => std::borrow::Cow::Borrowed(&self.user),
            Some(key) => {
                std::borrow::Cow::Owned(format!("{}\u{0}{}", self.user, hex::encode(key.bytes())))
            }
        }
    }

    /// A user claimed by `key` alone.
    pub fn claimed_by(user: impl Into<Arc<str>>, key: KeyDigest) -> Principal {
        Principal {
            user: user.into(),
            partition: Some(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_neither_key_nor_whole_digest() {
        let key = PresentedKey::new("very-secret-key");
        let shown = format!("{key:?} {:?}", Principal::claimed_by("u", key.digest()));
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(
            !shown.contains(&hex::encode(key.digest().bytes())),
            "{shown}"
        );
    }

    #[test]
    fn principals_of_one_user_differ_by_the_key_that_claims_them() {
        let one = Principal::claimed_by("u", KeyDigest::of("a"));
        let other = Principal::claimed_by("u", KeyDigest::of("b"));
        assert_ne!(one, other);
        assert_ne!(one, Principal::user("u"));
        assert_eq!(one, Principal::claimed_by("u", KeyDigest::of("a")));
    }
}
