//! Serving HTTP on an accepted connection, and forwarding one request
//! through a pooled client. Shared by inbound and outbound.

use std::{convert::Infallible, error::Error as StdError, future::Future, net::SocketAddr};

use http::{Request, Response, StatusCode};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::{
    http_util::{ProxyBody, absolute_uri, authority, is_upgrade, strip_hop_by_hop},
    upstream::{ConnectError, HttpClient},
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
pub async fn serve_http<I, F, Fut>(io: I, http2: bool, drain: CancellationToken, handler: F)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let service = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let io = TokioIo::new(io);
    let result = if http2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        drive_until_drained!(builder.serve_connection(io, service), drain)
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new());
        drive_until_drained!(builder.serve_connection(io, service).with_upgrades(), drain)
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// Why a request could not be forwarded; mapped to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the request has no valid authority")]
    BadAuthority,
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Timeout(String),
}

impl ForwardError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadAuthority => StatusCode::BAD_REQUEST,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> ForwardError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(connect) = err.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Timeout { .. } => ForwardError::Timeout(connect.to_string()),
                other => ForwardError::Upstream(other.to_string()),
            };
        }
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    ForwardError::Upstream(format!("upstream request failed: {message}"))
}

/// Sends `req` through `client` and returns the upstream's response. An
/// HTTP/1 upgrade (WebSocket) is spliced once both sides have switched.
/// The request is sent at most once.
pub async fn forward(
    client: &HttpClient,
    mut req: Request<Incoming>,
    fallback_authority: SocketAddr,
) -> Result<Response<Incoming>, ForwardError> {
    let upgrade = is_upgrade(&req);
    let uri = absolute_uri(req.uri(), authority(&req), fallback_authority)
        .ok_or(ForwardError::BadAuthority)?;
    *req.uri_mut() = uri;
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut response = client.request(req).await.map_err(classify)?;
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(response.headers_mut(), switching);
    if let (true, Some(downstream)) = (switching, downstream) {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let mut down = TokioIo::new(down);
                    let mut up = TokioIo::new(up);
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
    }
    Ok(response)
}
