//! Credentials from an HTTP API — guMCP's Gumloop client: `GET {base_url}/auth/{service}/
//! credentials?user_id=…` with `Authorization: Bearer <api key>`, where the key is the one the
//! caller presented (guMCP's `user_id:api_key`) or the configured one. The API hands out tokens
//! that are already fresh, so nothing is refreshed here; answers are cached briefly.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::StatusCode;

use super::credentials::{Credentials, OAuthApp};
use super::store::{AuthClient, AuthError};
use crate::ids;
use crate::upstream::{read_capped, ReadError};

pub struct RemoteStore {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    cache: DashMap<(String, String), (Instant, Credentials)>,
    cache_ttl: Duration,
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
            cache: DashMap::new(),
            cache_ttl,
            max_response_bytes,
        }
    }

    async fn fetch(
        &self,
        service: &str,
        user: &str,
        caller_key: Option<&str>,
    ) -> Result<Option<Credentials>, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let key = (service.to_owned(), user.to_owned());
        if let Some(cached) = self.cache.get(&key) {
            if cached.0.elapsed() < self.cache_ttl {
                return Ok(Some(cached.1.clone()));
            }
        }
        let Some(api_key) = caller_key.or(self.api_key.as_deref()) else {
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
                    without_url(&err)
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
                self.cache.insert(key, (Instant::now(), creds.clone()));
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

/// A reqwest error's text without its URL, whose query names the user.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<credentials API>");
    }
    text
}

impl AuthClient for RemoteStore {
    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        caller_key: Option<&'a str>,
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

    fn invalidate(&self, service: &str, user: &str) {
        self.cache.remove(&(service.to_owned(), user.to_owned()));
    }

    fn refreshes_here(&self) -> bool {
        false
    }
}
