//! Credentials for upstream services (a user's GitHub, Google, Slack … account).
//!
//! - [`access`] — who may call the HTTP service, as which user (open, API keys, remote,
//!   OAuth access tokens).
//! - [`principal`] — who a request acts for: a user, and the key digest where only a key
//!   vouches for it.
//! - [`credentials`] — the JSON shapes of guMCP's files: a user's tokens, a service's OAuth app.
//! - [`fields`] — named values stored with a credential (a subdomain, an instance URL) that
//!   fill the per-user base URL and OAuth endpoints, each checked against its format.
//! - [`store`] — the [`store::AuthClient`] trait and [`store::AuthError`].
//! - [`local`] — guMCP's `local_auth/` folder (atomic, private writes; validated names).
//! - [`remote`] — a credentials HTTP API (guMCP's Gumloop client).
//! - [`postgres`] — PostgreSQL, every row encrypted (AES-256-GCM, keys that rotate).
//! - [`oauth`] — token requests: refresh, and the authorization code with PKCE.
//! - [`resource_server`] — callers' OAuth access tokens (JWTs) checked, RFC 9728 metadata.
//! - [`connect`] — connecting an account (`gumcp-actors auth`, the web pages): the browser
//!   flow, API keys, revocation.
//! - [`session`] — AT Protocol password sessions (Bluesky): made once, refreshed like OAuth.
//! - [`connect_link`] — signed, short-lived links to the web connect pages; form tokens.
//! - [`key_fields`] — API-key credentials of several values (a site URL, a user name, SIDs),
//!   asked for one by one and stored flat, as guMCP stores them.
//!
//! The auth actor (`actors::auth`) owns the credential cache and the refreshes.

pub mod access;
pub mod connect;
pub mod connect_link;
pub mod credentials;
pub mod fields;
pub mod key_fields;
pub mod local;
pub mod oauth;
pub mod postgres;
pub mod principal;
pub mod remote;
pub mod resource_server;
pub mod session;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuthBackend, ConfigError, Settings};

/// `remote` access mode's key verifier, when the settings name a verification endpoint.
pub fn configured_verifier(
    settings: &Settings,
    client: &reqwest::Client,
) -> Option<remote::KeyVerifier> {
    let url = settings.auth.remote_verify_url.as_deref()?;
    Some(remote::KeyVerifier::new(
        client.clone(),
        url,
        Duration::from_secs(settings.auth.remote_cache_secs),
    ))
}

/// The credential store the settings choose. Only the PostgreSQL store can fail here (its
/// URL or keys), and nothing is connected yet.
pub fn configured_store(
    settings: &Settings,
    client: &reqwest::Client,
) -> Result<Arc<dyn store::AuthClient>, ConfigError> {
    let auth = &settings.auth;
    Ok(match auth.backend {
        AuthBackend::Local => Arc::new(local::LocalStore::new(settings.local_auth_dir())),
        AuthBackend::Remote => Arc::new(remote::RemoteStore::new(
            client.clone(),
            &auth.remote_base_url,
            auth.remote_api_key.clone(),
            Duration::from_secs(auth.remote_cache_secs),
            settings.servers.max_response_bytes,
        )),
        AuthBackend::Postgres => Arc::new(postgres::PostgresStore::from_settings(auth)?),
    })
}
