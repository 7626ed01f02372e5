//! Upstream endpoints: their identity, load, pooled HTTP clients and TCP
//! connections, kept across config changes.

mod affinity;
mod connect;
mod exchange;
mod forward;
mod held;
mod outgoing;
pub mod spec;
mod stream;

pub use affinity::{Affinity, ResponseBody};
pub use connect::{ConnectError, Connector, app_source, connect, connect_from};
pub use forward::{ForwardError, forward};
pub use held::Parked;
pub use spec::EndpointSpec;
pub use stream::{ConnectionUses, MeshIo, Stream};

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use arc_swap::ArcSwapOption;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};

use crate::{
    http_util::UpstreamBody,
    identity::tls::TlsState,
    resilience::{
        Kept,
        breaker::{Breaker, Limits},
        budget::RetryBudget,
        outlier::EndpointHealth,
    },
    routing::balance::Load,
    telemetry::metrics::RequestMetricsCache,
};

/// A pooled HTTP client bound to one upstream. Request bodies stream
/// (`Incoming`) or, when buffered for retries, are replayed.
pub type HttpClient = Client<Connector, UpstreamBody>;

/// Which protocol a connection to an endpoint carries (its ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// HTTP/1.1 requests: to a peer proxy that agrees, many of them over
    /// one HTTP/2 connection ([`crate::http1_over_h2`]).
    Http1,
    /// HTTP/1.1 on a connection of its own, always: upgrades, CONNECT,
    /// HTTP/1.0.
    Http1Only,
    Http2,
    Tcp,
}

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds a pooled client over `connector`.
pub fn http_client(connector: Connector, wire: Wire) -> HttpClient {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        // The Host header is the client's own and passes through unchanged.
        .set_host(false)
        .http2_only(wire == Wire::Http2);
    builder.build(connector)
}

/// One upstream endpoint with its pools and load estimate.
#[derive(Debug)]
pub struct EndpointHandle {
    /// Shared with the registry's key (one copy per endpoint).
    pub spec: Arc<EndpointSpec>,
    /// Its service's circuit breaker, as the current config sets it.
    pub breaker: Arc<ArcSwapOption<Breaker>>,
    tls: Arc<ArcSwapOption<TlsState>>,
    // Made at the endpoint's first request: most endpoints of a big config
    // are never called, and this state (load, outlier detection, metrics,
    // pools) was 150 bytes of each of them.
    used: OnceLock<Box<Used>>,
}

/// What an endpoint keeps once it is called.
#[derive(Debug, Default)]
struct Used {
    load: Load,
    /// Outlier detection's view of this endpoint.
    health: EndpointHealth,
    metrics: RequestMetricsCache,
    http1: OnceLock<HttpClient>,
    http1_only: OnceLock<HttpClient>,
    http2: OnceLock<HttpClient>,
    /// Its idle connections that no downstream connection keeps.
    parked: Arc<Parked>,
}

impl EndpointHandle {
    pub fn addr(&self) -> SocketAddr {
        self.spec.addr
    }

    fn used(&self) -> &Used {
        self.used.get_or_init(Box::default)
    }

    /// The cost power of two choices compares (0 for an endpoint never
    /// called, as for an idle one).
    pub fn load_cost(&self) -> u64 {
        self.used.get().map_or(0, |used| used.load.cost())
    }

    /// Whether outlier detection has ejected it at `now` (never, for an
    /// endpoint never called).
    pub fn is_ejected(&self, now: Duration) -> bool {
        self.used
            .get()
            .is_some_and(|used| used.health.is_ejected(now))
    }

    /// Its load, to count a request against.
    pub fn load(&self) -> &Load {
        &self.used().load
    }

    /// Outlier detection's view of this endpoint.
    pub fn health(&self) -> &EndpointHealth {
        &self.used().health
    }

    /// Its request metrics' series.
    pub fn metrics(&self) -> &RequestMetricsCache {
        &self.used().metrics
    }

    /// Its idle connections that no downstream connection keeps
    /// ([`Affinity`]).
    pub fn parked(&self) -> &Arc<Parked> {
        &self.used().parked
    }

    /// What opens its connections on `wire`.
    pub fn connector(&self, wire: Wire) -> Connector {
        Connector::new(
            self.spec.addr,
            self.spec.identity.clone(),
            self.tls.clone(),
            wire,
            self.spec.connect_timeout,
        )
        .with_breaker(self.breaker.clone())
    }

    /// The pooled client for this endpoint and wire.
    pub fn http_client(&self, wire: Wire) -> &HttpClient {
        let used = self.used();
        let cell = match wire {
            Wire::Http1 => &used.http1,
            Wire::Http1Only => &used.http1_only,
            // TCP is never asked for (`http1_over_h2::wire_for` names none,
            // and a cell for it would cost every used endpoint).
            Wire::Http2 | Wire::Tcp => &used.http2,
        };
        cell.get_or_init(|| http_client(self.connector(wire), wire))
    }

    /// A new connection for opaque TCP, and its place among the
    /// service's `maxConnections` (held while the connection is open).
    pub async fn connect_tcp(
        &self,
    ) -> Result<(Stream, Option<crate::resilience::breaker::CountPermit>), ConnectError> {
        let connector = self.connector(Wire::Tcp);
        let (permit, _) = connector.admit()?;
        Ok((connector.connect().await?, permit))
    }
}

/// Hands out endpoint handles, reusing a live one for the same spec so that
/// pools, load estimates and outlier state survive config changes; and,
/// the same way, each upstream's circuit breaker (while its limits stay
/// the same) and each service's retry budget.
#[derive(Debug, Default)]
pub struct EndpointRegistry {
    handles: Arc<Handles>,
    pub breakers: Kept<(String, Limits), Breaker>,
    pub budgets: Kept<String, Mutex<RetryBudget>>,
}

/// The endpoint handles alone, shared with the endpoint sets that make
/// theirs when first used (see [`crate::config::EndpointSet`]).
#[derive(Debug, Default)]
pub struct Handles {
    tls: Arc<ArcSwapOption<TlsState>>,
    kept: Kept<Arc<EndpointSpec>, EndpointHandle>,
}

impl EndpointRegistry {
    pub fn new(tls: Arc<ArcSwapOption<TlsState>>) -> Self {
        Self {
            handles: Arc::new(Handles {
                tls,
                kept: Kept::default(),
            }),
            ..Default::default()
        }
    }

    pub fn get(&self, spec: EndpointSpec) -> Arc<EndpointHandle> {
        self.handles.get(spec)
    }

    /// The handles, for a set to make its own later.
    pub fn handles(&self) -> &Arc<Handles> {
        &self.handles
    }
}

impl Handles {
    /// How many handles are kept (live or waiting for a sweep).
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Idle HTTP/1.1 connections parked with the endpoints
    /// ([`Affinity`]).
    pub fn parked_connections(&self) -> usize {
        let live = self.kept.live();
        live.iter()
            .filter_map(|h| h.used.get())
            .map(|used| used.parked.len())
            .sum()
    }

    /// The live handle for `spec`, or a new one.
    pub fn get(&self, spec: EndpointSpec) -> Arc<EndpointHandle> {
        let spec = Arc::new(spec);
        self.kept.get_or(spec.clone(), || EndpointHandle {
            spec,
            breaker: Arc::default(),
            tls: self.tls.clone(),
            used: OnceLock::new(),
        })
    }
}
