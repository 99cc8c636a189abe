//! A bare HTTP/1.1 client: one keep-alive connection per virtual user, no pool, no TLS.
//!
//! hyper's connection-level API instead of reqwest so the client spends as little CPU as
//! possible — client and server share the same two cores, and every cycle the client burns is
//! one the server under test does not get.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Errors of the load generator: counted and sampled, never fatal to the whole run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// Where a target listens: the socket address and any path prefix given with `--url`.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub authority: String,
    pub prefix: String,
}

impl Endpoint {
    /// Parses `http://host:port[/prefix]`; only plain HTTP on an address that resolves now.
    pub async fn parse(url: &str) -> Res<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let addr = tokio::net::lookup_host(authority)
            .await?
            .next()
            .ok_or_else(|| format!("{authority} does not resolve"))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// A path on this endpoint, with the `--url` prefix in front.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// One HTTP/1.1 keep-alive connection; requests on it are sequential.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    pub async fn connect(endpoint: &Endpoint) -> Res<Self> {
        let stream = TcpStream::connect(endpoint.addr).await?;
        // Small request bodies must leave at once; Nagle would hold them behind delayed ACKs.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes; either way
            // the user notices through its next request, so the error itself adds nothing.
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            authority: endpoint.authority.clone(),
        })
    }

    /// Sends one request and returns the response with its body still unread.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Res<Response<Incoming>> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body))?;
        Ok(self.sender.send_request(request).await?)
    }
}

/// Reads a whole response body (the connection is reusable only once it has been read).
pub async fn read_body(response: Response<Incoming>) -> Res<Bytes> {
    Ok(response.into_body().collect().await?.to_bytes())
}

/// Whether a response carries an SSE stream rather than a single JSON body.
pub fn is_event_stream(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// A response header as text, if present and readable.
pub fn header(response: &Response<Incoming>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
