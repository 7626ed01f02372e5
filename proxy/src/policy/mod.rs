//! Inbound authorization with SMI semantics: pure decisions, no I/O.
//!
//! Everything is denied unless an authorization allows it. An authorization
//! (one SMI TrafficTarget, compiled for one port) lists source identities and
//! either all traffic (a TCPRoute rule) or HTTP matches (HTTPRouteGroup rules).
//! Authorizations are ORed; inside an HTTP match every field is ANDed, and the
//! matches of one authorization are ORed. Permissive mode admits any verified
//! mesh identity.

mod authz;
pub use osm_api::matcher;
pub mod rate_limit;

pub use authz::{Decision, DenyReason, HttpRequestView, authorize_http, authorize_tcp};

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ipnet::IpNet;

use crate::identity::SpiffeId;
use matcher::HttpMatcher;

/// The policy of one inbound application port.
#[derive(Debug, Clone)]
pub struct InboundPolicy {
    pub port: u16,
    pub protocol: crate::config::Protocol,
    authorizations: Vec<Authorization>,
    /// Peers allowed without mTLS (IngressBackend sources).
    pub plaintext_sources: Vec<IpNet>,
    /// Source identity -> indexes of the authorizations listing it, in
    /// order, so a decision looks at that source's rules only.
    by_source: HashMap<SpiffeId, Vec<usize>>,
    /// Local rate limits on this port.
    pub limits: RateLimits,
    /// Set when the port's policy could not be built: every peer is denied
    /// (fail-closed), permissive mode included.
    pub broken: Option<Arc<str>>,
}

/// The rate limits of one port; limiter state is shared by every
/// connection of the config that holds it.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Connections.
    pub tcp: Option<Arc<rate_limit::RateLimiter>>,
    /// Requests, whatever their path.
    pub http: Option<HttpLimit>,
    /// Requests whose path matches, checked before `http`.
    pub routes: Vec<(regex::Regex, HttpLimit)>,
}

/// A request limit and how a limited request is answered.
#[derive(Debug, Clone)]
pub struct HttpLimit {
    pub limiter: Arc<rate_limit::RateLimiter>,
    pub status: http::StatusCode,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl RateLimits {
    /// The limit a request to `path` exceeds, if any; takes a token from
    /// each limit it passes.
    pub fn exceeded(&self, path: &str) -> Option<&HttpLimit> {
        if let Some((_, limit)) = self.routes.iter().find(|(re, _)| re.is_match(path))
            && !limit.limiter.try_acquire()
        {
            return Some(limit);
        }
        self.http
            .as_ref()
            .filter(|limit| !limit.limiter.try_acquire())
    }

    /// Whether a new connection may proceed.
    pub fn admits_connection(&self) -> bool {
        self.tcp.as_ref().is_none_or(|l| l.try_acquire())
    }
}

/// One compiled TrafficTarget rule for a port.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub name: Arc<str>,
    pub sources: HashSet<SpiffeId>,
    pub traffic: Traffic,
}

/// What an authorization admits from its sources.
#[derive(Debug, Clone)]
pub enum Traffic {
    /// Any connection or request (TCPRoute).
    All,
    /// HTTP requests matching one of these (HTTPRouteGroup matches).
    Http(Vec<HttpMatcher>),
    /// Nothing: an authorization with no traffic kind set.
    Nothing,
}

impl InboundPolicy {
    pub fn new(
        port: u16,
        protocol: crate::config::Protocol,
        authorizations: Vec<Authorization>,
        plaintext_sources: Vec<IpNet>,
    ) -> Self {
        let mut by_source: HashMap<SpiffeId, Vec<usize>> = HashMap::new();
        for (i, authz) in authorizations.iter().enumerate() {
            for source in &authz.sources {
                by_source.entry(source.clone()).or_default().push(i);
            }
        }
        Self {
            port,
            protocol,
            authorizations,
            plaintext_sources,
            by_source,
            limits: RateLimits::default(),
            broken: None,
        }
    }

    /// A port whose policy could not be built, and why: denies everyone.
    pub fn broken(port: u16, why: String) -> Self {
        let mut policy = Self::new(
            port,
            crate::config::Protocol::Detect,
            Vec::new(),
            Vec::new(),
        );
        policy.broken = Some(why.into());
        policy
    }

    /// Every authorization, in order.
    pub fn authorizations(&self) -> &[Authorization] {
        &self.authorizations
    }

    /// The authorizations that list `source`, in order.
    pub fn authorizations_for<'a>(
        &'a self,
        source: &SpiffeId,
    ) -> impl Iterator<Item = &'a Authorization> + 'a {
        self.by_source
            .get(source)
            .into_iter()
            .flatten()
            .map(|&i| &self.authorizations[i])
    }

    /// Whether a plaintext peer at `ip` may connect (IngressBackend).
    pub fn admits_plaintext(&self, ip: std::net::IpAddr) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let ip = canonical_ip(ip);
        self.plaintext_sources.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) compared as IPv4.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(std::net::IpAddr::V6(v6)),
        v4 => v4,
    }
}
