//! Whether an inbound connection is admitted, and as what: a decision over
//! one config snapshot, returned as a value.
//!
//! It is asked twice for a TLS connection: before the handshake (the answer
//! is [`Admission::Handshake`]), then with the identity the peer's
//! certificate proved and the ALPN it chose. A plaintext connection is
//! decided at once. [`still_admitted`] asks the same question of a newer
//! snapshot for a connection already open, so revocation and admission
//! cannot disagree.

use std::{net::SocketAddr, sync::Arc};

use crate::{
    config::Snapshot,
    detect::Detected,
    identity::{
        SpiffeId,
        tls::{ALPN_H2, ALPN_HTTP1},
    },
    policy::{Decision, authorize_tcp},
    refusal::{Layer, Refusal},
};

/// Who is on the other end, as far as the proxy knows so far.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    /// No certificate (yet): only its address is known.
    Plaintext(SocketAddr),
    /// A mesh proxy that proved `identity`, speaking what ALPN chose.
    Mesh {
        identity: &'a SpiffeId,
        alpn: Option<&'a [u8]>,
    },
}

/// What to do with an inbound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A TLS client: verify its certificate, then ask again.
    Handshake,
    /// Serve HTTP; each request is authorized on its own.
    Http {
        http2: bool,
    },
    /// Splice to the application, admitted by the named rule.
    Tcp {
        rule: Arc<str>,
    },
    Refuse(Refusal),
}

/// Decides an inbound connection to `port`. The one side effect: an
/// admitted connection takes a token from the port's connection limiter.
pub fn admit(snapshot: &Snapshot, port: u16, peer: Peer<'_>, detected: Detected) -> Admission {
    if let (Peer::Plaintext(_), Detected::Tls) = (peer, detected) {
        return Admission::Handshake;
    }
    let rule = match authorize_connection(snapshot, port, peer, detected) {
        Ok(rule) => rule,
        Err(refusal) => return Admission::Refuse(refusal),
    };
    let limited = snapshot
        .inbound
        .get(&port)
        .is_some_and(|p| !p.limits.admits_connection());
    if limited {
        return Admission::Refuse(Refusal::ConnectionRateLimited { port });
    }
    match rule {
        Admitted::Http { http2 } => Admission::Http { http2 },
        Admitted::Tcp(rule) => Admission::Tcp { rule },
    }
}

/// What the connection was admitted for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admitted {
    Http { http2: bool },
    Tcp(Arc<str>),
}

/// The admission rules without the rate limit (which spends a token).
fn authorize_connection(
    snapshot: &Snapshot,
    port: u16,
    peer: Peer<'_>,
    detected: Detected,
) -> Result<Admitted, Refusal> {
    match peer {
        Peer::Plaintext(addr) => {
            let listed = snapshot
                .inbound
                .get(&port)
                .is_some_and(|p| p.admits_plaintext(addr.ip()));
            if !listed {
                return Err(Refusal::Plaintext { peer: addr, port });
            }
            Ok(match detected {
                Detected::Http1 => Admitted::Http { http2: false },
                Detected::Http2 => Admitted::Http { http2: true },
                Detected::Tls | Detected::Opaque => Admitted::Tcp("ingress".into()),
            })
        }
        Peer::Mesh { identity, alpn } => match alpn {
            Some(ALPN_H2) => Ok(Admitted::Http { http2: true }),
            Some(ALPN_HTTP1) => Ok(Admitted::Http { http2: false }),
            _ => match authorize_tcp(
                snapshot.mesh.permissive,
                port,
                snapshot.inbound.get(&port),
                identity,
            ) {
                Decision::Allow(rule) => Ok(Admitted::Tcp(rule)),
                Decision::Deny(reason) => Err(Refusal::Unauthorized {
                    port,
                    layer: Layer::Tcp,
                    reason,
                }),
            },
        },
    }
}

/// Whether a spliced TCP connection is still admitted by `snapshot` (a
/// TrafficTarget or IngressBackend removed closes connections already open,
/// not only new ones). No rate-limit token is spent.
pub fn still_admitted(snapshot: &Snapshot, port: u16, peer: Peer<'_>) -> Result<(), Refusal> {
    authorize_connection(snapshot, port, peer, Detected::Opaque)
        .map(drop)
        .map_err(|_| Refusal::Revoked { port })
}

#[cfg(test)]
mod tests;
