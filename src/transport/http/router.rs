//! The MCP routes, told apart by their path segments.
//!
//! actix-router matches every pattern with a `{parameter}` by running a regular expression, and
//! tries the patterns in order: the profile of a stateless call showed that at ~10% of the
//! service's CPU. The four MCP shapes need only a split on `/`, so they are matched here, as
//! the app's default service, after the static routes. The segments are those of actix's
//! re-quoted path (`%XX` decoded except `%`, `/` and `+`), as its patterns would have seen.

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use uuid::Uuid;

use super::{forward::Forwarder, legacy_sse, reply, streamable, HttpState};

/// Where an MCP request goes, with the path's server and session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpRoute<'p> {
    /// `/{server}/mcp` and `/{server}/{session_key}/mcp`: Streamable HTTP, both eras.
    Streamable {
        server: &'p str,
        session_key: Option<&'p str>,
    },
    /// `/{server}/{session_key}/messages/` (or without the last slash): a legacy SSE message.
    Messages {
        server: &'p str,
        session_key: &'p str,
    },
    /// `/{server}/{session_key}`: a legacy SSE stream.
    SseStream {
        server: &'p str,
        session_key: &'p str,
    },
}

impl<'p> McpRoute<'p> {
    /// The route's shape, for spans and logs (never the path, which may hold a key).
    pub fn label(&self) -> &'static str {
        match self {
            McpRoute::Streamable { .. } => "/{server}/{session_key}/mcp",
            McpRoute::Messages { .. } => "/{server}/{session_key}/messages/",
            McpRoute::SseStream { .. } => "/{server}/{session_key}",
        }
    }

    /// The route of `path`, if it is one; `/{server}/mcp` is always Streamable HTTP (a user
    /// named `mcp` has no legacy SSE route).
    pub fn of(path: &'p str) -> Option<McpRoute<'p>> {
        let mut segments = path.strip_prefix('/')?.split('/');
        let mut next = || segments.next();
        let parts = [next(), next(), next(), next(), next()];
        let named = |segment: &'p str| (!segment.is_empty()).then_some(segment);
        match parts {
            [Some(server), Some("mcp"), None, ..] => Some(McpRoute::Streamable {
                server: named(server)?,
                session_key: None,
            }),
            [Some(server), Some(key), Some("mcp"), None, _] => Some(McpRoute::Streamable {
                server: named(server)?,
                session_key: Some(named(key)?),
            }),
            [Some(server), Some(key), Some("messages"), None | Some(""), None] => {
                Some(McpRoute::Messages {
                    server: named(server)?,
                    session_key: named(key)?,
                })
            }
            [Some(server), Some(key), None, ..] => Some(McpRoute::SseStream {
                server: named(server)?,
                session_key: named(key)?,
            }),
            _ => None,
        }
    }

    pub fn server(&self) -> &'p str {
        match *self {
            McpRoute::Streamable { server, .. }
            | McpRoute::Messages { server, .. }
            | McpRoute::SseStream { server, .. } => server,
        }
    }

    pub fn session_key(&self) -> Option<&'p str> {
        match *self {
            McpRoute::Streamable { session_key, .. } => session_key,
            McpRoute::Messages { session_key, .. } | McpRoute::SseStream { session_key, .. } => {
                Some(session_key)
            }
        }
    }
}

/// Every request no static route took: an MCP route by its shape and method, or 404.
pub async fn mcp(
    request: HttpRequest,
    state: web::Data<HttpState>,
    payload: web::Payload,
) -> HttpResponse {
    let Some(route) = McpRoute::of(request.match_info().as_str()) else {
        return reply::plain(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some((forwarder, id)) = state
        .forwarder
        .as_ref()
        .and_then(|forwarder| Some((forwarder, session_named(&request, route)?)))
        .filter(|(forwarder, id)| forwarder.is_foreign(&request, id))
    {
        return forward(forwarder, &request, &state, route, payload, id).await;
    }
    let method = request.method();
    match route {
        McpRoute::Streamable { .. } if method == Method::POST => {
            streamable::post(request, state, payload).await
        }
        McpRoute::Streamable { .. } if method == Method::GET => {
            streamable::get(request, state).await
        }
        McpRoute::Streamable { .. } if method == Method::DELETE => {
            streamable::delete(request, state).await
        }
        McpRoute::Streamable { .. } => method_not_allowed("GET, POST, DELETE"),
        McpRoute::Messages { .. } if method == Method::POST => {
            legacy_sse::post_message(request, state, payload).await
        }
        McpRoute::Messages { .. } => method_not_allowed("POST"),
        McpRoute::SseStream { .. } if method == Method::GET => {
            legacy_sse::open_stream(request, state).await
        }
        McpRoute::SseStream { .. } => method_not_allowed("GET"),
    }
}

/// The session a request names, if its route has sessions: the `session_id` of a legacy
/// message, the `Mcp-Session-Id` of a 2025 Streamable request.
fn session_named(request: &HttpRequest, route: McpRoute<'_>) -> Option<Uuid> {
    let named = match route {
        McpRoute::Messages { .. } => legacy_sse::session_id_of(request.query_string())?,
        McpRoute::Streamable { .. } if !streamable::is_modern(request) => request
            .headers()
            .get(streamable::SESSION_HEADER)?
            .to_str()
            .ok()?
            .into(),
        _ => return None,
    };
    Uuid::try_parse(&named).ok()
}

/// Passes a request for another node's session on (cluster mode), its body read within the
/// usual bounds first.
async fn forward(
    forwarder: &Forwarder,
    request: &HttpRequest,
    state: &HttpState,
    route: McpRoute<'_>,
    payload: web::Payload,
    id: Uuid,
) -> HttpResponse {
    let body = if request.method() == Method::POST {
        match reply::read_body(request, payload, &state.body_limits()).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        }
    } else {
        Vec::new()
    };
    let legacy = matches!(route, McpRoute::Messages { .. });
    forwarder
        .forward(request, body, &id, || {
            if legacy {
                legacy_sse::session_not_found()
            } else {
                streamable::session_not_found()
            }
        })
        .await
}

fn method_not_allowed(allowed: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allowed))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::McpRoute;

    #[test]
    fn each_shape_is_told_apart() {
        let streamable = |server, session_key| McpRoute::Streamable {
            server,
            session_key,
        };
        assert_eq!(McpRoute::of("/gh/mcp"), Some(streamable("gh", None)));
        assert_eq!(
            McpRoute::of("/gh/u1/mcp"),
            Some(streamable("gh", Some("u1")))
        );
        assert_eq!(
            McpRoute::of("/gh/mcp/mcp"),
            Some(streamable("gh", Some("mcp")))
        );
        let messages = McpRoute::Messages {
            server: "gh",
            session_key: "u1:k",
        };
        assert_eq!(McpRoute::of("/gh/u1:k/messages/"), Some(messages));
        assert_eq!(McpRoute::of("/gh/u1:k/messages"), Some(messages));
        let stream = McpRoute::SseStream {
            server: "gh",
            session_key: "u1",
        };
        assert_eq!(McpRoute::of("/gh/u1"), Some(stream));
    }

    #[test]
    fn other_paths_are_no_route() {
        for path in [
            "",
            "/",
            "/gh",
            "/gh/",
            "//mcp",
            "/gh//mcp",
            "/gh/mcp/",
            "/gh/u1/",
            "/gh/u1/mcp/",
            "/gh/u1/messages//",
            "/gh/u1/messages/x",
            "/gh/u1/other",
            "/a/b/c/d",
            "gh/u1",
        ] {
            assert_eq!(McpRoute::of(path), None, "{path:?}");
        }
    }
}
