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
//! In a cluster the same holds across nodes: a flight that must refresh takes the account's
//! refresh lock in Redis first ([`crate::cluster::refresh_lock`]); a flight on another node
//! that finds it held waits for it to go and reads what the holder saved. The refresh is saved
//! with the lock's fence, so a holder that lost its lock cannot save over a later one. Without
//! Redis no refresh is made (a transient error: trying again shortly works) — refreshing
//! unlocked could present a rotating refresh token twice.
//!
//! When the store's answers depend on the caller's key (a remote store asks with it), the
//! cache and the flights are kept per key digest too: a caller with a wrong key never joins,
//! nor is answered from, the lookup of a caller with the right one. Such a store caches for
//! itself (for its configured time), so this actor only coalesces its lookups.
//!
//! Connecting and disconnecting an account (the web connect pages) take the same turn as a
//! flight: a code exchange or a disconnect waits for a refresh of that (service, user) in
//! flight, and requests arriving meanwhile wait for its outcome, so a refresh that started
//! with the old grant can never save over the new one, nor bring back a deleted one. Whoever
//! waits for an account to be connected (a call that sent the user a connect link) is told
//! when it is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use futures::FutureExt;
use moka::sync::Cache;
use tokio::sync::oneshot;

use crate::auth::connect::{self, Authorization, ConnectError};
use crate::auth::credentials::{unix_now, Credentials, OAuthApp};
use crate::auth::oauth::{self, TokenError};
use crate::auth::principal::{KeyDigest, PresentedKey};
use crate::auth::session;
use crate::auth::store::{AuthClient, AuthError};
use crate::cluster::refresh_lock::RefreshAccount;
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::servers::context::CredentialSource;
use crate::servers::manifest::AuthSpec;
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

/// (service, user): an account, as connecting and disconnecting see it.
type Account = (Arc<str>, Arc<str>);

/// Accounts remembered as refused by their provider (until reconnected), at most.
const REMEMBERED_REFUSALS: u64 = 100_000;

pub struct AuthActor {
    store: Arc<dyn AuthClient>,
    client: reqwest::Client,
    /// `servers.max_response_bytes`, for token answers.
    max_response_bytes: usize,
    /// Refresh endpoint of each OAuth service (the manifest's `refresh_url`, else its `token_url`).
    token_urls: Arc<HashMap<String, String>>,
    /// The OAuth services whose token endpoint takes the client credentials as HTTP Basic
    /// authentication (Zoom); the others get them in the form body.
    basic_client_auth: Arc<HashSet<String>>,
    /// Refresh endpoint of each service whose credential is a password session
    /// (`[auth.session]`: Bluesky's `refreshSession`).
    session_urls: Arc<HashMap<String, String>>,
    /// What each service's token endpoint needs beyond its URL: the fields filling it, and
    /// whether it renews an app token by the client-credentials grant.
    token_grants: Arc<HashMap<String, TokenGrant>>,
    refresh_margin_secs: i64,
    /// Only for stores that refresh here; others cache for themselves.
    cache: Cache<CredentialKey, Credentials>,
    flights: HashMap<CredentialKey, Vec<Waiter>>,
    /// Where refreshes are counted (`gumcp_credential_refreshes_total`).
    metrics: Option<Arc<Metrics>>,
    /// Calls waiting for an account to be connected through the web pages.
    awaiting_connection: HashMap<Account, Vec<oneshot::Sender<()>>>,
    /// Accounts whose provider refused a refresh: the connect pages say "reconnect".
    refused: Cache<Account, ()>,
    /// The cluster whose nodes take turns refreshing an account; `None` on a single node.
    cluster: Option<Arc<Cluster>>,
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
            session_urls: Arc::default(),
            token_grants: Arc::default(),
            refresh_margin_secs,
            cache: Cache::builder()
                .max_capacity(CACHED_CREDENTIALS)
                .time_to_idle(UNUSED_CREDENTIALS_KEPT)
                .build(),
            flights: HashMap::new(),
            metrics: None,
            awaiting_connection: HashMap::new(),
            refused: Cache::builder()
                .max_capacity(REMEMBERED_REFUSALS)
                .time_to_live(UNUSED_CREDENTIALS_KEPT)
                .build(),
            cluster: None,
        }
    }

    /// Refreshes one account at a time in the whole `cluster` (see the module's doc).
    pub fn in_cluster(mut self, cluster: Option<Arc<Cluster>>) -> AuthActor {
        self.cluster = cluster;
        self
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

    /// The services whose credential is a password session, with their refresh endpoints.
    pub fn with_session_refresh(mut self, urls: HashMap<String, String>) -> AuthActor {
        self.session_urls = Arc::new(urls);
        self
    }

    /// The services whose token endpoint is filled from the credential's fields, or which
    /// renew by the client-credentials grant (the manifests say which).
    pub fn with_token_grants(mut self, grants: HashMap<String, TokenGrant>) -> AuthActor {
        self.token_grants = Arc::new(grants);
        self
    }
}

/// How a service's tokens are renewed, where that is more than a refresh at a fixed URL.
#[derive(Debug, Clone, Default)]
pub struct TokenGrant {
    /// The fields that fill `{name}` in the token URL (from the stored credential).
    pub fields: Arc<[crate::auth::fields::AuthField]>,
    /// Renewed by the client-credentials grant (PayPal) rather than a refresh token.
    pub client_credentials: bool,
}

impl Actor for AuthActor {
    type Context = Context<Self>;

    /// Readies the store at start (a database's schema migrated), so a problem is logged now
    /// rather than at the first lookup; lookups try again by themselves.
    fn started(&mut self, ctx: &mut Self::Context) {
        let store = self.store.clone();
        ctx.spawn(
            async move {
                if let Err(err) = store.prepare().await {
                    tracing::warn!(%err, "the credential store is not ready; lookups will try again");
                }
            }
            .into_actor(self),
        );
    }
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
            session_urls: self.session_urls.clone(),
            token_grants: self.token_grants.clone(),
            margin: self.refresh_margin_secs,
            service: get.service,
            user: get.user,
            caller_key: get.caller_key,
            rejected: get.rejected_access_token,
            metrics: self.metrics.clone(),
            cluster: self.cluster.clone(),
            caller_digest: key.key,
        };
        let rejected = flight.rejected.clone();
        ctx.spawn(flight.run().into_actor(self).map(move |result, act, _| {
            // A store that cannot be reached does not take away credentials that are still
            // good: the cached ones serve until they expire (or are refused upstream).
            let result = match result {
                Err(AuthError::StoreUnavailable(reason)) => act
                    .cache
                    .get(&key)
                    .filter(|cached| {
                        let refused = rejected.is_some() && cached.access_token == rejected;
                        !refused && !cached.expires_within(unix_now(), 0)
                    })
                    .ok_or(AuthError::StoreUnavailable(reason)),
                result => result,
            };
            if let Err(AuthError::Rejected { .. }) = &result {
                act.refused
                    .insert((key.service.clone(), key.user.clone()), ());
            }
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

/// How a flight renews credentials: the OAuth app at its token endpoint, or a password
/// session at its refresh endpoint.
enum Refresher<'a> {
    /// A refresh token at the token URL, or — `client_credentials` — a new app token.
    OAuth {
        app: OAuthApp,
        token_url: String,
        client_credentials: bool,
    },
    Session(&'a str),
}

/// One load-and-maybe-refresh of one user's credentials.
struct Flight {
    store: Arc<dyn AuthClient>,
    client: reqwest::Client,
    max_response_bytes: usize,
    token_urls: Arc<HashMap<String, String>>,
    basic_client_auth: Arc<HashSet<String>>,
    session_urls: Arc<HashMap<String, String>>,
    token_grants: Arc<HashMap<String, TokenGrant>>,
    margin: i64,
    service: Arc<str>,
    user: Arc<str>,
    caller_key: Option<PresentedKey>,
    rejected: Option<String>,
    metrics: Option<Arc<Metrics>>,
    cluster: Option<Arc<Cluster>>,
    /// The caller's key digest, where the store answers per key.
    caller_digest: Option<KeyDigest>,
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
        let grant = self
            .token_grants
            .get(&*self.service)
            .cloned()
            .unwrap_or_default();
        if stored.refresh_token.is_none() && !grant.client_credentials {
            return Err(self.rejected(if refused(&stored) {
                "the access token is no longer accepted and there is no refresh token"
            } else {
                "the access token expired and there is no refresh token"
            }));
        }
        let refresher = match self.session_urls.get(&*self.service) {
            Some(url) => Refresher::Session(url),
            None => {
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
                let token_url = crate::auth::fields::fill(
                    &app.endpoint(token_url),
                    &grant.fields,
                    &stored.extra,
                )
                .map_err(|err| self.rejected(&err.to_string()))?;
                Refresher::OAuth {
                    app,
                    token_url,
                    client_credentials: grant.client_credentials,
                }
            }
        };
        match self.cluster.clone() {
            None => self.refresh(&refresher, &stored, None).await,
            Some(cluster) => self.refresh_in_turn(&cluster, &refresher, stored).await,
        }
    }

    /// Refreshes in this account's turn in the cluster: with its lock held, or — while
    /// another node holds it — by waiting for the credentials that node saves.
    async fn refresh_in_turn(
        &self,
        cluster: &Arc<Cluster>,
        refresher: &Refresher<'_>,
        first_read: Credentials,
    ) -> Result<Credentials, AuthError> {
        let account = RefreshAccount::new(
            &self.service,
            &self.user,
            self.caller_digest
                .as_ref()
                .map(|digest| &digest.bytes()[..]),
        );
        let until = std::time::Instant::now() + cluster.refresh_wait();
        // Credentials another node saved since the first read serve as they are while they
        // have not expired, even inside the refresh margin: refreshing them again would only
        // add a refresh per node.
        let usable = |read: &Credentials| {
            let now = unix_now();
            let refused = self
                .rejected
                .as_deref()
                .is_some_and(|rejected| read.access_token.as_deref() == Some(rejected));
            let renewed = read.access_token != first_read.access_token;
            !refused
                && (!read.expires_within(now, self.margin)
                    || (renewed && !read.expires_within(now, 0)))
        };
        loop {
            let floor = self.store.refresh_fence(&self.service, &self.user).await?;
            let Ok(lease) = cluster.try_refresh_lock(&account, floor).await else {
                return self.without_lock(&first_read);
            };
            if let Some(lease) = lease {
                let current = match self.load().await {
                    Ok(current) => current,
                    Err(err) => {
                        lease.release().await;
                        return Err(err);
                    }
                };
                let outcome = if usable(&current) {
                    Ok(current)
                } else {
                    self.refresh(refresher, &current, Some(lease.fence())).await
                };
                lease.release().await;
                return outcome;
            }
            let Ok(released) = cluster.await_refresh_lock(&account, until).await else {
                return self.without_lock(&first_read);
            };
            let current = self.load().await?;
            if usable(&current) {
                return Ok(current);
            }
            if !released || std::time::Instant::now() >= until {
                return Err(AuthError::Transient {
                    service: self.service.to_string(),
                    user: self.user.to_string(),
                    reason: "another node's refresh of this account did not finish in time"
                        .to_owned(),
                });
            }
        }
    }

    /// What a flight answers when the cluster's Redis cannot give it the account's turn:
    /// credentials that have not expired yet (only the refresh margin was reached) serve as
    /// they are; otherwise a transient error, as refreshing without the lock could present a
    /// rotating refresh token twice.
    fn without_lock(&self, read: &Credentials) -> Result<Credentials, AuthError> {
        let refused = self
            .rejected
            .as_deref()
            .is_some_and(|rejected| read.access_token.as_deref() == Some(rejected));
        if !refused && read.access_token.is_some() && !read.expires_within(unix_now(), 0) {
            return Ok(read.clone());
        }
        Err(AuthError::Transient {
            service: self.service.to_string(),
            user: self.user.to_string(),
            reason: "the cluster's Redis, which takes the nodes' turns at refreshing, is \
                     unavailable; retry shortly"
                .to_owned(),
        })
    }

    /// Renews `stored` with `refresher` (an OAuth refresh token at the token URL, or a
    /// session's own renewal) and saves the answer (with `fence`, the cluster lock's, when one
    /// is held) before handing it out.
    async fn refresh(
        &self,
        refresher: &Refresher<'_>,
        stored: &Credentials,
        fence: Option<i64>,
    ) -> Result<Credentials, AuthError> {
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
            let refreshed = match refresher {
                Refresher::OAuth {
                    app,
                    token_url,
                    client_credentials: true,
                } => {
                    // An app token is asked for with the app's credentials in Basic auth, as
                    // the providers with this grant (PayPal) document.
                    oauth::client_credentials(
                        http,
                        app,
                        token_url,
                        stored,
                        oauth::ClientAuth::Basic,
                    )
                    .await
                }
                Refresher::OAuth { app, token_url, .. } => {
                    oauth::refresh(http, app, token_url, stored, client_auth).await
                }
                Refresher::Session(url) => session::refresh(http, url, stored).await,
            };
            match refreshed {
                Ok(refreshed) => {
                    match fence {
                        None => {
                            self.store
                                .save(&self.service, &self.user, &refreshed)
                                .await?
                        }
                        Some(fence) => {
                            let saved = self
                                .store
                                .save_fenced(&self.service, &self.user, &refreshed, fence)
                                .await?;
                            if !saved {
                                // A later holder's refresh, or a new connection, is stored:
                                // that is what stays, and what this flight answers.
                                self.count("superseded");
                                return self.load().await;
                            }
                        }
                    }
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

impl AuthActor {
    /// When a flight of `key` is in the air, a wait for it to land; otherwise `None`, and the
    /// key is now taken by the caller, who must [`AuthActor::land`] it.
    fn take_turn(
        &mut self,
        key: &CredentialKey,
    ) -> Option<oneshot::Receiver<Result<Credentials, AuthError>>> {
        if let Some(waiters) = self.flights.get_mut(key) {
            let (waiter, landed) = oneshot::channel();
            waiters.push(waiter);
            return Some(landed);
        }
        self.flights.insert(key.clone(), Vec::new());
        None
    }

    /// Ends a turn taken with [`AuthActor::take_turn`]: the cache takes `outcome`, and whoever
    /// waited meanwhile gets it.
    fn land(&mut self, key: &CredentialKey, outcome: Result<Credentials, AuthError>) {
        match &outcome {
            Ok(credentials) => self.cache.insert(key.clone(), credentials.clone()),
            Err(_) => self.cache.invalidate(key),
        }
        for waiter in self.flights.remove(key).unwrap_or_default() {
            let _ = waiter.send(outcome.clone());
        }
    }

    fn account_key(service: &Arc<str>, user: &Arc<str>) -> CredentialKey {
        CredentialKey {
            service: service.clone(),
            user: user.clone(),
            key: None,
        }
    }
}

/// How an account is being connected.
pub enum Connection {
    /// The provider sent the browser back with `code`; `authorization` is what the flow
    /// started with (its PKCE verifier and redirect address).
    OAuthCode {
        spec: Box<AuthSpec>,
        authorization: Box<Authorization>,
        returned: connect::Returned,
    },
    /// A client-credentials server (PayPal): the OAuth app's first app token.
    ClientCredentials { spec: Box<AuthSpec> },
    /// The user typed the service's API key into the form.
    ApiKey(String),
    /// The user typed the values of an API-key server's `[[auth.key_fields]]` (already
    /// checked: `auth::key_fields::credentials_from`).
    KeyFields(Credentials),
}

/// Connects `user`'s account for `service`: the code exchanged (or the key taken) and the
/// credentials saved, in the account's turn; then everyone waiting for it is told.
#[derive(Message)]
#[rtype(result = "Result<Credentials, ConnectError>")]
pub struct Connect {
    pub service: Arc<str>,
    pub user: Arc<str>,
    pub connection: Connection,
}

impl Handler<Connect> for AuthActor {
    type Result = ResponseFuture<Result<Credentials, ConnectError>>;

    fn handle(&mut self, connect: Connect, ctx: &mut Self::Context) -> Self::Result {
        let key = Self::account_key(&connect.service, &connect.user);
        if let Some(landed) = self.take_turn(&key) {
            let addr = ctx.address();
            return Box::pin(async move {
                let _ = landed.await;
                addr.send(connect)
                    .await
                    .unwrap_or_else(|_| Err(stopped().into()))
            });
        }
        let store = self.store.clone();
        let client = self.client.clone();
        let max_response_bytes = self.max_response_bytes;
        let Connect {
            service,
            user,
            connection,
        } = connect;
        let account = (service.clone(), user.clone());
        let cluster = self.cluster.clone();
        let work = async move {
            let credentials = match connection {
                Connection::ApiKey(api_key) => Credentials {
                    api_key: Some(api_key),
                    ..Credentials::default()
                },
                Connection::KeyFields(credentials) => credentials,
                Connection::OAuthCode {
                    spec,
                    authorization,
                    returned,
                } => {
                    let app = store.oauth_app(&service).await?;
                    let http = CappedClient {
                        client: &client,
                        max_response_bytes,
                    };
                    connect::exchange(http, &app, &spec, *authorization, returned).await?
                }
                Connection::ClientCredentials { spec } => {
                    let app = store.oauth_app(&service).await?;
                    let http = CappedClient {
                        client: &client,
                        max_response_bytes,
                    };
                    connect::client_credentials(http, &app, &spec).await?
                }
            };
            store.save(&service, &user, &credentials).await?;
            // In a cluster the new grant takes a fence above every refresh lock's so far: a
            // refresh another node started with the old grant cannot save over it.
            if let Some(cluster) = &cluster {
                let account = RefreshAccount::new(&service, &user, None);
                let floor = store.refresh_fence(&service, &user).await?;
                if let Ok(fence) = cluster.next_fence(&account, floor).await {
                    store
                        .save_fenced(&service, &user, &credentials, fence)
                        .await?;
                }
            }
            Ok(credentials)
        };
        let (reply, answer) = oneshot::channel();
        ctx.spawn(work.into_actor(self).map(
            move |result: Result<Credentials, ConnectError>, act, _| {
                let for_waiters = match &result {
                    Ok(credentials) => Ok(credentials.clone()),
                    Err(_) => Err(AuthError::Transient {
                        service: key.service.to_string(),
                        user: key.user.to_string(),
                        reason: "the account was being connected; retry".to_owned(),
                    }),
                };
                act.land(&key, for_waiters);
                if result.is_ok() {
                    act.refused.invalidate(&account);
                    for waiting in act.awaiting_connection.remove(&account).unwrap_or_default() {
                        let _ = waiting.send(());
                    }
                }
                let _ = reply.send(result);
            },
        ));
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(stopped().into())) })
    }
}

/// What a disconnect did at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The provider was told the grant is no longer wanted.
    Revoked,
    /// The provider has no revocation endpoint (or there was nothing to revoke).
    NotOffered,
    /// The provider could not be told (why, without secrets); the credentials are deleted
    /// anyway, and the user may revoke the app in the provider's settings.
    Failed(String),
}

/// What a disconnect did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// Whether anything was stored.
    pub had_credentials: bool,
    pub revocation: Revocation,
}

/// Disconnects `user`'s account for `service`: revoked at the provider where it offers that,
/// then deleted from the store, in the account's turn.
#[derive(Message)]
#[rtype(result = "Result<Disconnected, ConnectError>")]
pub struct Disconnect {
    pub service: Arc<str>,
    pub user: Arc<str>,
    pub spec: AuthSpec,
}

impl Handler<Disconnect> for AuthActor {
    type Result = ResponseFuture<Result<Disconnected, ConnectError>>;

    fn handle(&mut self, disconnect: Disconnect, ctx: &mut Self::Context) -> Self::Result {
        let key = Self::account_key(&disconnect.service, &disconnect.user);
        if let Some(landed) = self.take_turn(&key) {
            let addr = ctx.address();
            return Box::pin(async move {
                let _ = landed.await;
                addr.send(disconnect)
                    .await
                    .unwrap_or_else(|_| Err(stopped().into()))
            });
        }
        let store = self.store.clone();
        let client = self.client.clone();
        let max_response_bytes = self.max_response_bytes;
        let Disconnect {
            service,
            user,
            spec,
        } = disconnect;
        let account = (service.clone(), user.clone());
        let work = async move {
            let stored = store.credentials(&service, &user, None).await?;
            let mut revocation = Revocation::NotOffered;
            if let (Some(credentials), Some(_)) = (&stored, &spec.revoke_url) {
                let app = store.oauth_app(&service).await?;
                let http = CappedClient {
                    client: &client,
                    max_response_bytes,
                };
                revocation = match connect::revoke(http, &app, &spec, credentials).await {
                    Ok(true) => Revocation::Revoked,
                    Ok(false) => Revocation::NotOffered,
                    Err(err) => Revocation::Failed(err.to_string()),
                };
            }
            let deleted = store.delete(&service, &user).await?;
            Ok(Disconnected {
                had_credentials: stored.is_some() || deleted,
                revocation,
            })
        };
        let (reply, answer) = oneshot::channel();
        ctx.spawn(work.into_actor(self).map(
            move |result: Result<Disconnected, ConnectError>, act, _| {
                let not_connected = AuthError::NotConnected {
                    service: key.service.to_string(),
                    user: key.user.to_string(),
                };
                act.land(&key, Err(not_connected));
                act.refused.invalidate(&account);
                let _ = reply.send(result);
            },
        ));
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(stopped().into())) })
    }
}

/// Whether an account is connected, as the connect pages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Connected,
    NotConnected,
    /// Stored, but the provider refused it, or it expired with no way to refresh it.
    NeedsReconnect,
}

/// The state of `user`'s account for `service`, read from the store (nothing is refreshed).
#[derive(Message)]
#[rtype(result = "Result<AccountState, AuthError>")]
pub struct Status {
    pub service: Arc<str>,
    pub user: Arc<str>,
}

impl Handler<Status> for AuthActor {
    type Result = ResponseFuture<Result<AccountState, AuthError>>;

    fn handle(&mut self, status: Status, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let refused = self
            .refused
            .contains_key(&(status.service.clone(), status.user.clone()));
        Box::pin(async move {
            let stored = store
                .credentials(&status.service, &status.user, None)
                .await?;
            Ok(match stored {
                None => AccountState::NotConnected,
                Some(_) if refused => AccountState::NeedsReconnect,
                Some(credentials) => {
                    // A credential of several fields (Twilio's SIDs and secret) has no
                    // token and may have no `api_key`: stored values with no token count.
                    let fields_only = credentials.access_token.is_none()
                        && credentials.refresh_token.is_none()
                        && !credentials.extra.is_empty();
                    let usable = credentials.api_key.is_some()
                        || fields_only
                        || credentials.refresh_token.is_some()
                        || (credentials.access_token.is_some()
                            && !credentials.expires_within(unix_now(), 0));
                    if usable {
                        AccountState::Connected
                    } else {
                        AccountState::NeedsReconnect
                    }
                }
            })
        })
    }
}

/// Answers (with `()` on the receiver) once `user`'s account for `service` has been
/// connected; the receiver is registered when this message is answered.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<()>")]
pub struct AwaitConnection {
    pub service: Arc<str>,
    pub user: Arc<str>,
}

impl Handler<AwaitConnection> for AuthActor {
    type Result = MessageResult<AwaitConnection>;

    fn handle(&mut self, wait: AwaitConnection, _ctx: &mut Self::Context) -> Self::Result {
        let (tell, told) = oneshot::channel();
        // Waits whose calls ended are dropped here, so the table holds running calls only.
        self.awaiting_connection.retain(|_, waiting| {
            waiting.retain(|sender| !sender.is_closed());
            !waiting.is_empty()
        });
        self.awaiting_connection
            .entry((wait.service, wait.user))
            .or_default()
            .push(tell);
        MessageResult(told)
    }
}

/// The OAuth app of `service`, as the store keeps it (for the connect pages' sign-in).
#[derive(Message)]
#[rtype(result = "Result<OAuthApp, AuthError>")]
pub struct GetOAuthApp {
    pub service: Arc<str>,
}

impl Handler<GetOAuthApp> for AuthActor {
    type Result = ResponseFuture<Result<OAuthApp, AuthError>>;

    fn handle(&mut self, get: GetOAuthApp, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { store.oauth_app(&get.service).await })
    }
}

fn stopped() -> AuthError {
    AuthError::Store("the credential service stopped".to_owned())
}

/// The auth actor as plain async calls.
#[derive(Clone)]
pub struct AuthHandle {
    addr: Addr<AuthActor>,
    /// Whether the store keeps accounts users connect here (the connect pages need it).
    connects_here: bool,
    /// The store itself, asked only whether its service answers (health checks): every
    /// credential read and write goes through the actor.
    store: Arc<dyn AuthClient>,
}

impl AuthHandle {
    pub fn start(actor: AuthActor) -> AuthHandle {
        AuthHandle {
            connects_here: actor.store.connects_here(),
            store: Arc::clone(&actor.store),
            addr: actor.start(),
        }
    }

    /// Whether the credential store's service answers (`None`: the store has none).
    pub async fn store_reachable(&self) -> Option<bool> {
        self.store.reachable().await
    }

    /// Whether accounts can be connected (and disconnected) through this process.
    pub fn connects_here(&self) -> bool {
        self.connects_here
    }

    pub async fn connect(&self, connect: Connect) -> Result<Credentials, ConnectError> {
        self.addr
            .send(connect)
            .await
            .unwrap_or_else(|_| Err(stopped().into()))
    }

    pub async fn disconnect(&self, disconnect: Disconnect) -> Result<Disconnected, ConnectError> {
        self.addr
            .send(disconnect)
            .await
            .unwrap_or_else(|_| Err(stopped().into()))
    }

    pub async fn oauth_app(&self, get: GetOAuthApp) -> Result<OAuthApp, AuthError> {
        self.addr.send(get).await.unwrap_or_else(|_| Err(stopped()))
    }

    pub async fn status(&self, status: Status) -> Result<AccountState, AuthError> {
        self.addr
            .send(status)
            .await
            .unwrap_or_else(|_| Err(stopped()))
    }

    /// A receiver told when the account is connected, registered before this returns; `None`
    /// when the actor has stopped.
    pub async fn await_connection(&self, wait: AwaitConnection) -> Option<oneshot::Receiver<()>> {
        self.addr.send(wait).await.ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::local::LocalStore;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[actix_rt::test]
    async fn a_connection_waits_for_a_refresh_in_flight_and_is_what_stays() {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("oauth_configs/svc");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("oauth.json"),
            r#"{"client_id": "cid", "client_secret": "cs"}"#,
        )
        .unwrap();
        let store = Arc::new(LocalStore::new(root.path()));
        let expired = Credentials {
            access_token: Some("old".into()),
            refresh_token: Some("r1".into()),
            expires_at: Some(1),
            ..Credentials::default()
        };
        store.save("svc", "alice", &expired).await.unwrap();
        let provider = MockServer::start().await;
        // Slow, so the connection arrives while the refresh is in the air.
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({
                        "access_token": "refreshed", "token_type": "bearer", "expires_in": 3600
                    }))
                    .set_delay(Duration::from_millis(300)),
            )
            .expect(1)
            .mount(&provider)
            .await;
        crate::upstream::install_crypto_provider();
        let client = crate::upstream::client(Duration::from_secs(5)).unwrap();
        let urls = HashMap::from([("svc".to_owned(), format!("{}/token", provider.uri()))]);
        let auth = AuthHandle::start(AuthActor::new(store.clone(), client, 1 << 20, urls, 60));
        let (service, user): (Arc<str>, Arc<str>) = (Arc::from("svc"), Arc::from("alice"));
        // `send` queues at once: the refresh's flight starts before the connection arrives.
        let refreshing = auth.addr.send(GetCredentials {
            service: service.clone(),
            user: user.clone(),
            caller_key: None,
            rejected_access_token: None,
        });
        let connecting = auth.addr.send(Connect {
            service: service.clone(),
            user: user.clone(),
            connection: Connection::ApiKey("new-key".into()),
        });
        let (refreshed, connected) = futures::join!(refreshing, connecting);
        assert_eq!(
            refreshed.unwrap().unwrap().access_token.as_deref(),
            Some("refreshed")
        );
        assert_eq!(
            connected.unwrap().unwrap().api_key.as_deref(),
            Some("new-key")
        );
        let stored = store.credentials("svc", "alice", None).await.unwrap();
        assert_eq!(stored.unwrap().api_key.as_deref(), Some("new-key"));
        let now = auth
            .credentials(GetCredentials {
                service,
                user,
                caller_key: None,
                rejected_access_token: None,
            })
            .await
            .unwrap();
        assert_eq!(now.api_key.as_deref(), Some("new-key"));
    }
}
