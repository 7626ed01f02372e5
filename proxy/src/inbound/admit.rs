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
        tls::{ALPN_H2, ALPN_HTTP1, ALPN_HTTP1_OVER_H2},
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
    Http(Served),
    /// Splice to the application, admitted by the named rule.
    Tcp {
        rule: Arc<str>,
    },
    Refuse(Refusal),
}

/// How an admitted HTTP connection is served, and how its requests reach
/// the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The connection speaks HTTP/2.
    pub http2: bool,
    /// The application gets HTTP/2.
    pub app_http2: bool,
}

impl Served {
    pub const HTTP1: Self = Self {
        http2: false,
        app_http2: false,
    };
    pub const HTTP2: Self = Self {
        http2: true,
        app_http2: true,
    };
    /// A peer proxy's HTTP/1.1 requests over one HTTP/2 connection
    /// ([`crate::http1_over_h2`]).
    pub const HTTP1_OVER_H2: Self = Self {
        http2: true,
        app_http2: false,
    };

    /// Requests came as HTTP/2 frames but were HTTP/1.1.
    pub fn restores_http1(self) -> bool {
        self.http2 && !self.app_http2
    }
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
        Admitted::Http(served) => Admission::Http(served),
        Admitted::Tcp(rule) => Admission::Tcp { rule },
    }
}

/// What the connection was admitted for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admitted {
    Http(Served),
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
                Detected::Http1 => Admitted::Http(Served::HTTP1),
                Detected::Http2 => Admitted::Http(Served::HTTP2),
                Detected::Tls | Detected::Opaque => Admitted::Tcp("ingress".into()),
            })
        }
        Peer::Mesh { identity, alpn } => match alpn {
            Some(ALPN_H2) => Ok(Admitted::Http(Served::HTTP2)),
            Some(ALPN_HTTP1) => Ok(Admitted::Http(Served::HTTP1)),
            Some(ALPN_HTTP1_OVER_H2) => Ok(Admitted::Http(Served::HTTP1_OVER_H2)),
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
