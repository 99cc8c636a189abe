//! The bounded queue between a session and its transport. A client that stops reading lets
//! it fill; the next message then trips the overflow signal, and the transport ends that
//! stream (closing the connection, which ends the session) — memory stays bounded instead of
//! growing with every message the client does not read.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, Rejection};
use crate::protocol::jsonrpc::Outgoing;

/// Messages travel boxed: a channel allocates its first block of 32 slots up front, and with
/// 88-byte messages that block alone was a sixth of an idle SSE session's memory.
type Slot = Box<Outgoing>;

/// The sending side, held by the session (and by requests' links back to it).
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::Sender<Slot>,
    overflow: CancellationToken,
    metrics: Arc<Metrics>,
}

/// The receiving side, held by the transport.
#[derive(Debug)]
pub struct Outflow {
    pub receiver: OutboxReceiver,
    /// Cancelled once a message could not be queued because the reader fell too far behind.
    pub overflow: CancellationToken,
}

/// The queue's receiving end, handing out the messages unboxed.
#[derive(Debug)]
pub struct OutboxReceiver(mpsc::Receiver<Slot>);

impl OutboxReceiver {
    /// The next message; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        self.0.recv().await.map(|message| *message)
    }

    /// The next message if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        self.0.try_recv().ok().map(|message| *message)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &self.sender.max_capacity())
            .field("overflowed", &self.overflow.is_cancelled())
            .finish()
    }
}

impl Outbox {
    /// A queue holding at most `capacity` messages; an overflow is counted in `metrics`.
    pub fn new(capacity: usize, metrics: &Arc<Metrics>) -> (Outbox, Outflow) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let overflow = CancellationToken::new();
        (
            Outbox {
                sender,
                overflow: overflow.clone(),
                metrics: metrics.clone(),
            },
            Outflow {
                receiver: OutboxReceiver(receiver),
                overflow,
            },
        )
    }

    /// Cancelled once the reader has fallen too far behind.
    pub fn overflow(&self) -> CancellationToken {
        self.overflow.clone()
    }

    /// Queues `message`. A closed queue means its stream is gone, so the message has no one
    /// to go to; a full one means the reader stalled, and the stream is ended.
    pub fn push(&self, message: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(Box::new(message)) {
            if !self.overflow.is_cancelled() {
                tracing::warn!(
                    capacity = self.sender.max_capacity(),
                    "a client stopped reading its stream; closing it"
                );
                self.metrics.rejected(Rejection::SlowReader);
                self.overflow.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_queue_trips_the_overflow_and_drops_the_message() {
        let metrics = Arc::new(Metrics::new());
        let (outbox, mut outflow) = Outbox::new(2, &metrics);
        for n in 0..3 {
            outbox.push(Outgoing::notification(
                "notifications/message",
                json!({ "n": n }),
            ));
        }
        assert!(outflow.overflow.is_cancelled());
        assert!(outflow.receiver.try_recv().is_some());
        assert!(outflow.receiver.try_recv().is_some());
        assert!(outflow.receiver.try_recv().is_none());
        let counted = metrics.rejections.with_label_values(&["slow_reader"]).get();
        assert_eq!(counted, 1, "one overflow, counted once");
    }

    #[test]
    fn a_closed_queue_is_not_an_overflow() {
        let (outbox, outflow) = Outbox::new(1, &Arc::default());
        drop(outflow);
        outbox.push(Outgoing::notification("notifications/message", json!({})));
        outbox.push(Outgoing::notification("notifications/message", json!({})));
        assert!(!outbox.overflow.is_cancelled());
    }
}
