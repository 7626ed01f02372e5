//! What identifies an upstream endpoint: its address, the identity it must
//! prove, and the names its metrics carry. Plain data, so the pool
//! ([`super`]) and the metrics ([`crate::telemetry::metrics`]) can both
//! read it without depending on each other.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crate::identity::{SpiffeId, policy::TlsPolicy};

/// Everything that identifies an endpoint and labels its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointSpec {
    pub addr: SocketAddr,
    /// None: outside the mesh, reached in plaintext.
    pub identity: Option<SpiffeId>,
    // Shared: an endpoint set's endpoints hold one copy of the names they
    // have in common (30,000 endpoints held six strings each).
    pub namespace: Arc<str>,
    pub service: Arc<str>,
    pub pod: Box<str>,
    pub workload_kind: Arc<str>,
    pub workload_name: Arc<str>,
    pub connect_timeout: Duration,
    /// The TLS settings its connections are made with: a change gives the
    /// endpoint a new handle, so pooled connections made under the old
    /// settings are not reused.
    pub tls: Arc<TlsPolicy>,
}
