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

mod http;

use std::{net::SocketAddr, sync::Arc};

use metrics::Label;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    detect::{Detected, Prefixed, detect},
    identity::{SpiffeId, tls::peer_identity},
    policy::{Decision, authorize_tcp},
    state::Shared,
    tcp_forward::{TcpLabels, splice_until},
    telemetry::metrics::INBOUND_DENIED_TOTAL,
};

/// Longest a peer may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who sent the traffic.
#[derive(Debug, Clone)]
pub enum Source {
    /// A mesh proxy that proved this identity with its certificate.
    Mesh(SpiffeId),
    /// A plaintext peer admitted by the port's ingress sources.
    Ingress(SocketAddr),
}

/// Accepts inbound connections until drained. `target` replaces the
/// original destination (for running without iptables).
pub async fn serve(
    listener: TcpListener,
    target: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    crate::serve::accept_loop(listener, drain.clone(), tasks, move |stream, peer| {
        let shared = shared.clone();
        let drain = drain.clone();
        async move {
            if let Err(reason) = handle(stream, peer, target, shared, drain).await {
                tracing::debug!(%peer, %reason, "inbound connection closed");
            }
        }
    })
    .await;
}

/// The application address for a connection to `orig_dst`: the explicit
/// target, else the same port on localhost.
fn app_addr(orig_dst: SocketAddr, target: Option<SocketAddr>) -> SocketAddr {
    target.unwrap_or_else(|| match orig_dst {
        SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], orig_dst.port())),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, orig_dst.port())),
    })
}

async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    target: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) -> Result<(), String> {
    let orig_dst = target
        .or_else(|| crate::orig_dst::original_dst(&stream))
        .ok_or("no original destination")?;
    let port = orig_dst.port();
    let app = app_addr(orig_dst, target);
    let detect_timeout = shared.config().mesh.detect_timeout;
    let (detected, prefix) = detect(&mut stream, detect_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let stream = Prefixed::new(prefix, stream);

    if detected != Detected::Tls {
        let admitted = shared
            .config()
            .inbound
            .get(&port)
            .is_some_and(|p| p.admits_plaintext(peer.ip()));
        if !admitted {
            deny(&shared, port, "plaintext");
            let reason =
                format!("plaintext peer {peer} refused on port {port}: only mesh mTLS is accepted");
            if matches!(detected, Detected::Http1 | Detected::Http2) {
                // An HTTP client (an app outside the mesh, or a meshed one
                // whose proxy passed it through as egress) gets a 403 that
                // says why, instead of a reset it cannot explain.
                let message = format!("osm-proxy: {reason}");
                crate::serve::serve_http(stream, detected == Detected::Http2, drain, move |_req| {
                    let response =
                        crate::http_util::error_response(hyper::StatusCode::FORBIDDEN, &message);
                    async move { response }
                })
                .await;
            }
            return Err(reason);
        }
        admit_connection(&shared, port)?;
        return match detected {
            Detected::Http1 | Detected::Http2 => {
                let http2 = detected == Detected::Http2;
                let ctx = http::InboundContext::new(
                    shared.clone(),
                    Source::Ingress(peer),
                    port,
                    app,
                    http2,
                );
                crate::serve::serve_http(stream, http2, drain, move |req| {
                    http::handle(ctx.clone(), req)
                })
                .await;
                Ok(())
            }
            _ => forward_tcp(&shared, stream, peer, (port, app), None).await,
        };
    }

    let tls = shared.tls().ok_or("no certificate yet: refusing mTLS")?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let tls_stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| "TLS handshake timed out")?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let (_, session) = tls_stream.get_ref();
    let identity = peer_identity(session.peer_certificates()).map_err(|e| e.to_string())?;
    admit_connection(&shared, port)?;
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    match alpn.as_deref() {
        Some(crate::identity::tls::ALPN_H2) | Some(crate::identity::tls::ALPN_HTTP1) => {
            let http2 = alpn.as_deref() == Some(crate::identity::tls::ALPN_H2);
            let ctx =
                http::InboundContext::new(shared.clone(), Source::Mesh(identity), port, app, http2);
            crate::serve::serve_http(tls_stream, http2, drain, move |req| {
                http::handle(ctx.clone(), req)
            })
            .await;
            Ok(())
        }
        _ => {
            let snapshot = shared.config();
            let decision = authorize_tcp(
                snapshot.mesh.permissive,
                port,
                snapshot.inbound.get(&port),
                &identity,
            );
            drop(snapshot);
            match decision {
                Decision::Allow(_) => {
                    forward_tcp(&shared, tls_stream, peer, (port, app), Some(&identity)).await
                }
                Decision::Deny(reason) => {
                    deny(&shared, port, "tcp");
                    Err(format!("denied: {reason}"))
                }
            }
        }
    }
}

/// Whether the port's connection rate limit admits one more connection.
fn admit_connection(shared: &Shared, port: u16) -> Result<(), String> {
    let admitted = shared
        .config()
        .inbound
        .get(&port)
        .is_none_or(|p| p.limits.admits_connection());
    if admitted {
        Ok(())
    } else {
        deny(shared, port, "connection-rate-limited");
        Err(format!("connection rate limit of port {port} reached"))
    }
}

fn deny(shared: &Shared, port: u16, kind: &'static str) {
    shared
        .metrics
        .counter(
            INBOUND_DENIED_TOTAL,
            vec![
                Label::new("port", port.to_string()),
                Label::new("kind", kind),
            ],
        )
        .increment(1);
}

/// Whether the current config still admits a TCP connection from this
/// source on this port.
fn still_admitted(
    shared: &Shared,
    port: u16,
    peer: SocketAddr,
    identity: Option<&SpiffeId>,
) -> bool {
    let snapshot = shared.config();
    match identity {
        Some(id) => matches!(
            authorize_tcp(
                snapshot.mesh.permissive,
                port,
                snapshot.inbound.get(&port),
                id
            ),
            Decision::Allow(_)
        ),
        None => snapshot
            .inbound
            .get(&port)
            .is_some_and(|p| p.admits_plaintext(peer.ip())),
    }
}

/// Splices a TCP connection to the app for as long as the config admits
/// it: access revoked (a TrafficTarget or IngressBackend removed) closes
/// connections already open, not only new ones.
async fn forward_tcp<S>(
    shared: &Arc<Shared>,
    downstream: S,
    peer: SocketAddr,
    (port, app): (u16, SocketAddr),
    identity: Option<&SpiffeId>,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let timeout = shared.config().mesh.connect_timeout;
    let upstream = crate::upstream::connect(app, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut updates = shared.config_updates();
    let revoked = async {
        while updates.changed().await.is_ok() {
            if !still_admitted(shared, port, peer, identity) {
                deny(shared, port, "revoked");
                return format!("access to port {port} revoked");
            }
        }
        std::future::pending().await
    };
    splice_until(
        shared,
        downstream,
        upstream,
        TcpLabels {
            direction: "inbound",
            downstream: peer,
            upstream: app,
            service: None,
            source_identity: identity.map(SpiffeId::as_str),
        },
        revoked,
    )
    .await;
    Ok(())
}
