//! Credentials for upstream services (a user's GitHub, Google, Slack … account).
//!
//! - [`credentials`] — the JSON shapes of guMCP's files: a user's tokens, a service's OAuth app.
//! - [`store`] — the [`store::AuthClient`] trait and [`store::AuthError`].
//! - [`local`] — guMCP's `local_auth/` folder (atomic, private writes; validated names).
//! - [`remote`] — a credentials HTTP API (guMCP's Gumloop client).
//! - [`oauth`] — token requests: refresh, and the authorization code with PKCE.
//!
//! The auth actor (`actors::auth`) owns the credential cache and the refreshes.

pub mod credentials;
pub mod local;
pub mod oauth;
pub mod remote;
pub mod store;
