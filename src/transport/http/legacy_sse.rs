//! guMCP's HTTP+SSE routes (MCP 2024-11-05), byte for byte where clients can tell:
//! `GET /{server}/{session_key}` opens the stream, whose first event is `endpoint`; messages are
//! POSTed to `/{server}/{session_key}/messages/?session_id=…` and answered on the stream.
//! Unlike guMCP, every stream is its own session (a second stream of a user does not end the
//! first), and a session ends with its connection.

use std::borrow::Cow;
use std::sync::Arc;

use crate::actors::outbox::Outbox;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::events::{self, Event, Until};
use super::sessions::{EvictOnDrop, SessionKind};
use super::{reply, HttpState, Target};
use crate::actors::session::Expect;
use crate::actors::session::{OpenSession, SessionHandle};

/// `GET /{server}/{session_key}`
pub async fn open_stream(request: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let target = match state.route_target(&request).await {
        Ok(target) => target,
        Err(refusal) => return refusal,
    };
    let seat = match state.sessions.admit(&target.caller.principal) {
        Ok(seat) => seat,
        Err(refused) => return reply::busy(refused),
    };
    let (out, outflow) = Outbox::new(state.outbound_buffer, &state.runtime.metrics);
    let OpenSession { handle, stopped } =
        SessionHandle::open(&state.runtime, &target.server, &target.caller, out);
    let id = state.sessions.insert(
        seat,
        target.server.clone(),
        SessionKind::LegacySse,
        handle,
        None,
    );
    // The stream's body is not polled while the client is not reading, so the table learns of
    // an overflow here; `ended` lets this watch go when the stream ends the normal way.
    let ended = CancellationToken::new();
    let (overflow, watching, table) = (
        outflow.overflow.clone(),
        ended.clone(),
        state.sessions.clone(),
    );
    actix_rt::spawn(async move {
        tokio::select! {
            () = overflow.cancelled() => {
                table.remove(&id);
            }
            () = watching.cancelled() => {}
        }
    });
    let endpoint = format!(
        "/{}/{}/messages/?session_id={}",
        target.server,
        target.quoted_key(),
        id.simple()
    );
    tracing::debug!(
        server = %target.server,
        user = %crate::telemetry::user_label(&target.caller.principal.user),
        "SSE stream opened"
    );
    let first = vec![Event::new("endpoint", None, &endpoint)];
    let body = events::feed(
        first,
        outflow,
        Some(stopped),
        Until::SessionEnds,
        (
            EvictOnDrop {
                table: state.sessions.clone(),
                id,
            },
            ended.drop_guard(),
        ),
    );
    events::response(body, state.keep_alive)
}

/// The `session_id` of a query string, borrowed from it unless it was percent-encoded.
pub(super) fn session_id_of(query: &str) -> Option<Cow<'_, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "session_id")
        .map(|(_, value)| value)
}

/// `POST /{server}/{session_key}/messages/?session_id=…` — status codes and bodies as the
/// Python SDK's SSE transport (which guMCP uses) answers.
pub async fn post_message(
    request: HttpRequest,
    state: web::Data<HttpState>,
    payload: web::Payload,
) -> HttpResponse {
    // Who calls is decided from the head; a refusal then closes the connection, since the
    // body stays unread. After the body is read, refusals leave the connection reusable.
    let target = match state.route_target(&request).await {
        Ok(target) => target,
        Err(refusal) => return reply::closing(refusal),
    };
    let body = match reply::read_body(&request, payload, &state.body_limits()).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Some(session_id) = session_id_of(request.query_string()) else {
        return reply::plain(StatusCode::BAD_REQUEST, "session_id is required");
    };
    let Ok(session_id) = Uuid::try_parse(&session_id) else {
        return reply::plain(StatusCode::BAD_REQUEST, "Invalid session ID");
    };
    let not_found = session_not_found;
    let Some(entry) = find(&state, &session_id, &target) else {
        return not_found();
    };
    match entry.session.deliver(body, None, None).await {
        Ok(Expect::Malformed) => reply::plain(StatusCode::BAD_REQUEST, "Could not parse message"),
        Ok(_) => reply::plain(StatusCode::ACCEPTED, "Accepted"),
        Err(_) => not_found(),
    }
}

/// The answer for a message to a session that does not exist (the Python SDK's).
pub(super) fn session_not_found() -> HttpResponse {
    reply::plain(StatusCode::NOT_FOUND, "Could not find session")
}

fn find(state: &HttpState, id: &Uuid, target: &Target) -> Option<Arc<super::sessions::Entry>> {
    state.sessions.find(
        id,
        &target.server,
        &target.caller.principal,
        SessionKind::LegacySse,
    )
}

#[cfg(test)]
mod tests {
    use super::session_id_of;

    #[test]
    fn the_session_id_is_found_among_other_parameters_and_decoded() {
        assert_eq!(session_id_of("session_id=abc").as_deref(), Some("abc"));
        assert_eq!(
            session_id_of("x=1&session_id=a%2Db").as_deref(),
            Some("a-b")
        );
        assert_eq!(session_id_of("session_id=").as_deref(), Some(""));
        assert_eq!(session_id_of("sessionid=abc&x=1"), None);
        assert_eq!(session_id_of(""), None);
    }
}
