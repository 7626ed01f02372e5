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

pub mod attempts;
mod http;
mod mirror;
mod route;
pub mod rules;
mod try_once;
pub mod unprocessed;

pub use route::{IDLE_CLIENT_TIMEOUT, Observed, Route, Seen, route};

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::OutboundService,
    connection::ConnectionError,
    detect::{Prefixed, detect},
    refusal::{Layer, Refusal},
    resilience::{breaker::Breaker, retry::Tried},
    routing::egress::EgressRule,
    routing::{choose_backend, choose_endpoint},
    state::Shared,
    tcp_forward::{TcpLabels, splice, splice_until},
    upstream::ConnectError,
};

/// Accepts outbound connections until drained. `orig_dst` replaces the
/// original destination (for running without iptables).
pub async fn serve(
    listener: TcpListener,
    orig_dst: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    crate::serve::accept_intercepted(
        listener,
        orig_dst,
        "outbound",
        (shared, drain, tasks),
        handle,
    )
    .await;
}

/// Serves one outbound connection: asks [`route`] what to do, reading
/// what it asks for (the first bytes, a TLS ClientHello) until it decides.
/// Generic over the stream so tests drive whole connections in memory.
pub async fn handle<S>(
    stream: S,
    peer: SocketAddr,
    orig_dst: Option<SocketAddr>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stream = Prefixed::new(bytes::Bytes::new(), stream);
    let mut seen = Seen::default();
    // The config as the connection found it, read once; only revocation
    // of a passthrough looks at newer ones.
    let snapshot = arc_swap::Guard::into_inner(shared.config());
    loop {
        let decision = route(&snapshot, orig_dst, seen.observed());
        match decision {
            Route::Detect { timeout } => {
                // Asked only before anything was read: the prefix is empty.
                let (_, mut inner) = stream.into_parts();
                let (protocol, prefix) = detect(&mut inner, timeout)
                    .await
                    .map_err(ConnectionError::Detect)?;
                seen.protocol = Some(protocol);
                stream = Prefixed::new(prefix, inner);
            }
            Route::ReadServerName => {
                let (prefix, mut inner) = stream.into_parts();
                let timeout = snapshot.mesh.detect_timeout;
                let record = crate::tls_sni::read_first_record(&mut inner, prefix, timeout)
                    .await
                    .map_err(ConnectionError::ClientHello)?;
                seen.server_name = Some(crate::tls_sni::server_name(&record));
                stream = Prefixed::new(record, inner);
            }
            Route::Http { http2 } => {
                drop(snapshot);
                let ctx = http::OutboundContext::new(shared, orig_dst);
                crate::serve::serve_http(stream, http2, drain, move |req| {
                    http::handle(ctx.clone(), req)
                })
                .await;
                return Ok(());
            }
            Route::MeshTcp(service) => {
                drop(snapshot);
                return Box::pin(forward_tcp(&shared, stream, peer, &service)).await;
            }
            Route::Passthrough(dst) => {
                let limited = Limited::of(
                    &snapshot,
                    crate::routing::egress::allows_address(&snapshot.egress, dst),
                );
                drop(snapshot);
                let decided = (Route::Passthrough(dst), orig_dst, seen);
                return Box::pin(passthrough(&shared, stream, peer, (dst, limited), decided)).await;
            }
            Route::PassthroughByName { dst, host } => {
                let limited = Limited::of(
                    &snapshot,
                    crate::routing::egress::allows_tls(&snapshot.egress, &host, dst.port()),
                );
                drop(snapshot);
                let Some(target) = shared.resolver.pin(&host, dst).await else {
                    let refusal = Refusal::EgressHostUnresolved {
                        layer: Layer::Tcp,
                        host,
                    };
                    return Err(ConnectionError::egress(refusal.record(&shared.metrics)));
                };
                let decided = (Route::PassthroughByName { dst, host }, orig_dst, seen);
                return Box::pin(passthrough(
                    &shared,
                    stream,
                    peer,
                    (target, limited),
                    decided,
                ))
                .await;
            }
            Route::Refuse(refusal) => return Err(refusal.record(&shared.metrics).into()),
        }
    }
}

async fn forward_tcp<D>(
    shared: &Arc<Shared>,
    downstream: D,
    peer: SocketAddr,
    service: &OutboundService,
) -> Result<(), ConnectionError>
where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let set = choose_backend(service, None, fastrand::u64(..));
    let Some(endpoint) = choose_endpoint(set) else {
        let refusal = Refusal::NoEndpoints {
            layer: Layer::Tcp,
            set: set.key.clone(),
        };
        return Err(refusal.record(&shared.metrics).into());
    };
    let connected = endpoint.connect_tcp().await;
    attempts::observe(
        &shared.metrics,
        set,
        endpoint,
        Some(match &connected {
            Ok(_) => Tried::Answered(::http::StatusCode::OK),
            Err(_) => Tried::ConnectFailed,
        }),
    );
    let (upstream, _held) = match connected {
        Ok(connected) => connected,
        Err(ConnectError::Overflow { overflow, .. }) => {
            let refusal = Refusal::Overflow {
                layer: Layer::Tcp,
                upstream: set.key.clone(),
                overflow,
            };
            return Err(refusal.record(&shared.metrics).into());
        }
        Err(e) => return Err(e.into()),
    };
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

/// How a passthrough connects: the Egress rule that lets it out (its
/// name and circuit breaker), and the connect timeout.
struct Limited {
    rule: Option<(Arc<str>, Arc<Breaker>)>,
    connect_timeout: std::time::Duration,
}

impl Limited {
    fn of(snapshot: &crate::config::Snapshot, rule: Option<&EgressRule>) -> Self {
        let rule = rule.and_then(|r| Some((r.name.clone(), r.breaker.clone()?)));
        Limited {
            connect_timeout: rule
                .as_ref()
                .and_then(|(_, b)| b.limits.connect_timeout)
                .unwrap_or(snapshot.mesh.connect_timeout),
            rule,
        }
    }
}

/// Splices a connection to a destination outside the mesh for as long as
/// the config allows it: [`route`] is asked again, with what was observed,
/// on every config change, and a different answer (egress turned off, the
/// destination became a mesh service, which must be reached over mTLS)
/// closes it; the client's next connection is routed anew.
async fn passthrough<D: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    downstream: D,
    peer: SocketAddr,
    (dst, limited): (SocketAddr, Limited),
    (decided, orig_dst, seen): (Route, Option<SocketAddr>, Seen),
) -> Result<(), ConnectionError> {
    // Held while the connection is open: one of the rule's maxConnections.
    let _place = match &limited.rule {
        Some((name, breaker)) => match breaker.admit_connection() {
            Ok(place) => Some(place),
            Err(overflow) => {
                let refusal = Refusal::Overflow {
                    layer: Layer::Tcp,
                    upstream: format!("egress:{name}").into(),
                    overflow,
                };
                return Err(ConnectionError::egress(refusal.record(&shared.metrics)));
            }
        },
        None => None,
    };
    let upstream = crate::upstream::connect(dst, limited.connect_timeout)
        .await
        .map_err(ConnectionError::egress)?;
    let mut updates = shared.config_updates();
    let revoked = async {
        while updates.changed().await.is_ok() {
            if route(&shared.config(), orig_dst, seen.observed()) != decided {
                let refusal = Refusal::EgressRevoked { dst }.record(&shared.metrics);
                return refusal.to_string();
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

#[cfg(test)]
mod tests;
