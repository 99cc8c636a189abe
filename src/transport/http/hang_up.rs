//! Noticing that a client has gone. actix-web learns of a closed connection only when a write
//! to it fails (actix/actix-web#1313), which for an idle SSE stream is the second keep-alive
//! after the close. Each connection's socket is remembered when it is accepted, and a stream
//! that must end with its client waits on the socket's read-closed readiness (EPOLLRDHUP)
//! through a duplicate descriptor, so a close is seen as soon as the peer's FIN arrives.

use std::any::Any;
use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::HttpRequest;
use futures::future::{self, Either};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The raw descriptor of a connection's socket, stored in its connection data.
#[derive(Debug, Clone, Copy)]
struct ConnectionSocket(RawFd);

/// `HttpServer::on_connect` hook: remembers each TCP connection's descriptor.
pub fn remember_socket(connection: &dyn Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        data.insert(ConnectionSocket(stream.as_raw_fd()));
    }
}

/// Resolves once the client of `request` has closed its connection, watching from `after` on
/// (so requests answered sooner cost nothing). Where the socket cannot be watched it never
/// resolves, and a failed write ends the response instead.
pub fn client_gone(request: &HttpRequest, after: Duration) -> impl Future<Output = ()> + 'static {
    let socket = request.conn_data::<ConnectionSocket>().copied();
    async move {
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
        match socket.as_ref().and_then(watch) {
            Some(watched) => Either::Left(read_closed(watched)),
            None => Either::Right(future::pending()),
        }
        .await
    }
}

fn watch(socket: &ConnectionSocket) -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: the descriptor belongs to the connection this request arrived on. This future is
    // only ever polled by that connection's handler or response body, and actix keeps the
    // connection open while it drives either. The duplicate made here is owned independently
    // of actix's descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(socket.0) };
    let duplicate = borrowed.try_clone_to_owned().ok()?;
    // SAFETY: `OwnedFd` keeps its descriptor open and unchanged until it is dropped, which
    // happens with the `AsyncFd`.
    unsafe { AsyncFd::register_with_interest(duplicate, Interest::READABLE) }.ok()
}

async fn read_closed(watched: AsyncFd<OwnedFd>) {
    loop {
        let Ok(mut ready) = watched.readable().await else {
            return future::pending().await;
        };
        if ready.ready().is_read_closed() {
            return;
        }
        // Bytes to read (a pipelined request) are actix's to read, not ours; wait for the next
        // change of readiness instead.
        ready.clear_ready();
    }
}
