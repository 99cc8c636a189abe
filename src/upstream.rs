//! The one HTTP client for everything upstream (credential APIs, OAuth token endpoints, and
//! the integrations' APIs): pooled, with timeouts, and without following redirects (a
//! redirect could carry a token to a host it was not meant for).

use std::time::Duration;

/// The client could not be built (e.g. TLS could not be set up). There is deliberately no
/// fallback: reqwest's default client follows redirects, so start-up fails instead.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for upstream services: {0}")]
pub struct ClientError(reqwest::Error);

/// Makes rustls use the `ring` provider; needed once per process before the first TLS
/// connection, harmless to repeat.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client whose whole requests time out after `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("gumcp-actors/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ClientError(err.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_redirect_is_handed_back_not_followed() {
        let upstream = MockServer::start().await;
        let target = format!("{}/target", upstream.uri());
        Mock::given(method("GET"))
            .and(path("/moved"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", target.as_str()))
            .expect(1)
            .mount(&upstream)
            .await;
        Mock::given(method("GET"))
            .and(path("/target"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&upstream)
            .await;
        let client = client(Duration::from_secs(5)).unwrap();
        let answer = client
            .get(format!("{}/moved", upstream.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302);
        assert_eq!(answer.headers()["location"], target.as_str());
        upstream.verify().await;
    }
}
