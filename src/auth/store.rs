//! Where credentials live: the [`AuthClient`] trait and its errors. The auth actor is the only
//! caller on the request path; the `auth` command uses it to save what a user connects.

use futures::future::BoxFuture;

use super::credentials::{Credentials, OAuthApp};
use super::principal::PresentedKey;
use crate::ids::IdError;

/// Why credentials could not be had. `Rejected` means the user must reconnect; `Transient`
/// means trying again later may work. Messages name the service and user, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no {service} account is connected for user {user}: connect one with \
         `gumcp-actors auth --server {service} --user-id {user}`"
    )]
    NotConnected { service: String, user: String },
    #[error(
        "{service} no longer accepts the connection of user {user} ({reason}): reconnect with \
         `gumcp-actors auth --server {service} --user-id {user}`"
    )]
    Rejected {
        service: String,
        user: String,
        reason: String,
    },
    #[error("no {service} account is connected for user {user}: connect one at {url}")]
    NotConnectedAt {
        service: String,
        user: String,
        url: String,
    },
    #[error(
        "{service} no longer accepts the connection of user {user} ({reason}): reconnect at {url}"
    )]
    RejectedAt {
        service: String,
        user: String,
        reason: String,
        url: String,
    },
    #[error("{service} could not be reached to refresh the token of user {user}: {reason}")]
    Transient {
        service: String,
        user: String,
        reason: String,
    },
    #[error("no OAuth app is configured for {service}: {detail}")]
    NoOAuthApp { service: String, detail: String },
    #[error("the credential store failed: {0}")]
    Store(String),
    /// The store (a database) cannot be reached now; trying again later may work.
    #[error("the credential store is unavailable, try again shortly: {0}")]
    StoreUnavailable(String),
    #[error(transparent)]
    Id(#[from] IdError),
}

impl AuthError {
    /// The same refusal pointing at the connect page `url` instead of the `auth` command;
    /// other errors stay as they are.
    pub fn with_connect_link(self, url: String) -> AuthError {
        match self {
            AuthError::NotConnected { service, user } => {
                AuthError::NotConnectedAt { service, user, url }
            }
            AuthError::Rejected {
                service,
                user,
                reason,
            } => AuthError::RejectedAt {
                service,
                user,
                reason,
                url,
            },
            other => other,
        }
    }

    /// Whether the user must connect (or reconnect) the account before a call can succeed.
    pub fn needs_connecting(&self) -> bool {
        matches!(
            self,
            AuthError::NotConnected { .. } | AuthError::Rejected { .. }
        )
    }
}

/// A credential store. Implementations: [`super::local::LocalStore`] (guMCP's `local_auth/`
/// files), [`super::remote::RemoteStore`] (a credentials HTTP API) and
/// [`super::postgres::PostgresStore`] (PostgreSQL, encrypted rows).
pub trait AuthClient: Send + Sync {
    /// The stored credentials of `user` for `service`, if any. `caller_key` is the API key the
    /// caller presented (guMCP's `user_id:api_key`), which a remote store forwards.
    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        caller_key: Option<&'a PresentedKey>,
    ) -> BoxFuture<'a, Result<Option<Credentials>, AuthError>>;

    /// The OAuth app of `service`.
    fn oauth_app<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<OAuthApp, AuthError>>;

    /// Stores `credentials` of `user` for `service`, replacing what was there.
    fn save<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<(), AuthError>>;

    /// The fence of the last [`AuthClient::save_fenced`] of `user`'s credentials for
    /// `service` (cluster mode's refresh lock starts its fences above it); 0 when there was
    /// none, or the store keeps no fences.
    fn refresh_fence<'a>(
        &'a self,
        _service: &'a str,
        _user: &'a str,
    ) -> BoxFuture<'a, Result<i64, AuthError>> {
        Box::pin(async { Ok(0) })
    }

    /// Stores refreshed `credentials` only if `fence` is greater than the last saved fence
    /// (and the account is still connected); whether they were stored. A stale fence means
    /// a later refresh or connection was saved meanwhile, which stays. A store without fences
    /// (files on one node) saves.
    fn save_fenced<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        credentials: &'a Credentials,
        _fence: i64,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move { self.save(service, user, credentials).await.map(|_| true) })
    }

    /// Deletes `user`'s credentials for `service` (a disconnect); whether there were any. A
    /// store that cannot delete says so.
    fn delete<'a>(
        &'a self,
        service: &'a str,
        _user: &'a str,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move {
            Err(AuthError::Store(format!(
                "this credential store cannot disconnect {service} accounts here"
            )))
        })
    }

    /// Whether accounts connected through this process (the web connect pages) can be saved
    /// and deleted here; a read-only store (remote) says no, and the pages stay off.
    fn connects_here(&self) -> bool {
        false
    }

    /// Forgets anything cached for (service, user) as read with `caller_key`, so the next read
    /// asks the source.
    fn invalidate(&self, _service: &str, _user: &str, _caller_key: Option<&PresentedKey>) {}

    /// Where `user`'s credentials for `service` are kept, as the `auth` command tells the
    /// person connecting: a file or an address, never a secret.
    fn location(&self, _service: &str, _user: &str) -> String {
        "the configured credential store".to_owned()
    }

    /// Whether this store keeps refresh tokens that this process must use itself (a remote
    /// store hands out tokens that are already fresh).
    fn refreshes_here(&self) -> bool;

    /// Whether the answer depends on the key the caller presented (a remote store asks with
    /// it): then every cache and flight in front of the store is kept per key as well.
    fn answers_per_key(&self) -> bool {
        false
    }

    /// Whether the service behind the store answers now, for `/health_check` and metrics; `None`
    /// for a store without a service of its own to ask (files on this machine).
    fn reachable(&self) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async { None })
    }

    /// Makes the store ready before the first lookup needs it (a database connected and its
    /// schema migrated), so a problem shows at start; a store that needs nothing says Ok.
    fn prepare(&self) -> BoxFuture<'_, Result<(), AuthError>> {
        Box::pin(async { Ok(()) })
    }
}
