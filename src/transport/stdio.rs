//! stdio: newline-delimited JSON-RPC on stdin/stdout for one desktop client. Logs never touch
//! stdout. A line over the size limit is answered with an error and skipped; the pipe keeps
//! serving. At end of input, requests in flight are answered (within the grace period) and the
//! process exits.

use crate::auth::access::Caller;
use crate::auth::principal::Principal;
use std::time::Duration;
use tracing::Instrument;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::sync::oneshot;

use crate::actors::outbox::{Outbox, Outflow};
use crate::actors::runtime::Runtime;
use crate::actors::session::{OpenSession, SessionHandle};
use crate::protocol::jsonrpc::Outgoing;

/// stdin and stdout for [`serve`], through tokio's stdio: every read and write is handed to a
/// blocking-pool thread. The path of Windows, where a child's standard streams are pipe handles
/// opened for synchronous I/O, which the reactor cannot wait on; and of unix builds with the
/// test-only `portable-stdio` feature, which runs the stdio tests through it on Linux.
#[cfg(any(not(unix), feature = "portable-stdio"))]
pub fn standard_streams() -> (Box<dyn AsyncRead + Unpin>, Box<dyn AsyncWrite + Unpin>) {
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

#[cfg(all(unix, not(feature = "portable-stdio")))]
pub use polled::standard_streams;

/// stdin and stdout on the runtime's reactor (epoll on Linux, kqueue on macOS).
#[cfg(all(unix, not(feature = "portable-stdio")))]
mod polled {
    use std::fs::File;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;

    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::unix::pipe;
    use tokio_util::either::Either;

    /// stdin and stdout for [`serve`](super::serve). Pipes and UNIX sockets (what desktop
    /// clients start us with: Python's subprocess gives pipes, Node's child_process socket
    /// pairs) are read and written through the runtime's reactor; tokio's stdin/stdout would
    /// pass every message through a blocking-pool thread on its way in and again on its way
    /// out, a thread hand-off each way. Anything else (a terminal, a file) goes through tokio's
    /// stdio. Must run inside the runtime.
    pub fn standard_streams() -> (Box<dyn AsyncRead + Unpin>, Box<dyn AsyncWrite + Unpin>) {
        let input: Box<dyn AsyncRead + Unpin> =
            match polled(std::io::stdin().as_fd(), pipe::Receiver::from_file) {
                Some(stream) => Box::new(stream),
                None => Box::new(tokio::io::stdin()),
            };
        let output: Box<dyn AsyncWrite + Unpin> =
            match polled(std::io::stdout().as_fd(), pipe::Sender::from_file) {
                Some(stream) => Box::new(stream),
                None => Box::new(tokio::io::stdout()),
            };
        (input, output)
    }

    /// A standard stream on the runtime's reactor, through a descriptor of its own: `as_pipe`
    /// for a pipe, a `UnixStream` for a socket; `None` for anything the reactor cannot watch.
    fn polled<P>(
        fd: BorrowedFd<'_>,
        as_pipe: impl FnOnce(File) -> std::io::Result<P>,
    ) -> Option<Either<P, tokio::net::UnixStream>> {
        let file = File::from(fd.try_clone_to_owned().ok()?);
        let kind = file.metadata().ok()?.file_type();
        if kind.is_fifo() {
            as_pipe(file).ok().map(Either::Left)
        } else if kind.is_socket() {
            let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
            socket.set_nonblocking(true).ok()?;
            tokio::net::UnixStream::from_std(socket)
                .ok()
                .map(Either::Right)
        } else {
            None
        }
    }
}

/// Serves one session over `input`/`output` until the input ends.
pub async fn serve<R, W>(
    runtime: Runtime,
    server: &str,
    user: &str,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + 'static,
{
    let limit = runtime.settings.protocol.max_message_bytes;
    let grace = Duration::from_secs(runtime.settings.runtime.shutdown_grace_secs);
    let (out, outflow) = Outbox::new(runtime.settings.protocol.outbound_buffer, &runtime.metrics);
    let OpenSession {
        handle: session,
        stopped,
    } = SessionHandle::open(
        &runtime,
        server,
        &Caller {
            principal: Principal::user(user),
            key: None,
            via: "stdio",
        },
        out,
    );
    let writer = actix_rt::spawn(write_all(outflow, stopped, output));

    let mut input = BufReader::new(input);
    loop {
        let delivered = match read_line(&mut input, limit).await {
            Ok(Line::Text(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Line::Text(line)) => session
                .deliver(line, None, None)
                .instrument(tracing::info_span!("stdio.frame"))
                .await
                .map(drop),
            Ok(Line::TooLong) => session.too_large(limit).await,
            Ok(Line::End) => break,
            Err(err) => {
                tracing::warn!(%err, "stdin failed; closing");
                break;
            }
        };
        if delivered.is_err() || writer.is_finished() {
            break;
        }
    }
    session.drain(grace);
    match writer.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

/// One read from the input.
enum Line {
    Text(Vec<u8>),
    /// A line over the limit, already skipped up to and including its newline.
    TooLong,
    End,
}

/// Reads one newline-terminated line holding at most `limit` bytes in memory; a longer line is
/// consumed and discarded so the next one can be read.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R, limit: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = input.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Text(line),
            });
        }
        let (chunk, found_newline) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (&buffer[..at], true),
            None => (buffer, false),
        };
        if !too_long && line.len() + chunk.len() <= limit {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line = Vec::new();
        }
        let consumed = chunk.len() + usize::from(found_newline);
        input.consume(consumed);
        if found_newline {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// Writes every outgoing message as one line, flushing whenever the queue runs dry. Ends once
/// the session has stopped and what it sent is written.
async fn write_all<W: AsyncWrite + Unpin>(
    outflow: Outflow,
    mut stopped: oneshot::Receiver<()>,
    output: W,
) -> std::io::Result<()> {
    let Outflow {
        receiver: mut outbox,
        overflow,
    } = outflow;
    let mut output = BufWriter::new(output);
    loop {
        tokio::select! {
            biased;
            () = overflow.cancelled() => {
                return Err(std::io::Error::other(
                    "the client stopped reading stdout (protocol.outbound_buffer is full)",
                ));
            }
            message = outbox.recv() => match message {
                Some(message) => {
                    write_line(&mut output, &message).await?;
                    if outbox.is_empty() {
                        output.flush().await?;
                    }
                }
                None => break,
            },
            _ = &mut stopped => {
                while let Some(message) = outbox.try_recv() {
                    write_line(&mut output, &message).await?;
                }
                break;
            }
        }
    }
    output.flush().await
}

async fn write_line<W: AsyncWrite + Unpin>(
    output: &mut W,
    message: &Outgoing,
) -> std::io::Result<()> {
    let mut line = message.to_line();
    line.push('\n');
    output.write_all(line.as_bytes()).await
}
