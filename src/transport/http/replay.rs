//! The streams of one Streamable HTTP session (2025 revisions): the standalone GET stream and
//! one stream per POST that the server answered with SSE. Every event gets an id
//! `<stream>-<seq>` and is kept (a bounded number per stream), so a client that lost its
//! connection can come back with `Last-Event-ID` and receive what it missed — including the
//! reply to a request that finished while it was away.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::events::Event;
use crate::actors::outbox::Outflow;
use crate::protocol::jsonrpc::Outgoing;

/// The number of the standalone (GET) stream; POST streams count up from 1.
pub const STANDALONE: u64 = 0;

/// Finished streams kept for resumption at most; the oldest goes first.
const KEPT_FINISHED_STREAMS: usize = 32;

pub struct StreamHub {
    state: Mutex<Hub>,
    events_per_stream: usize,
    /// Events a listener may fall behind by; past that it is dropped (it can resume).
    listener_buffer: usize,
}

#[derive(Default)]
struct Hub {
    next_stream: u64,
    streams: HashMap<u64, Log>,
    finished_order: VecDeque<u64>,
}

#[derive(Default)]
struct Log {
    events: VecDeque<(u64, Outgoing)>,
    next_seq: u64,
    live: Option<mpsc::Sender<Event>>,
    finished: bool,
}

/// Why a stream could not be attached to.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("a standalone SSE stream is already open for this session")]
    Busy,
    #[error("no stream matches Last-Event-ID {0:?} (it ended long ago, or never existed)")]
    UnknownEvent(String),
}

impl StreamHub {
    pub fn new(events_per_stream: usize, listener_buffer: usize) -> Arc<StreamHub> {
        Arc::new(StreamHub {
            state: Mutex::new(Hub {
                next_stream: STANDALONE + 1,
                ..Hub::default()
            }),
            events_per_stream,
            listener_buffer: listener_buffer.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        // A panic while holding this lock cannot leave the hub inconsistent in a way that
        // matters more than losing the session's ability to resume; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new POST stream, already holding `first`, with a live listener.
    pub fn open(&self, first: Outgoing) -> (u64, mpsc::Receiver<Event>) {
        let mut hub = self.lock();
        let stream = hub.next_stream;
        hub.next_stream += 1;
        let (live, receiver) = mpsc::channel(self.listener_buffer);
        hub.streams.insert(
            stream,
            Log {
                live: Some(live),
                ..Log::default()
            },
        );
        drop(hub);
        self.push(stream, first);
        (stream, receiver)
    }

    /// Records `message` on `stream` and hands it to the listener, if one is attached. A reply
    /// on a POST stream finishes it.
    pub fn push(&self, stream: u64, message: Outgoing) {
        let mut hub = self.lock();
        let finishes = stream != STANDALONE && message.is_reply();
        let Some(log) = hub.streams.get_mut(&stream) else {
            return;
        };
        let seq = log.next_seq;
        log.next_seq += 1;
        if let Some(live) = &log.live {
            // A listener that is gone or too far behind is let go; the log keeps the events
            // for its return with Last-Event-ID.
            if live
                .try_send(Event::message(&message, Some(&event_id(stream, seq))))
                .is_err()
            {
                log.live = None;
            }
        }
        let delivered = log.live.is_some();
        log.events.push_back((seq, message));
        while log.events.len() > self.events_per_stream {
            log.events.pop_front();
        }
        if finishes {
            log.finished = true;
            log.live = None;
            if delivered {
                hub.streams.remove(&stream);
            } else {
                hub.finished_order.push_back(stream);
                while hub.finished_order.len() > KEPT_FINISHED_STREAMS {
                    if let Some(oldest) = hub.finished_order.pop_front() {
                        hub.streams.remove(&oldest);
                    }
                }
            }
        }
    }

    /// Attaches a listener: to the standalone stream (`last_event` absent), or to the stream
    /// `last_event` names, replaying everything after it. The receiver ends when the stream
    /// finishes.
    pub fn attach(&self, last_event: Option<&str>) -> Result<mpsc::Receiver<Event>, AttachError> {
        let mut hub = self.lock();
        let (stream, after) = match last_event {
            None => (STANDALONE, None),
            Some(text) => parse_event_id(text)
                .filter(|(stream, _)| hub.streams.contains_key(stream))
                .map(|(stream, seq)| (stream, Some(seq)))
                .ok_or_else(|| AttachError::UnknownEvent(text.to_owned()))?,
        };
        let log = hub.streams.entry(stream).or_default();
        if last_event.is_none() && log.live.as_ref().is_some_and(|live| !live.is_closed()) {
            return Err(AttachError::Busy);
        }
        let missed: Vec<&(u64, Outgoing)> = log
            .events
            .iter()
            .filter(|(seq, _)| after.is_some_and(|after| *seq > after))
            .collect();
        // Room for everything missed (at most `events_per_stream`) plus the live allowance.
        let (live, receiver) = mpsc::channel(self.listener_buffer + missed.len());
        for (seq, message) in missed {
            let _ = live.try_send(Event::message(message, Some(&event_id(stream, *seq))));
        }
        if log.finished {
            hub.streams.remove(&stream);
            hub.finished_order.retain(|s| *s != stream);
        } else {
            log.live = Some(live);
        }
        Ok(receiver)
    }

    /// Whether a client is listening on any of the session's streams.
    pub fn has_listener(&self) -> bool {
        self.lock()
            .streams
            .values()
            .filter_map(|log| log.live.as_ref())
            .any(|live| !live.is_closed())
    }
}

fn event_id(stream: u64, seq: u64) -> String {
    format!("{stream}-{seq}")
}

fn parse_event_id(text: &str) -> Option<(u64, u64)> {
    let (stream, seq) = text.split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

/// Moves a POST's remaining messages (or the session's own, for the standalone stream) into
/// the hub until the reply (or the session's end).
pub async fn pump(
    hub: Arc<StreamHub>,
    stream: u64,
    outflow: Outflow,
    mut stopped: Option<oneshot::Receiver<()>>,
) {
    let mut outbox = outflow.receiver;
    loop {
        let message = match stopped.as_mut() {
            Some(session_end) => tokio::select! {
                message = outbox.recv() => message,
                _ = session_end => None,
            },
            None => outbox.recv().await,
        };
        let Some(message) = message else {
            return;
        };
        let finished = stream != STANDALONE && message.is_reply();
        hub.push(stream, message);
        if finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::jsonrpc::RequestId;
    use serde_json::json;

    fn reply(id: i64) -> Outgoing {
        Outgoing::reply(RequestId::Number(id), Ok(json!({})))
    }

    fn progress() -> Outgoing {
        Outgoing::notification("notifications/progress", json!({ "progress": 1 }))
    }

    #[test]
    fn a_lost_reply_is_replayed_after_the_last_seen_event() {
        let hub = StreamHub::new(16, 16);
        let (stream, receiver) = hub.open(progress());
        drop(receiver);
        hub.push(stream, progress());
        hub.push(stream, reply(7));
        let mut resumed = hub.attach(Some(&format!("{stream}-0"))).unwrap();
        let mut replayed = 0;
        while resumed.try_recv().is_ok() {
            replayed += 1;
        }
        assert_eq!(replayed, 2, "the second progress and the reply");
        assert!(
            hub.attach(Some(&format!("{stream}-0"))).is_err(),
            "a finished stream is gone once replayed"
        );
    }

    #[test]
    fn one_standalone_listener_at_a_time() {
        let hub = StreamHub::new(16, 16);
        let _first = hub.attach(None).unwrap();
        assert!(matches!(hub.attach(None), Err(AttachError::Busy)));
        assert!(hub.has_listener());
    }

    #[test]
    fn unknown_event_ids_are_refused() {
        let hub = StreamHub::new(16, 16);
        assert!(hub.attach(Some("nonsense")).is_err());
        assert!(hub.attach(Some("42-1")).is_err());
    }
}
