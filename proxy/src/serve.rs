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

use crate::{
    connection::ConnectionError,
    state::Shared,
    telemetry::access_log::{TcpEntry, Timestamp},
};

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
            shared.clone(),
            Accepted::now(peer, orig_dst, side),
        )
    })
    .await;
}

/// An intercepted connection as it was accepted.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub peer: SocketAddr,
    /// Where it was going (its original destination), when known.
    pub orig_dst: Option<SocketAddr>,
    /// "inbound" or "outbound".
    pub side: &'static str,
    pub at: Timestamp,
}

impl Accepted {
    pub fn now(peer: SocketAddr, orig_dst: Option<SocketAddr>, side: &'static str) -> Self {
        Self {
            peer,
            orig_dst,
            side,
            at: Timestamp::now(),
        }
    }
}

/// An intercepted connection's task: `served`, then why it ended, logged
/// once, and a line in the access log when it ended early (refused, or
/// failed before any byte went anywhere: a connection that carried requests
/// or bytes has its lines already). `map`, not `async move { served.await
/// }`: an async block holds the future it awaits twice (as what it
/// captured and as what it polls), and this one is the whole connection.
pub fn logged<Fut>(served: Fut, shared: Arc<Shared>, accepted: Accepted) -> impl Future<Output = ()>
where
    Fut: Future<Output = Result<(), ConnectionError>>,
{
    served.map(move |served| {
        if let Err(reason) = served {
            let Accepted { peer, side, .. } = accepted;
            tracing::debug!(%peer, %reason, "{side} connection closed");
            if shared.access_log.enabled() {
                shared.access_log.log(&ended_early(&accepted, &reason));
            }
        }
    })
}

/// The access-log line of a connection that ended early: Envoy's response
/// flag for why, and the reason as its error.
pub fn ended_early(accepted: &Accepted, reason: &ConnectionError) -> TcpEntry<'static> {
    TcpEntry {
        response_flags: reason.response_flag(),
        timestamp: accepted.at,
        direction: reason.direction(accepted.side),
        protocol: "tcp",
        downstream: accepted.peer.to_string(),
        upstream_service: None,
        upstream_host: accepted.orig_dst.map(|d| d.to_string()),
        source_identity: None,
        bytes_sent: 0,
        bytes_received: 0,
        duration_ms: accepted
            .at
            .0
            .elapsed()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        error: Some(reason.to_string()),
    }
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
        let accepted = Accepted::now("10.0.0.1:1".parse().expect("addr"), None, "inbound");
        let shared = crate::test_support::shared_with("{}");
        let task = logged(served, shared, accepted);
        let wrapped = std::mem::size_of_val(&task);
        assert!(alone >= 4096, "{alone}");
        // What the wrapper keeps for the log line (the peer, the original
        // destination, the side, the time, the shared state): far from a
        // second copy of the connection.
        assert!(wrapped <= alone + 160, "{wrapped} bytes around {alone}");
    }

    #[tokio::test]
    async fn a_connection_that_ended_early_has_an_access_log_line() {
        use crate::refusal::{Layer, Refusal};
        let (shared, written) = crate::test_support::shared_logging_with("{}");
        let accepted = Accepted::now(
            "10.0.0.7:40000".parse().expect("addr"),
            Some("10.96.0.10:80".parse().expect("addr")),
            "outbound",
        );
        let refused = ConnectionError::from(Refusal::NoRoute {
            layer: Layer::Tcp,
            target: Some("10.96.0.10:80".into()),
            egress: false,
        });
        let reason = refused.to_string();
        logged(std::future::ready(Err(refused)), shared.clone(), accepted).await;
        // One that ended well has had its lines (requests, a splice).
        logged(std::future::ready(Ok(())), shared.clone(), accepted).await;
        shared.access_log.flush();
        let lines = written.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(line["response_flags"], "NR");
        assert_eq!(line["timestamp"], accepted.at.to_string());
        assert_eq!(line["direction"], "outbound");
        assert_eq!(line["protocol"], "tcp");
        assert_eq!(line["downstream"], "10.0.0.7:40000");
        assert_eq!(line["upstream_host"], "10.96.0.10:80");
        assert_eq!(line["bytes_sent"], 0);
        assert_eq!(line["bytes_received"], 0);
        assert_eq!(line["error"], reason.as_str());
        assert!(reason.contains("egress is disabled"), "{reason}");
    }
}
