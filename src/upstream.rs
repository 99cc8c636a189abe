//! The one HTTP client for everything upstream (credential APIs, OAuth token endpoints, and
//! the integrations' APIs): pooled, with timeouts, and without following redirects (a
//! redirect could carry a token to a host it was not meant for).

use std::time::Duration;

/// Makes rustls use the `ring` provider; needed once per process before the first TLS
/// connection, harmless to repeat.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client whose whole requests time out after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("gumcp-actors/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "cannot build the configured HTTP client; using defaults");
            reqwest::Client::new()
        })
}
