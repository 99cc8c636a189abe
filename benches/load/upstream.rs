//! The mock upstream of the `upstream-*` presets: a Hacker News API double on loopback that
//! answers `GET /item/{id}.json` with a canned story (the id echoed) over keep-alive HTTP/1.1.
//!
//! In-process, so every target calls the same upstream at the same cost and nothing leaves the
//! machine; on a thread of its own with a single-threaded runtime, so its work is never queued
//! behind the virtual users' tasks (it still shares the machine's cores with everything else).

use std::convert::Infallible;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::http::Res;

/// A running mock; stopped (its thread joined) when dropped.
pub struct MockUpstream {
    /// `http://127.0.0.1:<port>`: the base URL the targets are pointed at.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// Listens on `port` of 127.0.0.1 (0: any free port) and serves until dropped.
    pub fn start(port: u16) -> Res<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("mock-upstream".to_owned())
            .spawn(move || runtime.block_on(serve(listener, stopped)))?;
        Ok(Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until told to stop; each connection is served on a task of its own. Dropping the
/// runtime afterwards ends the connections still open.
async fn serve(listener: std::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("mock upstream: cannot listen: {err}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // A reply is one small write; Nagle would hold it behind a delayed ACK.
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service = service_fn(answer);
                        // A connection ends when its client closes it; nothing to report.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of descriptors or the like: back off instead of spinning on accept.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

/// `GET /item/{id}.json` → the story with that id, as the real API answers it; anything else
/// 404 (with `null`, as the real API does for an unknown item).
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = request
        .uri()
        .path()
        .strip_prefix("/item/")
        .and_then(|rest| rest.strip_suffix(".json"))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    let (status, body) = match id {
        Some(id) => (StatusCode::OK, story(id)),
        None => (StatusCode::NOT_FOUND, "null".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(response)
}

/// Item 8863 of the real API (Dropbox's launch post, 420 bytes) under the asked-for id.
fn story(id: &str) -> String {
    format!(
        r#"{{"by":"dhouston","descendants":71,"id":{id},"kids":[8952,9224,8917,8884,8887,8943,8869,8958,9005,9671,8940,9067,8908,9055,8865,8881,8872,8873,8955,10403,8903,8928,9125,8998,8901,8902,8907,8894,8878,8870,8980,8934,8876],"score":111,"time":1175714200,"title":"My YC app: Dropbox - Throw away your USB drive","type":"story","url":"http://www.getdropbox.com/u/2/screencast.html"}}"#
    )
}
