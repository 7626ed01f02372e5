#![allow(clippy::unwrap_used)]

//! Whole proxies on 127.0.0.1: client -> outbound proxy -> mTLS -> inbound
//! proxy -> application.

mod admin;
mod affinity;
mod authz;
mod gateway_routes;
mod multiplex;
mod probes;
mod protocols;
mod rate_limit;
mod reload;
mod resilience;
mod routing;
mod telemetry;
mod tls;
mod tracing;
mod upstream_http1;
