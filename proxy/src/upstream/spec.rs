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
    pub namespace: String,
    pub service: String,
    pub pod: String,
    pub workload_kind: String,
    pub workload_name: String,
    pub connect_timeout: Duration,
    /// The TLS settings its connections are made with: a change gives the
    /// endpoint a new handle, so pooled connections made under the old
    /// settings are not reused.
    pub tls: Arc<TlsPolicy>,
}
