//! Who may call the HTTP service, and as which user. The key a caller presents (the `api_key`
//! of guMCP's `user_id:api_key` session key, or `Authorization: Bearer`) is compared by its
//! SHA-256 digest in constant time against every configured digest, so neither the keys nor
//! the timing of a comparison give anything away. Keys never appear in errors or logs. In
//! `oauth` mode the bearer token is an OAuth access token, checked by
//! [`super::resource_server`]; it names the user and goes no further.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::sync::Arc;

use super::resource_server::{ResourceServer, TokenRejected};
use crate::config::{AccessMode, Settings};

/// The access rules in force.
pub struct CallerAccess {
    mode: AccessMode,
    keys: Vec<([u8; 32], String)>,
    open_user: String,
    tokens: Option<Arc<ResourceServer>>,
}

/// Who a request acts for, and the key it presented (forwarded to a remote store).
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub key: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user_id", &self.user_id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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
}

impl Denied {
    /// 403 for a valid token without the scope needed, 401 for everything else.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Denied::Token(TokenRejected::InsufficientScope(_)))
    }
}

impl CallerAccess {
    /// The rules of `settings`; `tokens` checks access tokens in `oauth` mode.
    pub fn from_settings(settings: &Settings, tokens: Option<Arc<ResourceServer>>) -> CallerAccess {
        let keys = settings
            .access
            .api_keys
            .iter()
            .filter_map(|entry| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&entry.sha256, &mut digest).ok()?;
                Some((digest, entry.user_id.clone()))
            })
            .collect();
        CallerAccess {
            mode: settings.access_mode(),
            keys,
            open_user: settings.stdio.user_id.clone(),
            tokens,
        }
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
        let presented = path.and_then(|(_, key)| key).or(bearer);
        match self.mode {
            AccessMode::Open => Ok(Caller {
                user_id: path.map_or_else(|| self.open_user.clone(), |(user, _)| user.to_owned()),
                key: presented.map(str::to_owned),
            }),
            AccessMode::ApiKeys => {
                let key = presented.ok_or(Denied::NoKey)?;
                let user = self.user_of(key).ok_or(Denied::UnknownKey)?;
                if let Some((path_user, _)) = path {
                    if path_user != user {
                        return Err(Denied::OtherUser(path_user.to_owned()));
                    }
                }
                Ok(Caller {
                    user_id: user.to_owned(),
                    key: Some(key.to_owned()),
                })
            }
            AccessMode::Oauth => {
                let token = bearer.ok_or(Denied::NoToken)?;
                let Some(tokens) = &self.tokens else {
                    return Err(Denied::NoToken);
                };
                let user = tokens.check(token, endpoint).map_err(Denied::Token)?;
                if let Some((path_user, _)) = path {
                    if path_user != user.user_id {
                        return Err(Denied::OtherUser(path_user.to_owned()));
                    }
                }
                // The token stays here: it is never handed on to upstream APIs.
                Ok(Caller {
                    user_id: user.user_id,
                    key: None,
                })
            }
            AccessMode::Remote => {
                let key = presented.ok_or(Denied::NoKey)?;
                let (user, _) = path.ok_or(Denied::NoUser)?;
                Ok(Caller {
                    user_id: user.to_owned(),
                    key: Some(key.to_owned()),
                })
            }
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
    fn user_of(&self, key: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for (known, user) in &self.keys {
            if bool::from(known.ct_eq(&digest)) {
                found = Some(user.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyEntry;

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
        CallerAccess::from_settings(&settings, None)
    }

    #[test]
    fn open_access_takes_the_user_from_the_path_or_is_local() {
        let open = access(AccessMode::Open);
        assert_eq!(
            open.caller(Some(("bob", None)), None, E).unwrap().user_id,
            "bob"
        );
        assert_eq!(open.caller(None, None, E).unwrap().user_id, "local");
    }

    #[test]
    fn an_api_key_decides_the_user() {
        let keys = access(AccessMode::ApiKeys);
        let caller = keys.caller(None, Some("alice-key"), E).unwrap();
        assert_eq!(caller.user_id, "alice");
        let from_path = keys
            .caller(Some(("alice", Some("alice-key"))), None, E)
            .unwrap();
        assert_eq!(from_path.user_id, "alice");
        assert_eq!(keys.caller(None, None, E), Err(Denied::NoKey));
        assert_eq!(keys.caller(None, Some("guess"), E), Err(Denied::UnknownKey));
        assert_eq!(
            keys.caller(Some(("mallory", Some("alice-key"))), None, E),
            Err(Denied::OtherUser("mallory".into()))
        );
    }

    #[test]
    fn remote_access_needs_a_key_and_a_user() {
        let remote = access(AccessMode::Remote);
        assert_eq!(remote.caller(None, Some("k"), E), Err(Denied::NoUser));
        assert_eq!(
            remote.caller(Some(("u", None)), None, E),
            Err(Denied::NoKey)
        );
        let caller = remote.caller(Some(("u", Some("k"))), None, E).unwrap();
        assert_eq!(caller.key.as_deref(), Some("k"));
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
