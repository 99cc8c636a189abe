//! Server-sent events, framed the way guMCP's server (sse-starlette) frames them, so a guMCP
//! client sees the same bytes: `event:`/`id:`/`data:` lines ending in CRLF, a blank line after
//! each event, and a `: ping - <UTC time>` comment every keep-alive period, the first one a
//! full period after the stream opens. Also: turning a session's outbox into such a stream
//! that ends with the session or (for one request's stream) after its reply. A client that
//! leaves ends it too: actix-web then drops the body (`transport::http`'s module docs).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures::future;
use futures::Stream;
use tokio::sync::oneshot;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use crate::actors::outbox::{OutboxReceiver, Outflow};
use crate::protocol::jsonrpc::Outgoing;
use tokio_util::sync::CancellationToken;

/// One SSE event, already encoded.
#[derive(Debug, Clone)]
pub struct Event(Bytes);

impl Event {
    /// An event named `name` with one line of `data` (JSON and the endpoint path never hold a
    /// newline; any that did would be split into `data:` lines).
    pub fn new(name: &str, id: Option<&str>, data: &str) -> Event {
        let mut text = String::with_capacity(data.len() + 32);
        text.push_str("event: ");
        text.push_str(name);
        text.push_str("\r\n");
        if let Some(id) = id {
            text.push_str("id: ");
            text.push_str(id);
            text.push_str("\r\n");
        }
        for line in data.split('\n') {
            text.push_str("data: ");
            text.push_str(line.strip_suffix('\r').unwrap_or(line));
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Event(Bytes::from(text))
    }

    /// One JSON-RPC message as a `message` event.
    pub fn message(message: &Outgoing, id: Option<&str>) -> Event {
        Event::new("message", id, &message.to_line())
    }
}

/// The keep-alive comment guMCP sends: `: ping - 2026-11-25 06:00:55.651001+00:00`.
fn ping() -> Bytes {
    let now = chrono::Utc::now();
    let micros = now.timestamp_subsec_micros();
    let stamp = if micros == 0 {
        now.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", now.format("%Y-%m-%d %H:%M:%S"))
    };
    Bytes::from(format!(": ping - {stamp}\r\n\r\n"))
}

/// An event stream with keep-alives, as the body of a response.
struct WithKeepAlive<S> {
    events: Pin<Box<S>>,
    keep_alive: Interval,
}

impl<S: Stream<Item = Event>> Stream for WithKeepAlive<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(next) = self.events.as_mut().poll_next(cx) {
            return Poll::Ready(next.map(|event| Ok(event.0)));
        }
        if self.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(ping())));
        }
        Poll::Pending
    }
}

/// A `text/event-stream` response with guMCP's headers.
pub fn response<S>(events: S, keep_alive: Duration) -> HttpResponse
where
    S: Stream<Item = Event> + 'static,
{
    let mut ticks = interval_at(Instant::now() + keep_alive, keep_alive);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(WithKeepAlive {
            events: Box::pin(events),
            keep_alive: ticks,
        })
}

/// When a feed stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The session's stream: until the session stops.
    SessionEnds,
    /// One request's stream: until its reply has been sent.
    Reply,
}

/// Events fed from an outbox. `keep` (a guard) is dropped with the stream, which is how the
/// owner learns that the response is over, whether it ended or the client went away.
pub fn feed<K: 'static>(
    first: Vec<Event>,
    outflow: Outflow,
    stopped: Option<oneshot::Receiver<()>>,
    until: Until,
    keep: K,
) -> impl Stream<Item = Event> {
    struct Feed<K> {
        pending: std::vec::IntoIter<Event>,
        outbox: OutboxReceiver,
        overflow: CancellationToken,
        stopped: Pin<Box<dyn Future<Output = ()>>>,
        stopping: bool,
        until: Until,
        done: bool,
        _keep: K,
    }
    let state = Feed {
        pending: first.into_iter(),
        outbox: outflow.receiver,
        overflow: outflow.overflow,
        stopped: Box::pin(async move {
            match stopped {
                Some(stopped) => {
                    let _ = stopped.await;
                }
                None => future::pending().await,
            }
        }),
        stopping: false,
        until,
        done: false,
        _keep: keep,
    };
    futures::stream::unfold(state, |mut feed| async move {
        if let Some(event) = feed.pending.next() {
            return Some((event, feed));
        }
        if feed.done {
            return None;
        }
        let message = loop {
            if feed.stopping {
                // The session has stopped: send what it queued, then end.
                break feed.outbox.try_recv();
            }
            tokio::select! {
                biased;
                // The client stopped reading: end the stream rather than buffer without end.
                () = feed.overflow.cancelled() => break None,
                message = feed.outbox.recv() => break message,
                () = &mut feed.stopped => feed.stopping = true,
            }
        }?;
        if feed.until == Until::Reply && message.is_reply() {
            feed.done = true;
        }
        Some((Event::message(&message, None), feed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_with_crlf_like_sse_starlette() {
        let event = Event::new("endpoint", None, "/s/a%3Ab/messages/?session_id=00");
        assert_eq!(
            &event.0[..],
            b"event: endpoint\r\ndata: /s/a%3Ab/messages/?session_id=00\r\n\r\n"
        );
        let with_id = Event::new("message", Some("1-0"), "{}");
        assert_eq!(
            &with_id.0[..],
            b"event: message\r\nid: 1-0\r\ndata: {}\r\n\r\n"
        );
    }

    #[test]
    fn the_ping_looks_like_pythons_utc_datetime() {
        let ping = String::from_utf8(ping().to_vec()).unwrap();
        assert!(
            ping.starts_with(": ping - 20") && ping.ends_with("+00:00\r\n\r\n"),
            "{ping}"
        );
        assert_eq!(&ping[19..20], " ", "a space between date and time: {ping}");
    }
}
