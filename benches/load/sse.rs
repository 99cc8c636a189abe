//! Server-sent events read off a response body, one event at a time.
//!
//! Hand-written (about forty lines) because the client needs only `event` and `data`, and a
//! parser that copies nothing it does not return keeps the client's share of the CPU small.

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::http::Res;

/// One dispatched event: its type (`message` when the stream named none) and its data.
#[derive(Debug, Default)]
pub struct Event {
    pub event: String,
    pub data: String,
}

pub struct SseReader {
    body: Incoming,
    buf: BytesMut,
}

impl SseReader {
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next event, or `None` once the stream has ended. Comments and `id`/`retry` fields
    /// are skipped; an event with no data (e.g. a priming event) is returned with empty data.
    pub async fn next_event(&mut self) -> Res<Option<Event>> {
        let mut current = Event::default();
        let mut has_field = false;
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(end + 1);
                let line = trim_line(&line);
                if line.is_empty() {
                    if has_field {
                        if current.event.is_empty() {
                            current.event.push_str("message");
                        }
                        return Ok(Some(current));
                    }
                    continue;
                }
                if line.starts_with(b":") {
                    continue;
                }
                let (field, value) = split_field(line);
                match field {
                    b"event" => {
                        current.event = String::from_utf8_lossy(value).into_owned();
                        has_field = true;
                    }
                    b"data" => {
                        if !current.data.is_empty() {
                            current.data.push('\n');
                        }
                        current.data.push_str(&String::from_utf8_lossy(value));
                        has_field = true;
                    }
                    _ => has_field = true,
                }
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(data.chunk());
                    }
                }
                None => return Ok(None),
            }
        }
    }

    /// Reads the rest of the stream so its connection can carry the next request.
    pub async fn drain(mut self) -> Res<()> {
        while let Some(frame) = self.body.frame().await {
            frame?;
        }
        Ok(())
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        Some(at) => {
            let value = &line[at + 1..];
            (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}
