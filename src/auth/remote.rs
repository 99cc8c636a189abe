//! Credentials from an HTTP API — guMCP's Gumloop client: `GET {base_url}/auth/{service}/
//! credentials?user_id=…` with `Authorization: Bearer <api key>`, where the key is the one the
//! caller presented (guMCP's `user_id:api_key`) or the configured one. The API hands out tokens
//! that are already fresh, so nothing is refreshed here; answers are cached briefly — per
//! (service, user, key): an answer fetched with one key is never handed to a caller who
//! presented another.
//!
//! [`KeyVerifier`] asks the same API's verification endpoint whether a key belongs to a user,
//! for servers that fetch no credentials (so no lookup would ever test the key).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use moka::future::Cache as AsyncCache;
use moka::sync::Cache;
use reqwest::StatusCode;

use super::credentials::{Credentials, OAuthApp};
use super::principal::{KeyDigest, PresentedKey};
use super::store::{AuthClient, AuthError};
use crate::ids;
use crate::upstream::{read_capped, ReadError};

/// Answers kept at most, by the store and by the verifier: enough for every active key, and a
/// flood of made-up keys evicts old entries instead of growing memory.
const CACHED_ANSWERS: u64 = 100_000;

/// What a cached credential answer is filed under: the key is part of it.
type CacheKey = (String, String, Option<KeyDigest>);

pub struct RemoteStore {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    cache: Cache<CacheKey, Credentials>,
    /// `servers.max_response_bytes`.
    max_response_bytes: usize,
}

impl RemoteStore {
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        api_key: Option<String>,
        cache_ttl: Duration,
        max_response_bytes: usize,
    ) -> RemoteStore {
        RemoteStore {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            cache: Cache::builder()
                .max_capacity(CACHED_ANSWERS)
                .time_to_live(cache_ttl.max(Duration::from_millis(1)))
                .build(),
            max_response_bytes,
        }
    }

    fn cache_key(service: &str, user: &str, caller_key: Option<&PresentedKey>) -> CacheKey {
        (
            service.to_owned(),
            user.to_owned(),
            caller_key.map(PresentedKey::digest),
        )
    }

    async fn fetch(
        &self,
        service: &str,
        user: &str,
        caller_key: Option<&PresentedKey>,
    ) -> Result<Option<Credentials>, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let key = Self::cache_key(service, user, caller_key);
        if let Some(cached) = self.cache.get(&key) {
            return Ok(Some(cached));
        }
        let Some(api_key) = caller_key
            .map(PresentedKey::secret)
            .or(self.api_key.as_deref())
        else {
            return Err(AuthError::Store(
                "the remote credential store needs an API key: pass user_id:api_key as the \
                 session key, or set auth.remote_api_key"
                    .to_owned(),
            ));
        };
        let url = format!("{}/auth/{service}/credentials", self.base_url);
        let transient = |reason: String| AuthError::Transient {
            service: service.to_owned(),
            user: user.to_owned(),
            reason,
        };
        let response = self
            .client
            .get(&url)
            .query(&[("user_id", user)])
            .bearer_auth(api_key)
            .send()
            .await
            .map_err(|err| {
                transient(format!(
                    "the credentials API is unreachable: {}",
                    err.without_url()
                ))
            })?;
        match response.status() {
            StatusCode::OK => {
                let body = read_capped(response, self.max_response_bytes)
                    .await
                    .map_err(|err| match err {
                        ReadError::TooLarge { limit } => AuthError::Store(format!(
                            "the credentials API's answer is larger than \
                             servers.max_response_bytes ({limit} bytes)"
                        )),
                        ReadError::Cut(err) => {
                            transient(format!("the credentials API's answer was cut off: {err}"))
                        }
                    })?;
                // Where, not what: serde's message can quote a value, which may be a token.
                let creds: Credentials = serde_json::from_slice(&body).map_err(|err| {
                    AuthError::Store(format!(
                        "the credentials API answered something that is not credentials \
                         (line {}, column {})",
                        err.line(),
                        err.column()
                    ))
                })?;
                self.cache.insert(key, creds.clone());
                Ok(Some(creds))
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AuthError::Store(format!(
                "the credentials API refused the API key (HTTP {})",
                response.status().as_u16()
            ))),
            status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                Err(transient(format!(
                    "the credentials API answered HTTP {}",
                    status.as_u16()
                )))
            }
            status => Err(AuthError::Store(format!(
                "the credentials API answered HTTP {}",
                status.as_u16()
            ))),
        }
    }
}

impl AuthClient for RemoteStore {
    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        caller_key: Option<&'a PresentedKey>,
    ) -> BoxFuture<'a, Result<Option<Credentials>, AuthError>> {
        self.fetch(service, user, caller_key).boxed()
    }

    fn oauth_app<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<OAuthApp, AuthError>> {
        async move {
            Err(AuthError::NoOAuthApp {
                service: service.to_owned(),
                detail: "the remote credential store connects accounts itself; connect this \
                         one there"
                    .to_owned(),
            })
        }
        .boxed()
    }

    fn save<'a>(
        &'a self,
        _service: &'a str,
        _user: &'a str,
        _credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        async move {
            Err(AuthError::Store(
                "the remote credential store is read-only here; connect accounts through it"
                    .to_owned(),
            ))
        }
        .boxed()
    }

    fn invalidate(&self, service: &str, user: &str, caller_key: Option<&PresentedKey>) {
        self.cache
            .invalidate(&Self::cache_key(service, user, caller_key));
    }

    fn location(&self, _service: &str, _user: &str) -> String {
        // The configured address may carry a login or a key in its query: show neither.
        let shown = reqwest::Url::parse(&self.base_url).map_or_else(
            |_| "its configured address".to_owned(),
            |mut url| {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.to_string()
            },
        );
        format!("the remote credential store at {shown}")
    }

    fn refreshes_here(&self) -> bool {
        false
    }

    fn answers_per_key(&self) -> bool {
        true
    }
}

/// The verification endpoint's answer about one key and user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Yes,
    No,
    /// The endpoint could not be asked or answered something else; nothing is cached.
    Unknown,
}

/// `GET {url}?user_id=…` with `Authorization: Bearer <key>`: any 2xx says the key belongs to
/// the user; 401, 403 and 404 say it does not. Answers are cached per (key digest, user), and
/// concurrent questions about the same pair make one request.
pub struct KeyVerifier {
    client: reqwest::Client,
    url: String,
    answers: AsyncCache<(KeyDigest, Arc<str>), bool>,
}

/// Why the verification endpoint gave no answer (never shown to callers: they get 503).
#[derive(Debug, thiserror::Error)]
enum VerifyError {
    #[error("the verification endpoint is unreachable: {0}")]
    Unreachable(String),
    #[error("the verification endpoint answered HTTP {0}")]
    Status(u16),
}

impl KeyVerifier {
    pub fn new(client: reqwest::Client, url: &str, ttl: Duration) -> KeyVerifier {
        KeyVerifier {
            client,
            url: url.to_owned(),
            answers: AsyncCache::builder()
                .max_capacity(CACHED_ANSWERS)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        }
    }

    pub async fn verify(&self, user: &Arc<str>, key: &PresentedKey) -> Verdict {
        let asked = self
            .answers
            .try_get_with((key.digest(), user.clone()), self.ask(user, key.secret()))
            .await;
        match asked {
            Ok(true) => Verdict::Yes,
            Ok(false) => Verdict::No,
            Err(err) => {
                tracing::warn!(%err, "could not verify an API key");
                Verdict::Unknown
            }
        }
    }

    async fn ask(&self, user: &str, key: &str) -> Result<bool, VerifyError> {
        let response = self
            .client
            .get(&self.url)
            .query(&[("user_id", user)])
            .bearer_auth(key)
            .send()
            .await
            .map_err(|err| VerifyError::Unreachable(err.without_url().to_string()))?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(false),
            status => Err(VerifyError::Status(status.as_u16())),
        }
    }
}
