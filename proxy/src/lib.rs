//! osm-proxy: the mesh sidecar.
//!
//! Every pod's traffic is redirected to it by iptables: outbound connections
//! to 15001, inbound ones to 15003. It speaks mTLS to other proxies, enforces
//! SMI authorization on the inbound side, and routes outbound HTTP per
//! request (TrafficSplit weights, A/B matches, power-of-two-choices load
//! balancing). See [`inbound`] and [`outbound`] for each side's flow.
//!
//! Layout: pure decisions ([`policy`], [`routing`], [`detect`]'s classifier,
//! [`config`] validation) are separate from I/O ([`inbound`], [`outbound`],
//! [`upstream`], [`admin`]); [`app`] wires them together.

#![deny(unsafe_code)]

pub mod admin;
pub mod answer;
pub mod app;
pub mod args;
pub mod config;
pub mod connection;
pub mod control;
pub mod detect;
pub mod h1;
pub mod http1_over_h2;
pub mod http_util;
pub mod hygiene;
pub mod identity;
pub mod inbound;
pub mod logging;
pub mod memory;
pub mod orig_dst;
pub mod outbound;
pub mod policy;
pub mod probes;
pub mod refusal;
pub mod resilience;
pub mod resolve;
pub mod routing;
pub mod serve;
pub mod state;
pub mod tcp_forward;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod tls_sni;
pub mod upstream;
