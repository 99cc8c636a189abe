//! Responses shared by the routes: plain-text errors where guMCP answers in plain text,
//! JSON-RPC error bodies where the MCP endpoint does, and reading a body within the limit.

use actix_web::body::MessageBody;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use futures::StreamExt;
use serde_json::json;

use crate::metrics::{Metrics, Rejection};
use crate::protocol::error::McpError;

/// A fixed text (`&'static str`) is sent without a copy; the header value is checked once.
pub fn plain(status: StatusCode, text: impl MessageBody + 'static) -> HttpResponse {
    static TEXT_PLAIN: header::HeaderValue =
        header::HeaderValue::from_static("text/plain; charset=utf-8");
    HttpResponse::build(status)
        .content_type(TEXT_PLAIN.clone())
        .body(text)
}

/// A JSON-RPC error that answers no particular request.
pub fn rpc_error(status: StatusCode, error: McpError) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({ "jsonrpc": "2.0", "id": null, "error": error }).to_string())
}

/// 401 (or 403 for a missing scope) with the reason and the Bearer challenge.
pub fn unauthorized(why: &str, challenge: &str, forbidden: bool) -> HttpResponse {
    let (status, label) = if forbidden {
        (StatusCode::FORBIDDEN, "Forbidden")
    } else {
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    };
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .content_type("text/plain; charset=utf-8")
        .body(format!("{label}: {why}"))
}

pub fn forbidden(why: &str) -> HttpResponse {
    rpc_error(StatusCode::FORBIDDEN, McpError::invalid_request(why))
}

pub fn unknown_server(name: &str, available: &[String]) -> HttpResponse {
    plain(
        StatusCode::NOT_FOUND,
        format!(
            "Not Found: no server named {name:?}; available: {}",
            available.join(", ")
        ),
    )
}

/// 503 with a hint of when to come back.
pub fn busy(why: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .content_type("text/plain; charset=utf-8")
        .body(why.to_string())
}

/// A refusal sent before the request's body was read: the connection closes after it, since
/// the unread rest of the body would otherwise be taken for the next request.
pub fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response
}

/// What a request body must keep to.
pub struct BodyLimits<'a> {
    pub max_bytes: usize,
    /// The whole body must have arrived this long after the handler starts reading it.
    pub timeout: std::time::Duration,
    pub metrics: &'a Metrics,
}

/// Reads the whole body, refusing (413) one over the size limit without buffering it, and
/// cutting off (408) one that does not arrive in time — a client that announces a large body
/// and sends a byte must not hold a connection for ever.
pub async fn read_body(
    request: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limits: &BodyLimits<'_>,
) -> Result<Vec<u8>, HttpResponse> {
    let limit = limits.max_bytes;
    // The rest of the body stays unread, so the connection cannot carry another request.
    let too_large = || {
        limits.metrics.rejected(Rejection::MessageTooLarge);
        closing(rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            McpError::invalid_request(format!(
                "message too large: the limit is {limit} bytes (protocol.max_message_bytes)"
            )),
        ))
    };
    if declared_too_large(request, limit) {
        return Err(too_large());
    }
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                plain(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {err}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    match tokio::time::timeout(limits.timeout, read).await {
        Ok(read) => read,
        Err(_) => {
            limits.metrics.rejected(Rejection::BodyTimeout);
            Err(closing(rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                McpError::invalid_request(format!(
                    "the request body did not arrive within {} s (http.body_timeout_secs)",
                    limits.timeout.as_secs()
                )),
            )))
        }
    }
}

/// Whether the declared `Content-Length` is already over the limit.
fn declared_too_large(request: &actix_web::HttpRequest, limit: usize) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}
