//! Cluster mode: a request for a session another node holds is passed to that node over HTTP
//! and its answer streamed back, so a plain round-robin load balancer can spread a session's
//! requests over every node.
//!
//! The owner is read from the session id itself (its first bytes are the owner's tag, see
//! [`SessionTable::tagged`](super::sessions::SessionTable::tagged)) and its address from the
//! membership (`cluster::membership`). The request goes with its method, path, query, body and
//! headers (the `Host` and credentials included: the owner checks them as it checks any
//! request) plus [`HOP_HEADER`], which marks it as forwarded so it is never forwarded again.
//!
//! - Owner not a member (killed, stopped, or the id was made up), or refusing the connection:
//!   the session's own 404, so the client starts a new session.
//! - Membership unreadable (Redis gone for longer than `membership::STALE`): 503 with
//!   `Retry-After: 1`, answered at once.
//! - Bounds: the body as on any route (`protocol.max_message_bytes`, `http.body_timeout_secs`);
//!   connecting to the owner [`CONNECT_TIMEOUT`]; its answer's head within
//!   `protocol.client_request_timeout_secs`, else 504. The body then streams for as long as
//!   either side keeps it open; the client leaving drops the forwarded connection too.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use uuid::Uuid;

use super::reply;
use super::sessions::tag_in;
use crate::cluster::{Cluster, ClusterError};

/// Set on a forwarded request to the forwarding node's id; a request carrying it is served
/// where it lands.
pub const HOP_HEADER: &str = "x-gumcp-forwarded-by";

/// How long connecting to an owner may take before it counts as gone.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and the length
/// the client recomputes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("the node holding this session is gone")]
    OwnerGone,
    #[error("the node holding this session did not answer in time")]
    OwnerSlow,
}

/// Passes requests for other nodes' sessions on.
pub struct Forwarder {
    cluster: Arc<Cluster>,
    client: reqwest::Client,
    head_timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Forwarder {
    pub fn new(
        cluster: Arc<Cluster>,
        head_timeout: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Forwarder, crate::upstream::ClientError> {
        crate::upstream::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|err| crate::upstream::ClientError(err.without_url()))?;
        Ok(Forwarder {
            cluster,
            client,
            head_timeout,
            metrics,
        })
    }

    /// Whether a request naming session `id` is for another node: the id carries another
    /// node's tag and the request was not forwarded already.
    pub fn is_foreign(&self, request: &HttpRequest, id: &Uuid) -> bool {
        tag_in(id) != self.cluster.tag() && !request.headers().contains_key(HOP_HEADER)
    }

    /// Forwards `request` (with `body`) to the owner of session `id` and streams its answer
    /// back; `not_found` is the route's own answer for a session that does not exist.
    pub async fn forward(
        &self,
        request: &HttpRequest,
        body: Vec<u8>,
        id: &Uuid,
        not_found: impl FnOnce() -> HttpResponse,
    ) -> HttpResponse {
        let sent = self.send(request, body, id).await;
        let outcome = match &sent {
            Ok(_) => "forwarded",
            Err(ForwardError::OwnerGone) => "owner_gone",
            Err(ForwardError::Cluster(_)) => "unavailable",
            Err(ForwardError::OwnerSlow) => "owner_slow",
        };
        self.metrics
            .cluster_forwards
            .with_label_values(&[outcome])
            .inc();
        match sent {
            Ok(answer) => relay(answer),
            Err(ForwardError::OwnerGone) => not_found(),
            Err(ForwardError::Cluster(err)) => unavailable(&err),
            Err(err @ ForwardError::OwnerSlow) => {
                reply::plain(StatusCode::GATEWAY_TIMEOUT, err.to_string())
            }
        }
    }

    async fn send(
        &self,
        request: &HttpRequest,
        body: Vec<u8>,
        id: &Uuid,
    ) -> Result<reqwest::Response, ForwardError> {
        let owner = self
            .cluster
            .owner(tag_in(id))
            .await?
            .ok_or(ForwardError::OwnerGone)?;
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        let url = format!("{}{path}", owner.url.trim_end_matches('/'));
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| ForwardError::OwnerGone)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in request.headers() {
            if HOP_BY_HOP.contains(&name.as_str()) || name.as_str() == HOP_HEADER {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(name, value);
            }
        }
        if let Ok(node) = reqwest::header::HeaderValue::from_str(self.cluster.node_id()) {
            headers.insert(HOP_HEADER, node);
        }
        let sent = self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send();
        match tokio::time::timeout(self.head_timeout, sent).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ForwardError::OwnerGone),
            Err(_) => Err(ForwardError::OwnerSlow),
        }
    }
}

/// 503 with `Retry-After: 1`: the cluster cannot tell where the session lives right now.
pub fn unavailable(err: &ClusterError) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .content_type("text/plain; charset=utf-8")
        .body(format!("{err}; retry shortly"))
}

/// The owner's answer as this node's: status, headers (but the connection's own), and the body
/// streamed as it arrives.
fn relay(answer: reqwest::Response) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_str().as_bytes()),
            header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.append_header((name, value));
        }
    }
    let sized = answer.content_length();
    // An error ends the stream: the client sees the connection close, as it would have with
    // the owner itself.
    let chunks = futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(answer))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::other("the owning node's answer broke off")),
                None,
            )),
        }
    });
    match sized {
        Some(length) => response.no_chunking(length).streaming(chunks),
        None => response.streaming(chunks),
    }
}
