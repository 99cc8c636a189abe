//! Noticing that a client has gone. actix-web learns of a closed connection only when a write
//! to it fails (actix/actix-web#1313), which for an idle SSE stream is the second keep-alive
//! after the close. Each connection's socket is remembered when it is accepted, and a stream
//! that must end with its client asks its worker thread's [`Watcher`] — one epoll instance per
//! thread, registered with tokio — to report the socket's read-closed readiness (EPOLLRDHUP),
//! so a close is seen as soon as the peer's FIN arrives.
//!
//! One epoll per thread, not a duplicate descriptor per stream: a duplicate doubled the
//! descriptors of every SSE session (a 20,000-file limit then held under 10,000 sessions) and
//! cost a reactor registration each.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::HttpRequest;
use futures::future::{self, Either};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;

/// The raw descriptor of a connection's socket, stored in its connection data.
#[derive(Debug, Clone, Copy)]
struct ConnectionSocket(RawFd);

/// `HttpServer::on_connect` hook: remembers each TCP connection's descriptor.
pub fn remember_socket(connection: &dyn std::any::Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        data.insert(ConnectionSocket(stream.as_raw_fd()));
    }
}

/// Resolves once the client of `request` has closed its connection, watching from `after` on
/// (so requests answered sooner cost nothing). Where the socket cannot be watched it never
/// resolves, and a failed write ends the response instead. One watch per connection at a
/// time (a connection carries one response at a time).
pub fn client_gone(request: &HttpRequest, after: Duration) -> impl Future<Output = ()> + 'static {
    let socket = request.conn_data::<ConnectionSocket>().copied();
    async move {
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
        match socket.and_then(|socket| Watcher::current()?.watch(socket.0)) {
            Some((guard, closed)) => Either::Left(async move {
                let _guard = guard;
                if closed.await.is_err() {
                    future::pending::<()>().await;
                }
            }),
            None => Either::Right(future::pending()),
        }
        .await
    }
}

/// A worker thread's epoll instance for hang-ups, and who waits for which socket.
struct Watcher {
    epoll: AsyncFd<OwnedFd>,
    waiting: RefCell<HashMap<u64, oneshot::Sender<()>>>,
    next_token: Cell<u64>,
}

thread_local! {
    static WATCHER: RefCell<Option<Rc<Watcher>>> = const { RefCell::new(None) };
}

/// Takes a waiter off the list when its watch is dropped unanswered. Its epoll registration
/// stays (one-shot, disarmed or not) until the socket closes — the kernel then removes it — or
/// the next watch of the same connection re-arms it under a new token.
struct Waiting {
    watcher: Rc<Watcher>,
    token: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.watcher.waiting.borrow_mut().remove(&self.token);
    }
}

/// Events taken from the epoll instance at once.
const BATCH: usize = 64;

impl Watcher {
    /// This thread's watcher, started on first use; `None` where epoll is unavailable.
    fn current() -> Option<Rc<Watcher>> {
        WATCHER.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                let watcher = Rc::new(Watcher::new()?);
                actix_rt::spawn(deliver(watcher.clone()));
                *slot = Some(watcher);
            }
            slot.clone()
        })
    }

    fn new() -> Option<Watcher> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            tracing::warn!(
                err = %std::io::Error::last_os_error(),
                "no epoll for hang-up watching; closed SSE streams are noticed at the next keep-alive"
            );
            return None;
        }
        // SAFETY: `fd` was just created above and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `OwnedFd` keeps the descriptor open and unchanged until it is dropped, which
        // happens with the `AsyncFd`.
        let epoll = unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) }.ok()?;
        Some(Watcher {
            epoll,
            waiting: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
        })
    }

    /// Arms a one-shot read-closed watch of `socket`; resolves the receiver when it fires.
    fn watch(self: Rc<Self>, socket: RawFd) -> Option<(Waiting, oneshot::Receiver<()>)> {
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        let mut event = libc::epoll_event {
            events: (libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        let epoll = self.epoll.as_raw_fd();
        // SAFETY: `socket` is the descriptor of the connection this request arrived on, open
        // while its handler or response body runs (which is when this is called), and `event`
        // is a valid epoll_event. epoll_ctl keeps no pointer to it.
        let added = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, socket, &mut event) };
        if added < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EEXIST) {
                tracing::debug!(%err, "cannot watch a connection for hang-ups");
                return None;
            }
            // SAFETY: as above; the connection's earlier (finished) watch is re-armed.
            let modified =
                unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_MOD, socket, &mut event) };
            if modified < 0 {
                return None;
            }
        }
        let (closed, receiver) = oneshot::channel();
        self.waiting.borrow_mut().insert(token, closed);
        Some((
            Waiting {
                watcher: self,
                token,
            },
            receiver,
        ))
    }
}

/// Runs for the life of the worker thread: tells each waiter whose socket closed.
async fn deliver(watcher: Rc<Watcher>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
    loop {
        let Ok(mut ready) = watcher.epoll.readable().await else {
            return;
        };
        // SAFETY: `events` holds BATCH entries for the kernel to fill; a zero timeout never
        // blocks the thread.
        let found = unsafe {
            libc::epoll_wait(
                watcher.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                BATCH as libc::c_int,
                0,
            )
        };
        let Ok(found) = usize::try_from(found) else {
            ready.clear_ready();
            continue;
        };
        let mut waiting = watcher.waiting.borrow_mut();
        for event in &events[..found] {
            let token = event.u64;
            if let Some(closed) = waiting.remove(&token) {
                let _ = closed.send(());
            }
        }
        if found < BATCH {
            ready.clear_ready();
        }
    }
}
