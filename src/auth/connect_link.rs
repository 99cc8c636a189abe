//! Short-lived signed links to the web connect pages, and the CSRF tokens of their forms.
//!
//! A browser sends no bearer header, so the pages cannot decide who is asking the way an MCP
//! request is decided. Instead, someone already decided — an MCP caller whose tool needs an
//! account, or a `POST /connect/link` with the caller's key — gets a link whose token names
//! the user and the server (or every server) and expires. What it names is encrypted
//! (AES-256-GCM), since the spec forbids personal information in an elicitation's URL, and
//! then sealed (HMAC-SHA-256 with an expiry, rmcp's `RequestStateCodec`); both keys are made
//! at start, so a token cannot be read, forged or altered, and it dies with the process — or,
//! in a cluster, come from `cluster.shared_keys`, so a link made on one node opens on all. Form tokens (CSRF) are sealed the same way, bound to the
//! user, the server and the action, so a page of another site cannot make a form that passes.

use std::sync::OnceLock;
use std::time::Duration;

use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;
use rmcp::model::{RequestStateCodec, SealOptions};

/// Where a link may be used: one server's page, or the list of all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkScope {
    All,
    Server(String),
}

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaim {
    pub user: String,
    pub scope: LinkScope,
}

impl LinkClaim {
    /// Whether the link may act on `server`.
    pub fn allows(&self, server: &str) -> bool {
        match &self.scope {
            LinkScope::All => true,
            LinkScope::Server(allowed) => allowed == server,
        }
    }
}

/// Why a link or form token was refused; safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(
        "this link is not valid: it expired, was altered, or was made before the service \
         restarted; ask for a new one (call the tool again, or POST /connect/link)"
    )]
    Invalid,
    #[error(
        "this form is out of date or was not made by this service; reload the page and try again"
    )]
    BadForm,
}

/// Signs and checks connect links; knows the public address the links start with.
pub struct ConnectLinks {
    codec: RequestStateCodec,
    /// Hide whom and what a link names: the first hides, every one reveals (key rotation in a
    /// cluster). Each token's nonce is random, since every node of a cluster uses the key.
    ciphers: Vec<Aes256Gcm>,
    ttl: Duration,
    /// `http.public_url`, or the loopback address `serve` bound; unset until then (and for
    /// stdio, where there are no pages to link to).
    base: OnceLock<String>,
}

/// What every link token is bound to, apart from its content, so no other sealed value of
/// this process passes as one.
const LINK_PURPOSE: &[u8] = b"gumcp-connect-link";
const FORM_PURPOSE: &[u8] = b"gumcp-connect-form";

impl ConnectLinks {
    /// Links valid for `ttl`, signed with a random per-process key.
    pub fn random(ttl: Duration) -> ConnectLinks {
        // Two v4 UUIDs give 32 random bytes: the codec's minimum, and an AES-256 key.
        let random_key = || -> [u8; 32] {
            let mut key = [0; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key
        };
        ConnectLinks {
            codec: RequestStateCodec::new_unchecked(random_key().to_vec()),
            ciphers: vec![Aes256Gcm::new(&random_key().into())],
            ttl,
            base: OnceLock::new(),
        }
    }

    /// Links valid for `ttl` that every node of a cluster makes and opens alike: sealed and
    /// hidden with keys derived from `cluster.shared_keys` (the first seals, all open).
    pub fn shared(
        keys: &[crate::config::EncryptionKey],
        ttl: Duration,
    ) -> Result<ConnectLinks, rmcp::model::RequestStateError> {
        use crate::cluster::keys::{keyring, purpose_key};
        Ok(ConnectLinks {
            codec: keyring(keys, "connect-link-seal")?,
            ciphers: keys
                .iter()
                .map(|key| Aes256Gcm::new(&purpose_key(key, "connect-link-cipher").into()))
                .collect(),
            ttl,
            base: OnceLock::new(),
        })
    }

    /// How long a link stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Sets the public address links start with (once; later calls change nothing).
    pub fn set_base(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    /// The public address, once known.
    pub fn base(&self) -> Option<&str> {
        self.base.get().map(String::as_str)
    }

    /// A token for `user` and `scope`. User ids (checked by `ids`) hold no NUL.
    pub fn token(&self, user: &str, scope: &LinkScope) -> String {
        let scope = match scope {
            LinkScope::All => "",
            LinkScope::Server(server) => server.as_str(),
        };
        let payload = format!("{user}\u{0}{scope}");
        // Drawing a nonce fails only without an OS random source, and encryption only past the
        // cipher's message size, which no user id reaches; a token that hides nothing then
        // opens as invalid rather than naming anyone.
        let mut sealed = Vec::new();
        if let (Ok(nonce), Some(cipher)) =
            (Nonce::<Aes256Gcm>::try_generate(), self.ciphers.first())
        {
            let hidden = cipher.encrypt(
                &nonce,
                Payload {
                    msg: payload.as_bytes(),
                    aad: LINK_PURPOSE,
                },
            );
            sealed.extend_from_slice(&nonce);
            sealed.extend(hidden.unwrap_or_default());
        }
        let options = SealOptions::new()
            .associated_data(LINK_PURPOSE)
            .ttl(self.ttl);
        self.codec.seal_with(&sealed, &options)
    }

    /// The link to the page for `scope` (a server's page, or the list), once the address is
    /// known.
    pub fn link(&self, user: &str, scope: &LinkScope) -> Option<String> {
        let base = self.base()?;
        let token = self.token(user, scope);
        Some(match scope {
            LinkScope::All => format!("{base}/connect?t={token}"),
            LinkScope::Server(server) => format!("{base}/connect/{server}?t={token}"),
        })
    }

    /// What a token says, if this process made it and it has not expired.
    pub fn open(&self, token: &str) -> Result<LinkClaim, LinkError> {
        let sealed = self
            .codec
            .open_with(token, LINK_PURPOSE)
            .map_err(|_| LinkError::Invalid)?;
        let (nonce, hidden) = sealed.split_at_checked(12).ok_or(LinkError::Invalid)?;
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| LinkError::Invalid)?;
        let bytes = self
            .ciphers
            .iter()
            .find_map(|cipher| {
                let hidden = Payload {
                    msg: hidden,
                    aad: LINK_PURPOSE,
                };
                cipher.decrypt(&nonce, hidden).ok()
            })
            .ok_or(LinkError::Invalid)?;
        let text = String::from_utf8(bytes).map_err(|_| LinkError::Invalid)?;
        let (user, scope) = text.split_once('\u{0}').ok_or(LinkError::Invalid)?;
        Ok(LinkClaim {
            user: user.to_owned(),
            scope: if scope.is_empty() {
                LinkScope::All
            } else {
                LinkScope::Server(scope.to_owned())
            },
        })
    }

    /// A form token for `action` on `server` by `user`.
    pub fn form_token(&self, user: &str, server: &str, action: &str) -> String {
        let binding = Self::form_binding(user, server, action);
        let options = SealOptions::new().associated_data(&binding).ttl(self.ttl);
        self.codec.seal_with(b"", &options)
    }

    /// Checks a form token; missing, altered, expired or made for anything else is refused.
    pub fn check_form_token(
        &self,
        token: Option<&str>,
        user: &str,
        server: &str,
        action: &str,
    ) -> Result<(), LinkError> {
        let token = token.ok_or(LinkError::BadForm)?;
        let binding = Self::form_binding(user, server, action);
        self.codec
            .open_with(token, &binding)
            .map(|_| ())
            .map_err(|_| LinkError::BadForm)
    }

    fn form_binding(user: &str, server: &str, action: &str) -> Vec<u8> {
        let mut binding = FORM_PURPOSE.to_vec();
        for part in [user, server, action] {
            binding.push(0);
            binding.extend_from_slice(part.as_bytes());
        }
        binding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_says_who_and_where_and_nothing_else_passes() {
        let links = ConnectLinks::random(Duration::from_secs(60));
        let scope = LinkScope::Server("github".into());
        let token = links.token("alice", &scope);
        let claim = links.open(&token).unwrap();
        assert_eq!(claim.user, "alice");
        // Neither the user nor the server can be read from the token (or from any of its
        // base64 parts decoded).
        use base64::Engine;
        for part in token.split('.') {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded);
            assert!(
                !text.contains("alice") && !text.contains("github"),
                "{text}"
            );
        }
        assert!(!token.contains("alice") && !token.contains("github"));
        assert_ne!(links.token("alice", &scope), token, "every token is new");
        assert!(claim.allows("github") && !claim.allows("slack"));
        let all = links.open(&links.token("bob", &LinkScope::All)).unwrap();
        assert!(all.allows("slack"));
        let other = ConnectLinks::random(Duration::from_secs(60));
        let key = |id: &str, byte| crate::config::EncryptionKey {
            id: id.to_owned(),
            bytes: [byte; 32],
        };
        let node = ConnectLinks::shared(&[key("new", 2), key("old", 1)], links.ttl()).unwrap();
        let peer = ConnectLinks::shared(&[key("old", 1)], links.ttl()).unwrap();
        let shared = peer.token("carol", &scope);
        assert_eq!(
            node.open(&shared).unwrap().user,
            "carol",
            "a peer's link opens"
        );
        assert_eq!(links.open(&shared), Err(LinkError::Invalid));
        assert_eq!(
            other.open(&links.token("alice", &scope)),
            Err(LinkError::Invalid)
        );
        let form = links.form_token("alice", "github", "disconnect");
        assert_eq!(links.open(&form), Err(LinkError::Invalid));
        assert!(links
            .check_form_token(Some(&form), "alice", "github", "disconnect")
            .is_ok());
        for (user, server, action) in [
            ("bob", "github", "disconnect"),
            ("alice", "slack", "disconnect"),
            ("alice", "github", "api_key"),
        ] {
            assert_eq!(
                links.check_form_token(Some(&form), user, server, action),
                Err(LinkError::BadForm)
            );
        }
        assert_eq!(
            links.check_form_token(None, "alice", "github", "disconnect"),
            Err(LinkError::BadForm)
        );
    }
}
