//! The one HTTP client for everything upstream (credential APIs, OAuth token endpoints, and
//! the integrations' APIs): pooled, with timeouts, and without following redirects (a
//! redirect could carry a token to a host it was not meant for).

use std::time::Duration;

/// The client could not be built (e.g. TLS could not be set up). There is deliberately no
/// fallback: reqwest's default client follows redirects, so start-up fails instead.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for upstream services: {0}")]
pub struct ClientError(pub(crate) reqwest::Error);

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

/// The shared client and the largest answer body read through it
/// (`servers.max_response_bytes`), for requests made outside a server's [`Upstream`]: token
/// endpoints. The two travel together so no caller can read without the bound.
///
/// [`Upstream`]: crate::servers::http::Upstream
#[derive(Clone, Copy)]
pub struct CappedClient<'a> {
    pub client: &'a reqwest::Client,
    pub max_response_bytes: usize,
}

/// Why an upstream answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is over `limit` bytes, by its `Content-Length` or by what arrived; the rest was
    /// left unread and the connection dropped.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection failed or timed out mid-body. The error has no URL: a query can name a
    /// user or carry a key.
    #[error("the answer was cut off: {0}")]
    Cut(reqwest::Error),
}

/// Reads `response`'s body, refusing one over `limit` bytes: without a cap one upstream (or
/// one user's query) could make the process hold an answer of any size, and every user's
/// calls share that memory. The body is read chunk by chunk, so no more than `limit` bytes
/// (and the chunk in hand) are ever held; an announced `Content-Length` over the limit is
/// refused before anything is read.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(ReadError::TooLarge { limit });
    }
    // The announced length is at most the limit here, so trusting it for the first
    // allocation costs no more than the bound allows.
    let capacity = announced.map_or(0, |length| usize::try_from(length).unwrap_or(limit));
    let mut body = Vec::with_capacity(capacity.min(limit));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| ReadError::Cut(err.without_url()))?
    {
        if chunk.len() > limit - body.len() {
            return Err(ReadError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_redirect_is_handed_back_not_followed() {
        let upstream = MockServer::start().await;
        let target = format!("{}/target", upstream.uri());
        Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/moved"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", target.as_str()))
            .expect(1)
            .mount(&upstream)
            .await;
        Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/target"))
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

    async fn answer(body: Vec<u8>) -> (MockServer, reqwest::Response) {
        let upstream = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .mount(&upstream)
            .await;
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(format!("{}/x?key=secret", upstream.uri()))
            .send()
            .await
            .unwrap();
        (upstream, response)
    }

    /// A raw HTTP/1.1 upstream that answers one request with `head` and then `chunks` copies
    /// of `chunk`; the task ends with the bytes it wrote before the reader left.
    async fn raw_upstream(
        head: String,
        chunk: Vec<u8>,
        chunks: usize,
    ) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let writer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let mut written = 0;
            if socket.write_all(head.as_bytes()).await.is_err() {
                return written;
            }
            for _ in 0..chunks {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
                written += chunk.len();
            }
            written
        });
        (url, writer)
    }

    async fn written(writer: tokio::task::JoinHandle<usize>) -> usize {
        tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("the upstream notices the reader left")
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read_whole() {
        let (_upstream, response) = answer(vec![b'a'; 4096]).await;
        assert_eq!(read_capped(response, 4096).await.unwrap().len(), 4096);
        let (_upstream, response) = answer(Vec::new()).await;
        assert!(read_capped(response, 4096).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_content_length_over_the_limit_is_refused_before_reading() {
        let (_upstream, response) = answer(vec![b'a'; 4097]).await;
        let err = read_capped(response, 4096).await.unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 4096 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the answer is larger than 4096 bytes");
        // 1 GiB announced and offered: refused on the header; the upstream is cut off after
        // what the socket buffers took.
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1u64 << 30);
        let (url, writer) = raw_upstream(head, vec![b'a'; 64 * 1024], 16 * 1024).await;
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap();
        let err = read_capped(response, 4096).await.unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 4096 }),
            "{err:?}"
        );
        let sent = written(writer).await;
        assert!(sent < 32 << 20, "the upstream wrote {sent} bytes");
    }

    #[tokio::test]
    async fn a_chunked_body_is_dropped_as_soon_as_it_passes_the_limit() {
        let chunk_size = 16 * 1024;
        let mut chunk = format!("{chunk_size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b'a', chunk_size));
        chunk.extend_from_slice(b"\r\n");
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned();
        // 1 GiB offered; the reader stops past 64 KiB.
        let (url, writer) = raw_upstream(head, chunk, 64 * 1024).await;
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap();
        let err = read_capped(response, 64 * 1024).await.unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 65536 }),
            "{err:?}"
        );
        // What the upstream wrote before the connection closed: the cap, the socket buffers
        // and a chunk or so, not the 1 GiB offered.
        let sent = written(writer).await;
        assert!(sent < 32 << 20, "the upstream wrote {sent} bytes");
    }

    #[tokio::test]
    async fn a_cut_answer_says_so_without_the_url() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n".to_owned();
        let (url, _) = raw_upstream(head, b"only this".to_vec(), 1).await;
        let response = client(Duration::from_secs(5))
            .unwrap()
            .get(format!("{url}?key=secret"))
            .send()
            .await
            .unwrap();
        let err = read_capped(response, 4096).await.unwrap_err();
        assert!(matches!(err, ReadError::Cut(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("the answer was cut off"), "{text}");
        assert!(
            !text.contains("secret") && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}
