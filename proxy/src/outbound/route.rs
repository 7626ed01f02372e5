//! Where an outbound connection goes: a decision over one config snapshot,
//! returned as a value.
//!
//! The proxy learns about a connection in steps, and asks again after each:
//! first only the original destination is known ([`Observed::Nothing`]);
//! then, if the answer was [`Route::Detect`], the protocol of its first
//! bytes; then, for TLS to a destination outside the mesh, the server name
//! of its ClientHello. A passthrough already open is asked again with what
//! was observed when a new config arrives: a different answer closes it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crate::{
    config::{OutboundService, Protocol, Snapshot},
    detect::Detected,
    refusal::{Layer, Refusal},
    routing::{egress, service_by_addr},
};

/// How long a client without a known destination may stay silent.
pub const IDLE_CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// What the proxy has seen of a connection so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed<'a> {
    /// Nothing read yet.
    Nothing,
    /// The protocol of its first bytes.
    Protocol(Detected),
    /// A TLS ClientHello, and the server name it asks for (if any).
    ServerName(Option<&'a str>),
}

/// What the proxy has read of a connection, owned (the handler's record
/// of it, to ask [`route`] again later).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub protocol: Option<Detected>,
    /// Some once the ClientHello was read: its server name, if any.
    pub server_name: Option<Option<String>>,
}

impl Seen {
    pub fn observed(&self) -> Observed<'_> {
        match (&self.server_name, self.protocol) {
            (Some(name), _) => Observed::ServerName(name.as_deref()),
            (None, Some(protocol)) => Observed::Protocol(protocol),
            (None, None) => Observed::Nothing,
        }
    }
}

/// What to do with an outbound connection.
#[derive(Debug, Clone)]
pub enum Route {
    /// Read the first bytes (waiting at most this long) and ask again.
    Detect {
        timeout: Duration,
    },
    /// Read the TLS ClientHello and ask again with its server name.
    ReadServerName,
    /// Serve HTTP: each request is routed on its own (Host, A/B, split).
    Http {
        http2: bool,
    },
    /// A mesh service over TCP: split, endpoint, mTLS, splice.
    MeshTcp(Arc<OutboundService>),
    /// Outside the mesh and allowed: plaintext to the original destination.
    Passthrough(SocketAddr),
    /// Allowed by an egress rule's host name (the TLS server name): to an
    /// address that host resolves to ([`crate::resolve`]), never simply
    /// where the application pointed.
    PassthroughByName {
        dst: SocketAddr,
        host: String,
    },
    Refuse(Refusal),
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Route::Detect { timeout: a }, Route::Detect { timeout: b }) => a == b,
            (Route::ReadServerName, Route::ReadServerName) => true,
            (Route::Http { http2: a }, Route::Http { http2: b }) => a == b,
            (Route::MeshTcp(a), Route::MeshTcp(b)) => a.key == b.key,
            (Route::Passthrough(a), Route::Passthrough(b)) => a == b,
            (
                Route::PassthroughByName { dst: a, host: h },
                Route::PassthroughByName { dst: b, host: k },
            ) => a == b && h == k,
            (Route::Refuse(a), Route::Refuse(b)) => a == b,
            _ => false,
        }
    }
}

/// Decides an outbound connection to `orig_dst` (None: the proxy could not
/// tell where the application was connecting).
pub fn route(snapshot: &Snapshot, orig_dst: Option<SocketAddr>, observed: Observed<'_>) -> Route {
    let service = orig_dst.and_then(|dst| service_by_addr(snapshot, dst));
    if let Some(service) = service {
        return mesh_route(snapshot, service, observed);
    }
    // Not a mesh service: with egress on, anything with a destination
    // passes through untouched.
    if let Some(dst) = orig_dst
        && snapshot.mesh.egress
    {
        return Route::Passthrough(dst);
    }
    let detected = match observed {
        Observed::Nothing => {
            // Without a destination there is nothing to forward opaque TCP
            // to, so a client that connects early and sends later (a
            // pre-connecting HTTP pool) is waited for, not given up on.
            let timeout = match orig_dst {
                Some(_) => snapshot.mesh.detect_timeout,
                None => IDLE_CLIENT_TIMEOUT,
            };
            return Route::Detect { timeout };
        }
        Observed::Protocol(detected) => Some(detected),
        Observed::ServerName(_) => None,
    };
    if let Some(Detected::Http1 | Detected::Http2) = detected {
        // Routed per request by Host, or let out by an HTTP Egress rule.
        return Route::Http {
            http2: detected == Some(Detected::Http2),
        };
    }
    let refused = Route::Refuse(Refusal::NoRoute {
        layer: Layer::Tcp,
        target: orig_dst.map(|d| d.to_string()),
        egress: snapshot.mesh.egress,
    });
    let Some(dst) = orig_dst else {
        return refused;
    };
    match observed {
        // TLS is judged on its server name as well as its address.
        Observed::Protocol(Detected::Tls) => Route::ReadServerName,
        _ if egress::allows_address(&snapshot.egress, dst).is_some() => Route::Passthrough(dst),
        Observed::ServerName(Some(sni))
            if egress::allows_tls(&snapshot.egress, sni, dst.port()).is_some() =>
        {
            Route::PassthroughByName {
                dst,
                host: sni.to_string(),
            }
        }
        _ => refused,
    }
}

/// A mesh service: its configured protocol, else what the bytes say.
fn mesh_route(
    snapshot: &Snapshot,
    service: &Arc<OutboundService>,
    observed: Observed<'_>,
) -> Route {
    let detected = match (service.protocol, observed) {
        (Protocol::Http1, _) => Detected::Http1,
        (Protocol::Http2 | Protocol::Grpc, _) => Detected::Http2,
        (Protocol::Tcp | Protocol::TcpServerFirst, _) => Detected::Opaque,
        (Protocol::Detect, Observed::Protocol(d)) => d,
        (Protocol::Detect, Observed::ServerName(_)) => Detected::Tls,
        (Protocol::Detect, Observed::Nothing) => {
            return Route::Detect {
                timeout: snapshot.mesh.detect_timeout,
            };
        }
    };
    match detected {
        Detected::Http1 => Route::Http { http2: false },
        Detected::Http2 => Route::Http { http2: true },
        Detected::Tls | Detected::Opaque => Route::MeshTcp(service.clone()),
    }
}

#[cfg(test)]
mod tests;
