//! The inbound side (15003): connections to this pod's application.
//!
//! ```text
//! accept -> original destination port
//!        -> TLS? -- yes -> mTLS handshake (client cert required, chain checked
//!        |                 against the trust bundle) -> peer SPIFFE ID
//!        |                 -> ALPN: h2 | http/1.1 -> per-request authorization
//!        |                                           -> 403 | app on localhost
//!        |                          osm/tcp     -> connection authorization
//!        |                                           -> close | splice to app
//!        -- no --> plaintext peer in the port's ingress sources? else HTTP 403 | close
//! ```

mod admit;
mod app_addr;
mod http;

pub use admit::{Admission, Peer, Served, admit, still_admitted};
pub use app_addr::{PodPorts, app_addr, parse_declared};

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_util::{either::Either, sync::CancellationToken, task::TaskTracker};

use crate::{
    connection::ConnectionError,
    detect::{Detected, Prefixed, detect},
    identity::{SpiffeId, tls::peer_identity},
    state::Shared,
    tcp_forward::{TcpLabels, splice_until},
};

/// Longest a peer may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest a refused HTTP client is answered on its connection.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Who sent the traffic.
#[derive(Debug, Clone)]
pub enum Source {
    /// A mesh proxy that proved this identity with its certificate.
    Mesh(SpiffeId),
    /// A plaintext peer admitted by the port's ingress sources.
    Ingress(SocketAddr),
}

/// Accepts inbound connections until drained. `target` replaces the
/// original destination (for running without iptables); otherwise the
/// application is reached as [`app_addr`] decides.
pub async fn serve(
    listener: TcpListener,
    target: Option<SocketAddr>,
    pod_ports: Arc<PodPorts>,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    let state = (shared, drain, tasks);
    crate::serve::accept_intercepted(
        listener,
        target,
        "inbound",
        state,
        move |stream, peer, orig_dst, shared, drain| {
            // Decided before the task: the destination is known at accept.
            let on_pod_ip = shared.config().mesh.app_on_pod_ip;
            let to = match (target, orig_dst) {
                (Some(target), _) => {
                    Ok(Destination::fixed(orig_dst.map_or(0, |d| d.port()), target))
                }
                (None, Some(orig_dst)) => app_addr(orig_dst, &pod_ports, on_pod_ip)
                    .map(|app| Destination {
                        port: orig_dst.port(),
                        app,
                        on_pod_ip,
                        // Where a MeshConfig localProxyMode change sends
                        // the next request on this connection.
                        app_in_other_mode: app_addr(orig_dst, &pod_ports, !on_pod_ip)
                            .ok()
                            .filter(|other| *other != app),
                    })
                    .map_err(|refusal| ConnectionError::from(refusal.record(&shared.metrics))),
                (None, None) => Err(ConnectionError::NoOriginalDestination),
            };
            // The connection's future itself (not an async block around
            // it, which would hold its arguments a second time).
            match to {
                Ok(to) => Either::Left(handle(stream, peer, to, shared, drain)),
                Err(refused) => Either::Right(std::future::ready(Err(refused))),
            }
        },
    )
    .await;
}

/// Where an inbound connection was going: the pod port the peer
/// addressed, and the application address that port is served at.
#[derive(Debug, Clone, Copy)]
pub struct Destination {
    pub port: u16,
    /// Where the application is, under the MeshConfig
    /// `sidecar.localProxyMode` of the connection's start (`on_pod_ip`).
    pub app: SocketAddr,
    pub on_pod_ip: bool,
    /// Where it is under the other mode, when that differs: an HTTP
    /// connection kept alive follows a mode change at its next request.
    pub app_in_other_mode: Option<SocketAddr>,
}

impl Destination {
    /// The application at `app` whatever the mode (an explicit target).
    pub fn fixed(port: u16, app: SocketAddr) -> Self {
        Self {
            port,
            app,
            on_pod_ip: false,
            app_in_other_mode: None,
        }
    }
}

/// Serves one inbound connection: detect, admit, then HTTP or a splice.
/// Generic over the stream so tests drive whole connections in memory.
pub async fn handle<S>(
    mut stream: S,
    peer: SocketAddr,
    to: Destination,
    shared: Arc<Shared>,
    drain: CancellationToken,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The config as the connection found it, read once; only revocation
    // of a spliced connection looks at newer ones.
    let snapshot = arc_swap::Guard::into_inner(shared.config());
    let (detected, prefix) = detect(&mut stream, snapshot.mesh.detect_timeout)
        .await
        .map_err(ConnectionError::Detect)?;
    let stream = Prefixed::new(prefix, stream);

    let connect_timeout = snapshot.mesh.connect_timeout;
    let admission = admit(&snapshot, to.port, Peer::Plaintext(peer), detected);
    // Both ways end in one `serve_admitted` over either stream: one copy of
    // the serving code, and a task the size of the larger way, not of both.
    // The TLS stream (rustls' state: 1.2 KB) is boxed: passed by value, it
    // was held again by every async layer it went through (3.5 KB more per
    // connection for as long as it lives).
    let (identity, alpn);
    let (admission, stream, conn) = if admission != Admission::Handshake {
        drop(snapshot);
        // An HTTP client (an app outside the mesh, or a meshed one whose
        // proxy passed it through as egress) is told why it is refused.
        let answer_http = matches!(detected, Detected::Http1 | Detected::Http2)
            .then_some(detected == Detected::Http2);
        let conn = Connection {
            peer,
            to,
            admitted: Peer::Plaintext(peer),
            source: Source::Ingress(peer),
            connect_timeout,
            answer_http,
        };
        (admission, Either::Left(stream), conn)
    } else {
        let tls = shared.tls().ok_or(ConnectionError::NoCertificate)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        let tls_stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .map_err(|_| ConnectionError::HandshakeTimeout)?
            .map_err(ConnectionError::Handshake)?;
        let (_, session) = tls_stream.get_ref();
        identity = peer_identity(session.peer_certificates())?;
        alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let mesh_peer = Peer::Mesh {
            identity: &identity,
            alpn: alpn.as_deref(),
        };
        let admission = admit(&snapshot, to.port, mesh_peer, Detected::Tls);
        drop(snapshot);
        let conn = Connection {
            peer,
            to,
            admitted: mesh_peer,
            source: Source::Mesh(identity.clone()),
            connect_timeout,
            answer_http: None,
        };
        (admission, Either::Right(Box::new(tls_stream)), conn)
    };
    serve_admitted(admission, stream, conn, shared, drain).await
}

/// An admitted (or refused) connection's particulars.
struct Connection<'a> {
    peer: SocketAddr,
    to: Destination,
    /// Who was admitted, to ask again on a config change.
    admitted: Peer<'a>,
    source: Source,
    connect_timeout: std::time::Duration,
    /// Some(http2) when a refusal is answered over HTTP.
    answer_http: Option<bool>,
}

/// Carries out an admission on a connection whose peer is known.
async fn serve_admitted<S>(
    admission: Admission,
    stream: S,
    conn: Connection<'_>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match admission {
        Admission::Http(served) => {
            let ctx = http::InboundContext::new(shared.clone(), conn.source, conn.to, served);
            crate::serve::serve_http(stream, served.http2, drain, move |req| {
                http::handle(ctx.clone(), req)
            })
            .await;
            Ok(())
        }
        Admission::Tcp { .. } => Box::pin(forward_tcp(&shared, stream, &conn)).await,
        Admission::Refuse(refusal) => {
            let refusal = refusal.record(&shared.metrics);
            if let Some(http2) = conn.answer_http {
                // Boxed: the rare way pays for its size, not every
                // connection's task.
                let _ = Box::pin(tell_refused(stream, http2, &refusal, &shared, drain)).await;
            }
            Err(refusal.into())
        }
        // Asked only of a plaintext peer speaking TLS, handled above.
        Admission::Handshake => Err(ConnectionError::NoCertificate),
    }
}

/// Answers a refused HTTP client with why, then lets go: a refused client
/// is not kept (HTTP/1 closes after the answer; any connection at most
/// REFUSAL_LINGER, so slow or chatty strangers cost nothing).
fn tell_refused<S>(
    stream: S,
    http2: bool,
    refusal: &crate::refusal::Refusal,
    shared: &Arc<Shared>,
    drain: CancellationToken,
) -> tokio::time::Timeout<impl std::future::Future<Output = ()>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let answer = refusal.clone();
    let plaintext_client = match refusal {
        crate::refusal::Refusal::Plaintext { peer, .. } => Some(peer.ip()),
        _ => None,
    };
    let shared = shared.clone();
    let told = crate::serve::serve_http(stream, http2, drain, move |_req| {
        let mut response = answer.response();
        if let Some(client) = plaintext_client {
            let code = response.status().as_u16();
            shared.metrics.record_plaintext_refused(client, code);
        }
        if !http2 {
            response.headers_mut().insert(
                ::http::header::CONNECTION,
                ::http::HeaderValue::from_static("close"),
            );
        }
        async move { response }
    });
    tokio::time::timeout(REFUSAL_LINGER, told)
}

/// Splices a TCP connection to the app for as long as the config admits
/// it: access revoked (a TrafficTarget or IngressBackend removed) closes
/// connections already open, not only new ones.
async fn forward_tcp<S>(
    shared: &Arc<Shared>,
    downstream: S,
    conn: &Connection<'_>,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Connection {
        peer, to, admitted, ..
    } = *conn;
    let upstream = crate::upstream::connect_from(
        to.app,
        crate::upstream::app_source(to.app),
        conn.connect_timeout,
    )
    .await?;
    let mut updates = shared.config_updates();
    let revoked = async {
        while updates.changed().await.is_ok() {
            if let Err(refusal) = still_admitted(&shared.config(), to.port, admitted) {
                return refusal.record(&shared.metrics).to_string();
            }
        }
        std::future::pending().await
    };
    let source_identity = match admitted {
        Peer::Mesh { identity, .. } => Some(identity.as_str()),
        Peer::Plaintext(_) => None,
    };
    splice_until(
        shared,
        downstream,
        upstream,
        TcpLabels {
            direction: "inbound",
            downstream: peer,
            upstream: to.app,
            service: None,
            source_identity,
        },
        revoked,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests;
