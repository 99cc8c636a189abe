//! Who may call the HTTP service, and as which user. The key a caller presents (the `api_key`
//! of guMCP's `user_id:api_key` session key, or `Authorization: Bearer`) is compared by its
//! SHA-256 digest in constant time against every configured digest, so neither the keys nor
//! the timing of a comparison give anything away. Keys never appear in errors or logs. In
//! `oauth` mode the bearer token is an OAuth access token, checked by
//! [`super::resource_server`]; it names the user and goes no further.

use subtle::ConstantTimeEq;

use std::sync::Arc;

use super::principal::{KeyDigest, PresentedKey, Principal};
use super::remote::{KeyVerifier, Verdict};
use super::resource_server::{ResourceServer, TokenRejected};
use crate::config::{AccessMode, Settings};

/// The access rules in force.
pub struct CallerAccess {
    mode: AccessMode,
    keys: Vec<(KeyDigest, Arc<str>)>,
    open_user: Arc<str>,
    tokens: Option<Arc<ResourceServer>>,
    /// `remote` mode: the credential store's answer to "does this key belong to this user?".
    verifier: Option<KeyVerifier>,
}

/// Who a request acts for, and the key it presented (handed to a remote credential store).
/// `Debug` shows the key's digest prefix only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub key: Option<PresentedKey>,
    /// How the caller was let in (`open`, `api_keys`, `remote`, `oauth`; `stdio` for a pipe),
    /// for the audit log.
    pub via: &'static str,
}

/// Why a request is refused (401); the text is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "this service needs an API key: use /{{server}}/{{user_id}}:{{api_key}}/… or send \
         Authorization: Bearer <api_key>"
    )]
    NoKey,
    #[error("the API key is not valid")]
    UnknownKey,
    #[error("the API key does not belong to user {0}")]
    OtherUser(String),
    #[error("this service needs the user in the path: use /{{server}}/{{user_id}}:{{api_key}}/…")]
    NoUser,
    #[error("this service needs an OAuth access token: send Authorization: Bearer <token>")]
    NoToken,
    #[error("{0}")]
    Token(TokenRejected),
    #[error("the credential store does not know this API key for user {0}")]
    NotVouched(String),
    #[error("the credential store could not check the API key right now; retry later")]
    VerifierUnavailable,
}

impl Denied {
    /// 403 for a valid token without the scope needed, 401 for everything else.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Denied::Token(TokenRejected::InsufficientScope(_)))
    }

    /// Whether the refusal is for now only (the verification endpoint failed): 503, not 401.
    pub fn is_transient(&self) -> bool {
        matches!(self, Denied::VerifierUnavailable)
    }
}

impl CallerAccess {
    /// The rules of `settings`; `tokens` checks access tokens in `oauth` mode, `verifier`
    /// vouches for keys in `remote` mode (when the store offers a verification endpoint).
    pub fn from_settings(
        settings: &Settings,
        tokens: Option<Arc<ResourceServer>>,
        verifier: Option<KeyVerifier>,
    ) -> CallerAccess {
        let keys = settings
            .access
            .api_keys
            .iter()
            .filter_map(|entry| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&entry.sha256, &mut digest).ok()?;
                Some((KeyDigest::from(digest), Arc::from(entry.user_id.as_str())))
            })
            .collect();
        CallerAccess {
            mode: settings.access_mode(),
            keys,
            open_user: Arc::from(settings.stdio.user_id.as_str()),
            tokens,
            verifier,
        }
    }

    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// Decides the caller of a request: `path` is the user id and key of a session key in the
    /// URL (if the route has one), `bearer` the token of an `Authorization: Bearer` header,
    /// `endpoint` the request's path (an access token may be meant for that endpoint alone).
    pub fn caller(
        &self,
        path: Option<(&str, Option<&str>)>,
        bearer: Option<&str>,
        endpoint: &str,
    ) -> Result<Caller, Denied> {
        let presented = path
            .and_then(|(_, key)| key)
            .or(bearer)
            .map(PresentedKey::new);
        let path_user = path.map(|(user, _)| user);
        let claimed = |user: &str| -> Result<(), Denied> {
            match path_user {
                Some(path_user) if path_user != user => {
                    Err(Denied::OtherUser(path_user.to_owned()))
                }
                _ => Ok(()),
            }
        };
        match self.mode {
            AccessMode::Open => Ok(Caller {
                principal: Principal::user(
                    path_user.map_or_else(|| self.open_user.clone(), Arc::from),
                ),
                key: presented,
                via: "open",
            }),
            AccessMode::ApiKeys => {
                let key = presented.ok_or(Denied::NoKey)?;
                let user = self.user_of(key.digest()).ok_or(Denied::UnknownKey)?;
                claimed(&user)?;
                Ok(Caller {
                    principal: Principal::user(user),
                    key: Some(key),
                    via: "api_keys",
                })
            }
            AccessMode::Oauth => {
                let token = bearer.ok_or(Denied::NoToken)?;
                let Some(tokens) = &self.tokens else {
                    return Err(Denied::NoToken);
                };
                let user = tokens.check(token, endpoint).map_err(Denied::Token)?;
                claimed(&user.user_id)?;
                // The token stays here: it is never handed on to upstream APIs.
                Ok(Caller {
                    principal: Principal::user(user.user_id),
                    key: None,
                    via: "oauth",
                })
            }
            AccessMode::Remote => {
                let key = presented.ok_or(Denied::NoKey)?;
                let user = path_user.ok_or(Denied::NoUser)?;
                Ok(Caller {
                    principal: Principal::claimed_by(user, key.digest()),
                    key: Some(key),
                    via: "remote",
                })
            }
        }
    }

    /// In `remote` mode with a verification endpoint, asks it (or its cached answer for this
    /// key) whether the key belongs to the user: yes lifts the caller to the user's own
    /// principal, no refuses. Everything else passes as it is.
    pub async fn vouch(&self, mut caller: Caller) -> Result<Caller, Denied> {
        let (Some(verifier), Some(key)) = (&self.verifier, &caller.key) else {
            return Ok(caller);
        };
        if self.mode != AccessMode::Remote {
            return Ok(caller);
        }
        match verifier.verify(&caller.principal.user, key).await {
            Verdict::Yes => {
                caller.principal = Principal::user(caller.principal.user.clone());
                Ok(caller)
            }
            Verdict::No => Err(Denied::NotVouched(caller.principal.user.to_string())),
            Verdict::Unknown => Err(Denied::VerifierUnavailable),
        }
    }

    /// The `WWW-Authenticate` value that goes with a refusal.
    pub fn challenge(&self, denied: &Denied) -> String {
        match (&self.tokens, denied) {
            (Some(tokens), Denied::Token(rejected)) => tokens.challenge(Some(rejected)),
            (Some(tokens), _) => tokens.challenge(None),
            (None, _) => "Bearer".to_owned(),
        }
    }

    /// The RFC 9728 metadata, in `oauth` mode.
    pub fn resource_metadata(&self, path: Option<&str>) -> Option<serde_json::Value> {
        self.tokens.as_ref().map(|tokens| tokens.metadata(path))
    }

    /// The user a key acts for. Every configured digest is compared, in constant time.
    fn user_of(&self, digest: KeyDigest) -> Option<Arc<str>> {
        let mut found = None;
        for (known, user) in &self.keys {
            if bool::from(known.bytes().ct_eq(digest.bytes())) {
                found = Some(user.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyEntry;
    use sha2::{Digest, Sha256};

    /// The endpoint every test request goes to.
    const E: &str = "/simple-tools-server/mcp";

    fn access(mode: AccessMode) -> CallerAccess {
        let mut settings = Settings::default();
        settings.access.mode = Some(mode);
        settings.access.api_keys = vec![ApiKeyEntry {
            user_id: "alice".into(),
            sha256: hex::encode(Sha256::digest(b"alice-key")),
        }];
        settings.stdio.user_id = "local".into();
        CallerAccess::from_settings(&settings, None, None)
    }

    fn user_of(caller: Result<Caller, Denied>) -> String {
        caller.unwrap().principal.user.to_string()
    }

    #[test]
    fn open_access_takes_the_user_from_the_path_or_is_local() {
        let open = access(AccessMode::Open);
        assert_eq!(user_of(open.caller(Some(("bob", None)), None, E)), "bob");
        assert_eq!(user_of(open.caller(None, None, E)), "local");
    }

    #[test]
    fn an_api_key_decides_the_user() {
        let keys = access(AccessMode::ApiKeys);
        let caller = keys.caller(None, Some("alice-key"), E).unwrap();
        assert_eq!(caller.principal, Principal::user("alice"));
        let from_path = keys.caller(Some(("alice", Some("alice-key"))), None, E);
        assert_eq!(user_of(from_path), "alice");
        assert_eq!(keys.caller(None, None, E), Err(Denied::NoKey));
        assert_eq!(keys.caller(None, Some("guess"), E), Err(Denied::UnknownKey));
        assert_eq!(
            keys.caller(Some(("mallory", Some("alice-key"))), None, E),
            Err(Denied::OtherUser("mallory".into()))
        );
    }

    #[test]
    fn remote_access_needs_a_key_and_a_user_and_keeps_keys_apart() {
        let remote = access(AccessMode::Remote);
        assert_eq!(remote.caller(None, Some("k"), E), Err(Denied::NoUser));
        assert_eq!(
            remote.caller(Some(("u", None)), None, E),
            Err(Denied::NoKey)
        );
        let caller = remote.caller(Some(("u", Some("k"))), None, E).unwrap();
        assert_eq!(caller.key.as_ref().map(PresentedKey::secret), Some("k"));
        assert_eq!(
            caller.principal,
            Principal::claimed_by("u", KeyDigest::of("k"))
        );
        let other = remote.caller(Some(("u", Some("k2"))), None, E).unwrap();
        assert_ne!(caller.principal, other.principal);
    }

    #[test]
    fn refusals_and_debug_output_never_show_a_key() {
        let keys = access(AccessMode::ApiKeys);
        let denied = keys
            .caller(Some(("mallory", Some("alice-key"))), None, E)
            .unwrap_err();
        assert!(!denied.to_string().contains("alice-key"));
        let caller = keys.caller(None, Some("alice-key"), E).unwrap();
        assert!(!format!("{caller:?}").contains("alice-key"));
    }
}
