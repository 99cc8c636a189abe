//! Turning a session's outgoing messages into an SSE response body that ends with the session,
//! with its client, or (for one request's stream) with that request's reply.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use actix_web_lab::sse;
use futures::future;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::jsonrpc::Outgoing;

/// One JSON-RPC message as an SSE `message` event.
pub fn message_event(message: &Outgoing, id: Option<String>) -> sse::Event {
    let mut data = sse::Data::new(message.to_line()).event("message");
    if let Some(id) = id {
        data = data.id(id);
    }
    sse::Event::Data(data)
}

/// When a feed stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The session's stream: until the session stops.
    SessionEnds,
    /// One request's stream: until its reply has been sent.
    Reply,
}

/// An SSE body fed from an outbox. `_keep` (a guard) is dropped with the body, which is how
/// the owner learns that the response is over, whether it ended or the client went away.
pub fn feed<K: 'static>(
    first: Vec<sse::Event>,
    outbox: mpsc::UnboundedReceiver<Outgoing>,
    stopped: Option<oneshot::Receiver<()>>,
    client_gone: impl Future<Output = ()> + 'static,
    until: Until,
    keep: K,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    struct Feed<K> {
        pending: std::vec::IntoIter<sse::Event>,
        outbox: mpsc::UnboundedReceiver<Outgoing>,
        stopped: Pin<Box<dyn Future<Output = ()>>>,
        stopping: bool,
        client_gone: Pin<Box<dyn Future<Output = ()>>>,
        until: Until,
        done: bool,
        _keep: K,
    }
    let state = Feed {
        pending: first.into_iter(),
        outbox,
        stopped: Box::pin(async move {
            match stopped {
                Some(stopped) => {
                    let _ = stopped.await;
                }
                None => future::pending().await,
            }
        }),
        stopping: false,
        client_gone: Box::pin(client_gone),
        until,
        done: false,
        _keep: keep,
    };
    futures::stream::unfold(state, |mut feed| async move {
        if let Some(event) = feed.pending.next() {
            return Some((Ok(event), feed));
        }
        if feed.done {
            return None;
        }
        let message = loop {
            if feed.stopping {
                // The session has stopped: send what it queued, then end.
                break feed.outbox.try_recv().ok();
            }
            tokio::select! {
                biased;
                () = &mut feed.client_gone => break None,
                message = feed.outbox.recv() => break message,
                () = &mut feed.stopped => feed.stopping = true,
            }
        }?;
        if feed.until == Until::Reply && message.is_reply() {
            feed.done = true;
        }
        Some((Ok(message_event(&message, None)), feed))
    })
}
