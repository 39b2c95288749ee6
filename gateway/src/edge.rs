//! The network edge (API.md, Limits; invariant 13): what a connection may cost before anyone
//! knows who it is. `axum::serve` runs hyper without a timer, so a client trickling its headers
//! kept its connection as long as it liked; here each connection is served by hyper with the
//! header deadline, counted against a cap per client address and a cap in all (refused past
//! them with a 503 and `Retry-After`), and each request's body must arrive by its deadline.
//! None of these is a rate limit: they hold with `JONO_RATE_LIMITS=off` too.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::client::TrustedProxies;
use crate::error::Problem;
use crate::state::AppState;

/// The edge's limits, each configurable (`jono serve --help`).
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// A request's headers must arrive within this (API.md: 30 s).
    pub header_deadline: Duration,
    /// A request's body must arrive within this of its headers (API.md: 60 s).
    pub body_deadline: Duration,
    /// Open connections from one client address (API.md: 1,000).
    pub connections_per_address: usize,
    /// Open connections in all (API.md: 50,000).
    pub connections: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            header_deadline: Duration::from_secs(30),
            body_deadline: Duration::from_secs(60),
            connections_per_address: 1_000,
            connections: 50_000,
        }
    }
}

/// Open connections, in all and per peer address.
struct Connections {
    limits: EdgeLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    connections: Arc<Connections>,
    address: Option<IpAddr>,
}

impl Connections {
    /// Admits a connection from `peer`, or says no. A trusted proxy's connections carry many
    /// clients, so they count only towards the cap in all.
    fn admit(self: &Arc<Self>, peer: IpAddr, per_address: bool) -> Option<Slot> {
        let Ok(mut open) = self.open.lock() else {
            return None;
        };
        let (total, by_address) = &mut *open;
        if *total >= self.limits.connections {
            return None;
        }
        if per_address {
            let count = by_address.entry(peer).or_insert(0);
            if *count >= self.limits.connections_per_address {
                return None;
            }
            *count += 1;
        }
        *total += 1;
        Some(Slot {
            connections: self.clone(),
            address: per_address.then_some(peer),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Ok(mut open) = self.connections.open.lock() else {
            return;
        };
        let (total, by_address) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(address) = self.address {
            if let Some(count) = by_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    by_address.remove(&address);
                }
            }
        }
    }
}

/// Refusals being written at once; past this a refused connection is just closed.
const REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refusal may take to write and see the client go.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish its request in flight, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    trusted: TrustedProxies,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Connections {
        limits: limits.clone(),
        open: Mutex::new((0, HashMap::new())),
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    // Dropped by the accept loop at shutdown: every connection then finishes gracefully. Each
    // connection holds a receiver of `done`, so `done_tx.closed()` says when all have ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let per_address = !trusted.trusts(peer.ip());
        let Some(slot) = connections.admit(peer.ip(), per_address) else {
            tracing::debug!(%peer, "connection refused at the cap");
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream)).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        let header_deadline = limits.header_deadline;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                let router = router.clone();
                async move { router.oneshot(request.map(Body::new)).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_deadline)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%peer, %error, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// A connection past a cap gets a 503 problem with `Retry-After`, not a reset: whatever it
/// already sent is read and dropped so the answer is not lost to an RST.
async fn refuse(mut stream: TcpStream) {
    let body = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many open connections; try again later".to_owned(),
    )
    .to_json();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    while let Ok(read) = stream.read(&mut sink).await {
        if read == 0 {
            break;
        }
    }
}

/// The body deadline, as a middleware: the request's body must have arrived by then, or
/// reading it fails with [`BodyDeadline`] (answered 408 by the extractors).
pub async fn body_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + state.settings.edge.body_deadline;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        })
    });
    next.run(request).await
}

/// Reading a request body took longer than the body deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyDeadline;

/// Whether `error` (from reading a body) is the deadline's.
pub fn is_body_deadline(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyDeadline>() {
            return true;
        }
        current = error.source();
    }
    false
}

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyDeadline)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
