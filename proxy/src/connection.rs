//! Why a connection ended early: a refusal (the config said no) or a
//! failure on the way (no original destination, a handshake that failed,
//! an upstream that could not be reached). Logged once per connection by
//! the accept loop's task.

use crate::{identity::tls::PeerIdentityError, refusal::Refusal, upstream::ConnectError};

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no original destination")]
    NoOriginalDestination,
    #[error("protocol detection: {0}")]
    Detect(std::io::Error),
    #[error("reading the TLS ClientHello: {0}")]
    ClientHello(std::io::Error),
    #[error("no certificate yet: refusing mTLS")]
    NoCertificate,
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error(transparent)]
    PeerIdentity(#[from] PeerIdentityError),
    #[error(transparent)]
    Upstream(#[from] ConnectError),
    /// A passthrough to a destination outside the mesh that ended before
    /// any byte went out (its access-log line says `egress`, as the line
    /// of one that connected does).
    #[error(transparent)]
    Egress(Box<ConnectionError>),
}

impl ConnectionError {
    /// The access log's response flag (Envoy's codes) for a connection
    /// that ended this way: the refusal's own, UF an upstream that could not
    /// be reached (UO its circuit breaker full), UAEX a peer whose identity
    /// failed, DPE a client that did not speak what it had to (detection,
    /// ClientHello, TLS handshake), NR no original destination, LR refused
    /// locally (no certificate yet to accept mTLS with); `-` for a client
    /// that closed before sending anything (a TCP health check, a port
    /// scan): nothing went wrong, and it still gets its line.
    pub fn response_flag(&self) -> &'static str {
        match self {
            Self::Egress(inner) => inner.response_flag(),
            Self::Refused(refusal) => refusal.response_flag(),
            Self::Upstream(ConnectError::Overflow { .. }) => "UO",
            Self::Upstream(_) => "UF",
            Self::PeerIdentity(_) => "UAEX",
            Self::Detect(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => "-",
            Self::Detect(_)
            | Self::ClientHello(_)
            | Self::HandshakeTimeout
            | Self::Handshake(_) => "DPE",
            Self::NoOriginalDestination => "NR",
            Self::NoCertificate => "LR",
        }
    }

    /// `cause`, which happened on the way out of the mesh.
    pub fn egress(cause: impl Into<ConnectionError>) -> Self {
        Self::Egress(Box::new(cause.into()))
    }

    /// The access log's direction of a connection accepted on `side` that
    /// ended this way.
    pub fn direction(&self, side: &'static str) -> &'static str {
        match self {
            Self::Egress(_) => "egress",
            _ => side,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Layer;

    #[test]
    fn each_way_to_end_early_has_its_response_flag() {
        let addr: std::net::SocketAddr = "10.0.0.9:8080".parse().expect("addr");
        let io = || std::io::Error::other("reset");
        let cases: [(ConnectionError, &str); 11] = [
            (
                Refusal::NoEndpoints {
                    layer: Layer::Tcp,
                    set: "shop/store:80".into(),
                }
                .into(),
                "UH",
            ),
            (
                Refusal::Plaintext {
                    peer: addr,
                    port: 80,
                }
                .into(),
                "UAEX",
            ),
            (Refusal::ConnectionRateLimited { port: 80 }.into(), "RL"),
            (ConnectError::Io { addr, source: io() }.into(), "UF"),
            (
                ConnectError::Timeout {
                    addr,
                    timeout: std::time::Duration::from_secs(1),
                }
                .into(),
                "UF",
            ),
            (PeerIdentityError::NoSpiffeId.into(), "UAEX"),
            (ConnectionError::Detect(io()), "DPE"),
            (
                ConnectionError::Detect(std::io::ErrorKind::UnexpectedEof.into()),
                "-",
            ),
            (ConnectionError::HandshakeTimeout, "DPE"),
            (ConnectionError::NoOriginalDestination, "NR"),
            (ConnectionError::NoCertificate, "LR"),
        ];
        for (error, flag) in cases {
            assert_eq!(error.response_flag(), flag, "{error}");
            assert_eq!(error.direction("outbound"), "outbound", "{error}");
            let egress = ConnectionError::egress(error);
            assert_eq!(egress.response_flag(), flag, "{egress}");
            assert_eq!(egress.direction("outbound"), "egress", "{egress}");
        }
    }
}
