//! The outbound side (15001): connections from this pod's application.
//!
//! ```text
//! accept -> original destination -> mesh service (VIP:port)?
//!   yes: protocol from config, else detected
//!        HTTP -> per request: A/B match -> split weights -> endpoint (P2C over
//!                EWMA) -> pooled mTLS client (identity checked) -> response
//!        TCP  -> per connection: split -> endpoint -> mTLS (osm/tcp) -> splice
//!   no:  egress allowed -> plaintext passthrough to the original destination
//!        else HTTP -> 403 per request (or Host routing without interception);
//!             TCP  -> closed
//! ```

mod http;

use std::{net::SocketAddr, sync::Arc};

use metrics::Label;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::{OutboundService, Protocol},
    detect::{Detected, Prefixed, detect},
    routing::{choose_backend, choose_endpoint, service_by_addr},
    state::Shared,
    tcp_forward::{TcpLabels, splice, splice_until},
    telemetry::metrics::OUTBOUND_REFUSED_TOTAL,
};

/// How long a client without a known destination may stay silent.
const IDLE_CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Accepts outbound connections until drained. `orig_dst` replaces the
/// original destination (for running without iptables).
pub async fn serve(
    listener: TcpListener,
    orig_dst: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    crate::serve::accept_loop(listener, drain.clone(), tasks, move |stream, peer| {
        let shared = shared.clone();
        let drain = drain.clone();
        async move {
            if let Err(reason) = handle(stream, peer, orig_dst, shared, drain).await {
                tracing::debug!(%peer, %reason, "outbound connection closed");
            }
        }
    })
    .await;
}

async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    orig_dst: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) -> Result<(), String> {
    let orig_dst = orig_dst.or_else(|| crate::orig_dst::original_dst(&stream));
    let snapshot = shared.config();
    let service = orig_dst
        .and_then(|a| service_by_addr(&snapshot, a))
        .cloned();
    let (egress, detect_timeout) = (snapshot.mesh.egress, snapshot.mesh.detect_timeout);
    drop(snapshot);

    // The protocol the config names for the service; None: detect it.
    let configured = match service.as_ref().map(|s| s.protocol) {
        Some(Protocol::Http1) => Some(Detected::Http1),
        Some(Protocol::Http2 | Protocol::Grpc) => Some(Detected::Http2),
        Some(Protocol::Tcp | Protocol::TcpServerFirst) => Some(Detected::Opaque),
        Some(Protocol::Detect) => None,
        None => match orig_dst {
            // Not a mesh service: with egress, pass through untouched.
            Some(dst) if egress => {
                return passthrough(&shared, stream, peer, dst, move |shared: &Shared| {
                    let snapshot = shared.config();
                    snapshot.mesh.egress && service_by_addr(&snapshot, dst).is_none()
                })
                .await;
            }
            _ => None,
        },
    };
    let (detected, stream) = match configured {
        Some(d) => (d, Prefixed::new(bytes::Bytes::new(), stream)),
        None => {
            // Without a destination there is nothing to forward opaque TCP
            // to, so a client that connects early and sends later (a
            // pre-connecting HTTP pool) is waited for, not given up on.
            let timeout = if orig_dst.is_some() {
                detect_timeout
            } else {
                IDLE_CLIENT_TIMEOUT
            };
            let (d, prefix) = detect(&mut stream, timeout)
                .await
                .map_err(|e| e.to_string())?;
            (d, Prefixed::new(prefix, stream))
        }
    };

    match (detected, service) {
        (Detected::Http1 | Detected::Http2, _) => {
            let ctx = http::OutboundContext::new(shared, orig_dst);
            crate::serve::serve_http(stream, detected == Detected::Http2, drain, move |req| {
                http::handle(ctx.clone(), req)
            })
            .await;
            Ok(())
        }
        (_, Some(service)) => forward_tcp(&shared, stream, peer, &service).await,
        (_, None) => {
            if let Some(dst) = orig_dst {
                let (prefix, mut inner) = stream.into_parts();
                let prefix = if detected == Detected::Tls {
                    crate::tls_sni::read_first_record(&mut inner, prefix, detect_timeout)
                        .await
                        .map_err(|e| e.to_string())?
                } else {
                    prefix
                };
                if egress_allows(&shared, detected, &prefix, dst) {
                    let first = prefix.clone();
                    let still_allowed = move |shared: &Shared| {
                        service_by_addr(&shared.config(), dst).is_none()
                            && egress_allows(shared, detected, &first, dst)
                    };
                    return passthrough(
                        &shared,
                        Prefixed::new(prefix, inner),
                        peer,
                        dst,
                        still_allowed,
                    )
                    .await;
                }
            }
            refused(&shared, "tcp", "no-route");
            Err(format!(
                "no mesh service at {} and egress is disabled",
                orig_dst.map_or_else(|| "an unknown destination".to_string(), |d| d.to_string())
            ))
        }
    }
}

pub(crate) fn refused(shared: &Shared, kind: &'static str, reason: &'static str) {
    shared
        .metrics
        .counter(
            OUTBOUND_REFUSED_TOTAL,
            vec![Label::new("kind", kind), Label::new("reason", reason)],
        )
        .increment(1);
}

async fn forward_tcp(
    shared: &Arc<Shared>,
    downstream: Prefixed<TcpStream>,
    peer: SocketAddr,
    service: &OutboundService,
) -> Result<(), String> {
    let set = choose_backend(service, None, fastrand::u64(..));
    let Some(endpoint) = choose_endpoint(set) else {
        refused(shared, "tcp", "no-endpoints");
        return Err(format!("{} has no endpoints", set.key));
    };
    let upstream = endpoint.connect_tcp().await.map_err(|e| e.to_string())?;
    splice(
        shared,
        downstream,
        upstream,
        TcpLabels {
            direction: "outbound",
            downstream: peer,
            upstream: endpoint.addr(),
            service: Some(&service.key),
            source_identity: None,
        },
    )
    .await;
    Ok(())
}

/// Whether an Egress rule admits a connection to `dst`: by its address, or
/// for TLS by the server name in its ClientHello.
fn egress_allows(shared: &Shared, detected: Detected, prefix: &[u8], dst: SocketAddr) -> bool {
    let snapshot = shared.config();
    let rules = &snapshot.egress;
    if crate::routing::egress::allows_address(rules, dst).is_some() {
        return true;
    }
    detected == Detected::Tls
        && crate::tls_sni::server_name(prefix).is_some_and(|sni| {
            crate::routing::egress::allows_tls(rules, &sni, dst.port()).is_some()
        })
}

/// Splices a connection to a destination outside the mesh for as long as
/// the config allows it: a config that stops allowing it (egress turned
/// off, or the destination became a mesh service, which must be reached
/// over mTLS) closes it, and the client's next connection is routed anew.
async fn passthrough<D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    downstream: D,
    peer: SocketAddr,
    dst: SocketAddr,
    still_allowed: impl Fn(&Shared) -> bool,
) -> Result<(), String> {
    let timeout = shared.config().mesh.connect_timeout;
    let upstream = crate::upstream::connect(dst, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut updates = shared.config_updates();
    let revoked = async {
        while updates.changed().await.is_ok() {
            if !still_allowed(shared) {
                refused(shared, "tcp", "revoked");
                return format!("passthrough to {dst} closed: the config no longer allows it");
            }
        }
        std::future::pending().await
    };
    splice_until(
        shared,
        downstream,
        upstream,
        TcpLabels {
            direction: "egress",
            downstream: peer,
            upstream: dst,
            service: None,
            source_identity: None,
        },
        revoked,
    )
    .await;
    Ok(())
}
