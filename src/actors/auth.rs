//! The auth actor: owns the credential cache and every token refresh. One per process.
//!
//! A request for a user's credentials is answered from the cache while the access token is
//! good for longer than the refresh margin. Otherwise one *flight* loads (and, if needed,
//! refreshes) them, beside the mailbox: every request for the same (service, user) that
//! arrives meanwhile waits for that flight's result, while other users' requests go on. A
//! refreshed token is saved to the store before anyone is given it, so a rotated refresh token
//! is never lost; the cache only ever takes a flight's result, so an older answer cannot
//! overwrite a newer one.
//!
//! When the store's answers depend on the caller's key (a remote store asks with it), the
//! cache and the flights are kept per key digest too: a caller with a wrong key never joins,
//! nor is answered from, the lookup of a caller with the right one. Such a store caches for
//! itself (for its configured time), so this actor only coalesces its lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use futures::FutureExt;
use moka::sync::Cache;
use tokio::sync::oneshot;

use crate::auth::credentials::{unix_now, Credentials};
use crate::auth::oauth::{self, TokenError};
use crate::auth::principal::{KeyDigest, PresentedKey};
use crate::auth::store::{AuthClient, AuthError};
use crate::metrics::Metrics;
use crate::servers::context::CredentialSource;
use crate::telemetry;
use crate::upstream::CappedClient;

/// Attempts at a refresh that fails for a transient reason, and the first pause between them
/// (doubled each time).
const REFRESH_ATTEMPTS: u32 = 3;
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Credentials kept in memory at most, and how long one unused stays: the store has them all,
/// so forgetting one costs a file read, never a connection.
const CACHED_CREDENTIALS: u64 = 100_000;
const UNUSED_CREDENTIALS_KEPT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CredentialKey {
    service: Arc<str>,
    user: Arc<str>,
    /// The caller's key, when the store answers per key.
    key: Option<KeyDigest>,
}

type Waiter = oneshot::Sender<Result<Credentials, AuthError>>;

pub struct AuthActor {
    store: Arc<dyn AuthClient>,
    client: reqwest::Client,
    /// `servers.max_response_bytes`, for token answers.
    max_response_bytes: usize,
    /// Token endpoint of each OAuth service (from the server manifests).
    token_urls: Arc<HashMap<String, String>>,
    /// The OAuth services whose token endpoint takes the client credentials as HTTP Basic
    /// authentication (Zoom); the others get them in the form body.
    basic_client_auth: Arc<HashSet<String>>,
    refresh_margin_secs: i64,
    /// Only for stores that refresh here; others cache for themselves.
    cache: Cache<CredentialKey, Credentials>,
    flights: HashMap<CredentialKey, Vec<Waiter>>,
    /// Where refreshes are counted (`gumcp_credential_refreshes_total`).
    metrics: Option<Arc<Metrics>>,
}

impl AuthActor {
    pub fn new(
        store: Arc<dyn AuthClient>,
        client: reqwest::Client,
        max_response_bytes: usize,
        token_urls: HashMap<String, String>,
        refresh_margin_secs: i64,
    ) -> AuthActor {
        AuthActor {
            store,
            client,
            max_response_bytes,
            token_urls: Arc::new(token_urls),
            basic_client_auth: Arc::default(),
            refresh_margin_secs,
            cache: Cache::builder()
                .max_capacity(CACHED_CREDENTIALS)
                .time_to_idle(UNUSED_CREDENTIALS_KEPT)
                .build(),
            flights: HashMap::new(),
            metrics: None,
        }
    }

    /// Counts every refresh in `metrics` by service and outcome.
    pub fn counting_refreshes_in(mut self, metrics: Arc<Metrics>) -> AuthActor {
        self.metrics = Some(metrics);
        self
    }

    /// The OAuth services whose token endpoint wants the client credentials as HTTP Basic
    /// authentication (the manifests' providers say which).
    pub fn with_basic_client_auth(mut self, services: HashSet<String>) -> AuthActor {
        self.basic_client_auth = Arc::new(services);
        self
    }
}

impl Actor for AuthActor {
    type Context = Context<Self>;
}

/// A user's ready-to-use credentials for a service. With `rejected_access_token`, the caller
/// says the upstream refused that token: unless a newer one is already known, it is refreshed
/// (or re-read from a remote store) before answering.
#[derive(Message)]
#[rtype(result = "Result<Credentials, AuthError>")]
pub struct GetCredentials {
    pub service: Arc<str>,
    pub user: Arc<str>,
    pub caller_key: Option<PresentedKey>,
    pub rejected_access_token: Option<String>,
}

impl Handler<GetCredentials> for AuthActor {
    type Result = ResponseFuture<Result<Credentials, AuthError>>;

    fn handle(&mut self, get: GetCredentials, ctx: &mut Self::Context) -> Self::Result {
        let per_key = self.store.answers_per_key();
        let key = CredentialKey {
            service: get.service.clone(),
            user: get.user.clone(),
            key: get
                .caller_key
                .as_ref()
                .filter(|_| per_key)
                .map(PresentedKey::digest),
        };
        let (waiter, answer) = oneshot::channel();
        let wait = async move {
            answer.await.unwrap_or_else(|_| {
                Err(AuthError::Store(
                    "the credential service stopped".to_owned(),
                ))
            })
        };
        if let Some(waiters) = self.flights.get_mut(&key) {
            waiters.push(waiter);
            return Box::pin(wait);
        }
        if let Some(cached) = self.cache.get(&key).filter(|_| !per_key) {
            let refused = get
                .rejected_access_token
                .as_deref()
                .is_some_and(|rejected| cached.access_token.as_deref() == Some(rejected));
            if !refused && !cached.expires_within(unix_now(), self.refresh_margin_secs) {
                let fresh = cached.clone();
                return Box::pin(async move { Ok(fresh) });
            }
        }
        self.flights.insert(key.clone(), vec![waiter]);
        let flight = Flight {
            store: self.store.clone(),
            client: self.client.clone(),
            max_response_bytes: self.max_response_bytes,
            token_urls: self.token_urls.clone(),
            basic_client_auth: self.basic_client_auth.clone(),
            margin: self.refresh_margin_secs,
            service: get.service,
            user: get.user,
            caller_key: get.caller_key,
            rejected: get.rejected_access_token,
            metrics: self.metrics.clone(),
        };
        ctx.spawn(flight.run().into_actor(self).map(move |result, act, _| {
            match &result {
                Ok(credentials) if !per_key => {
                    act.cache.insert(key.clone(), credentials.clone());
                }
                _ => act.cache.invalidate(&key),
            }
            for waiter in act.flights.remove(&key).unwrap_or_default() {
                let _ = waiter.send(result.clone());
            }
        }));
        Box::pin(wait)
    }
}

/// One load-and-maybe-refresh of one user's credentials.
struct Flight {
    store: Arc<dyn AuthClient>,
    client: reqwest::Client,
    max_response_bytes: usize,
    token_urls: Arc<HashMap<String, String>>,
    basic_client_auth: Arc<HashSet<String>>,
    margin: i64,
    service: Arc<str>,
    user: Arc<str>,
    caller_key: Option<PresentedKey>,
    rejected: Option<String>,
    metrics: Option<Arc<Metrics>>,
}

impl Flight {
    fn count(&self, outcome: &str) {
        if let Some(metrics) = &self.metrics {
            metrics
                .credential_refreshes
                .with_label_values(&[&*self.service, outcome])
                .inc();
        }
    }

    fn not_connected(&self) -> AuthError {
        AuthError::NotConnected {
            service: self.service.to_string(),
            user: self.user.to_string(),
        }
    }

    async fn load(&self) -> Result<Credentials, AuthError> {
        self.store
            .credentials(&self.service, &self.user, self.caller_key.as_ref())
            .await?
            .ok_or_else(|| self.not_connected())
    }

    async fn run(self) -> Result<Credentials, AuthError> {
        let mut stored = self.load().await?;
        let refused = |creds: &Credentials| {
            self.rejected
                .as_deref()
                .is_some_and(|rejected| creds.access_token.as_deref() == Some(rejected))
        };
        if !self.store.refreshes_here() {
            if refused(&stored) {
                self.store
                    .invalidate(&self.service, &self.user, self.caller_key.as_ref());
                stored = self.load().await?;
            }
            return Ok(stored);
        }
        if !stored.expires_within(unix_now(), self.margin) && !refused(&stored) {
            return Ok(stored);
        }
        if stored.refresh_token.is_none() {
            return Err(self.rejected(if refused(&stored) {
                "the access token is no longer accepted and there is no refresh token"
            } else {
                "the access token expired and there is no refresh token"
            }));
        }
        let Some(token_url) = self.token_urls.get(&*self.service) else {
            return Err(self.rejected("no token URL is known for this service"));
        };
        let app = self.store.oauth_app(&self.service).await?;
        let token_url = app
            .extra
            .get("token_uri")
            .or_else(|| app.extra.get("token_url"))
            .and_then(|url| url.as_str())
            .unwrap_or(token_url);
        let token_url = app.endpoint(token_url);
        let mut pause = FIRST_RETRY_PAUSE;
        for attempt in 1..=REFRESH_ATTEMPTS {
            let http = CappedClient {
                client: &self.client,
                max_response_bytes: self.max_response_bytes,
            };
            let client_auth = if self.basic_client_auth.contains(&*self.service) {
                oauth::ClientAuth::Basic
            } else {
                oauth::ClientAuth::Body
            };
            match oauth::refresh(http, &app, &token_url, &stored, client_auth).await {
                Ok(refreshed) => {
                    self.store
                        .save(&self.service, &self.user, &refreshed)
                        .await?;
                    tracing::info!(
                        service = %self.service,
                        user = %telemetry::user_label(&self.user),
                        "access token refreshed"
                    );
                    self.count("refreshed");
                    return Ok(refreshed);
                }
                Err(TokenError::Rejected(reason)) => {
                    self.count("rejected");
                    return Err(self.rejected(&reason));
                }
                Err(TokenError::Transient(reason)) if attempt == REFRESH_ATTEMPTS => {
                    self.count("transient");
                    return Err(AuthError::Transient {
                        service: self.service.to_string(),
                        user: self.user.to_string(),
                        reason: format!("{reason} (after {REFRESH_ATTEMPTS} attempts)"),
                    });
                }
                Err(TokenError::Transient(reason)) => {
                    tracing::warn!(service = %self.service, attempt, %reason, "token refresh failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        Err(self.not_connected())
    }

    fn rejected(&self, reason: &str) -> AuthError {
        AuthError::Rejected {
            service: self.service.to_string(),
            user: self.user.to_string(),
            reason: reason.to_owned(),
        }
    }
}

/// The auth actor as plain async calls.
#[derive(Clone)]
pub struct AuthHandle {
    addr: Addr<AuthActor>,
}

impl AuthHandle {
    pub fn start(actor: AuthActor) -> AuthHandle {
        AuthHandle {
            addr: actor.start(),
        }
    }

    pub fn credentials(
        &self,
        get: GetCredentials,
    ) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        let addr = self.addr.clone();
        async move {
            addr.send(get).await.unwrap_or_else(|_| {
                Err(AuthError::Store(
                    "the credential service stopped".to_owned(),
                ))
            })
        }
        .boxed()
    }
}

/// One user's credentials for one service, through the auth actor.
struct ActorCredentials {
    auth: AuthHandle,
    service: Arc<str>,
    user: Arc<str>,
    caller_key: Option<PresentedKey>,
}

impl ActorCredentials {
    fn ask(&self, rejected: Option<&str>) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        self.auth.credentials(GetCredentials {
            service: self.service.clone(),
            user: self.user.clone(),
            caller_key: self.caller_key.clone(),
            rejected_access_token: rejected.map(str::to_owned),
        })
    }
}

impl CredentialSource for ActorCredentials {
    fn get(&self) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        self.ask(None)
    }

    fn after_rejection(
        &self,
        rejected_access_token: &str,
    ) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        self.ask(Some(rejected_access_token))
    }
}

impl AuthHandle {
    /// `user`'s credentials for `service` as server code sees them.
    pub fn source(
        &self,
        service: Arc<str>,
        user: Arc<str>,
        caller_key: Option<PresentedKey>,
    ) -> Arc<dyn CredentialSource> {
        Arc::new(ActorCredentials {
            auth: self.clone(),
            service,
            user,
            caller_key,
        })
    }
}
