//! The keys every node of a cluster shares (`cluster.shared_keys`), so what one node seals for a
//! client — a 2026-07-28 `requestState`, a connect link, a connect form's token — opens on
//! whichever node the client's next request lands. Each use gets a key of its own, derived from
//! the configured one and the use's name, so no sealed value of one kind passes as another.

use rmcp::model::{RequestStateCodec, RequestStateError};
use sha2::{Digest, Sha256};

use crate::config::EncryptionKey;

/// The key for `purpose` derived from `key`: SHA-256 over a label, the purpose and the key (the
/// configured key is 32 random bytes, so a hash is enough to separate the uses).
pub fn purpose_key(key: &EncryptionKey, purpose: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"gumcp-cluster-key\0");
    hash.update(purpose.as_bytes());
    hash.update([0]);
    hash.update(key.bytes);
    hash.finalize().into()
}

/// A sealing codec over every key for `purpose`: the first seals, all open.
pub fn keyring(
    keys: &[EncryptionKey],
    purpose: &str,
) -> Result<RequestStateCodec, RequestStateError> {
    let sealing = keys.first().map(|key| key.id.clone()).unwrap_or_default();
    RequestStateCodec::new_with_keyring(
        sealing,
        keys.iter()
            .map(|key| (key.id.clone(), purpose_key(key, purpose).to_vec())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> EncryptionKey {
        EncryptionKey {
            id: id.to_owned(),
            bytes: [byte; 32],
        }
    }

    #[test]
    fn purposes_and_keys_give_different_keys() {
        let one = key("one", 1);
        assert_ne!(purpose_key(&one, "a"), purpose_key(&one, "b"));
        assert_ne!(purpose_key(&one, "a"), purpose_key(&key("one", 2), "a"));
    }

    /// A rotation: nodes with the new key first still open what the old key sealed, and
    /// nodes not yet rotated open what the new key sealed.
    #[test]
    fn both_keys_open_during_a_rotation_and_the_first_seals() {
        let (old, new) = (key("old", 1), key("new", 2));
        let before = keyring(std::slice::from_ref(&old), "state").unwrap();
        let during = keyring(&[new.clone(), old.clone()], "state").unwrap();
        let peer = keyring(&[old.clone(), new.clone()], "state").unwrap();
        let sealed = before.seal(b"x");
        assert_eq!(during.open(&sealed).unwrap(), b"x");
        assert_eq!(peer.open(&during.seal(b"y")).unwrap(), b"y");
        let after = keyring(&[new], "state").unwrap();
        assert!(after.open(&sealed).is_err());
        assert!(keyring(&[old], "links").unwrap().open(&sealed).is_err());
    }
}
