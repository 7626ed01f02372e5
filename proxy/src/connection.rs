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
}
