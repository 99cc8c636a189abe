//! The bounded queue between a session and its transport. A client that stops reading lets
//! it fill; the next message then trips the overflow signal, and the transport ends that
//! stream (closing the connection, which ends the session) — memory stays bounded instead of
//! growing with every message the client does not read.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, Rejection};
use crate::protocol::jsonrpc::Outgoing;

/// The sending side, held by the session (and by requests' links back to it).
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::Sender<Outgoing>,
    overflow: CancellationToken,
    metrics: Arc<Metrics>,
}

/// The receiving side, held by the transport.
#[derive(Debug)]
pub struct Outflow {
    pub receiver: mpsc::Receiver<Outgoing>,
    /// Cancelled once a message could not be queued because the reader fell too far behind.
    pub overflow: CancellationToken,
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
            Outflow { receiver, overflow },
        )
    }

    /// Cancelled once the reader has fallen too far behind.
    pub fn overflow(&self) -> CancellationToken {
        self.overflow.clone()
    }

    /// Queues `message`. A closed queue means its stream is gone, so the message has no one
    /// to go to; a full one means the reader stalled, and the stream is ended.
    pub fn push(&self, message: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(message) {
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
        assert!(outflow.receiver.try_recv().is_ok());
        assert!(outflow.receiver.try_recv().is_ok());
        assert!(outflow.receiver.try_recv().is_err());
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
