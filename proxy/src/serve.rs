//! Serving accepted connections: the accept loop and HTTP (1.1 with
//! upgrades, or 2) on one connection until the client closes or the proxy
//! drains. Shared by inbound, outbound, probes and admin.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use futures_util::FutureExt as _;
use http::{Request, Response};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::{connection::ConnectionError, state::Shared};

/// Accepts connections until drained, running `handle` for each in its own
/// task tracked for the drain.
pub async fn accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    drain: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    handle: F,
) where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = drain.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tasks.spawn(handle(stream, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Accepts intercepted connections until drained: each one's original
/// destination (`explicit` replaces it when running without iptables) is
/// read, `handle` serves it in its own task, and why it ended is logged
/// once, for the `side` ("inbound", "outbound") it came in on.
pub async fn accept_intercepted<F, Fut>(
    listener: tokio::net::TcpListener,
    explicit: Option<SocketAddr>,
    side: &'static str,
    (shared, drain, tasks): (
        Arc<Shared>,
        CancellationToken,
        tokio_util::task::TaskTracker,
    ),
    handle: F,
) where
    F: Fn(
            tokio::net::TcpStream,
            SocketAddr,
            Option<SocketAddr>,
            Arc<Shared>,
            CancellationToken,
        ) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<(), ConnectionError>> + Send + 'static,
{
    let handle = Arc::new(handle);
    accept_loop(listener, drain.clone(), tasks, move |stream, peer| {
        let orig_dst = explicit.or_else(|| crate::orig_dst::original_dst(&stream));
        logged(
            handle(stream, peer, orig_dst, shared.clone(), drain.clone()),
            peer,
            side,
        )
    })
    .await;
}

/// An intercepted connection's task: `served`, then why it ended, logged
/// once. `map`, not `async move { served.await }`: an async block holds the
/// future it awaits twice (as what it captured and as what it polls), and
/// this one is the whole connection.
pub fn logged<Fut>(served: Fut, peer: SocketAddr, side: &'static str) -> impl Future<Output = ()>
where
    Fut: Future<Output = Result<(), ConnectionError>>,
{
    served.map(move |served| {
        if let Err(reason) = served {
            tracing::debug!(%peer, %reason, "{side} connection closed");
        }
    })
}

/// Drives a hyper server connection; on drain, asks it to finish in-flight
/// requests and close (http1 upgradeable and http2 connections share no
/// trait for this, hence a macro).
macro_rules! drive_until_drained {
    ($conn:expr, $drain:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = $drain.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}

/// Serves HTTP/1.1 (with upgrades) or HTTP/2 on `io` until the client
/// closes; on drain, finishes in-flight requests and closes gracefully.
pub async fn serve_http<I, F, Fut, B>(io: I, http2: bool, drain: CancellationToken, handler: F)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let io = TokioIo::new(io);
    let result = if http2 {
        // Boxed: an HTTP/2 connection's state (h2's codec and streams) is
        // three times HTTP/1.1's, and most connections are HTTP/1.1.
        Box::pin(async move {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.timer(TokioTimer::new());
            drive_until_drained!(builder.serve_connection(io, service), drain)
        })
        .await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new());
        drive_until_drained!(builder.serve_connection(io, service).with_upgrades(), drain)
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's future of `N` bytes, ready after one wait.
    async fn connection<const N: usize>() -> Result<(), ConnectionError> {
        let state = [1u8; N];
        tokio::task::yield_now().await;
        std::hint::black_box(state);
        Ok(())
    }

    #[test]
    fn the_logging_wrapper_holds_the_connection_once() {
        let served = connection::<4096>();
        let alone = std::mem::size_of_val(&served);
        let task = logged(served, "10.0.0.1:1".parse().expect("addr"), "inbound");
        let wrapped = std::mem::size_of_val(&task);
        assert!(alone >= 4096, "{alone}");
        assert!(wrapped <= alone + 64, "{wrapped} bytes around {alone}");
    }
}
