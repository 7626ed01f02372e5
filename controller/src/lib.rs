//! osm-controller: the mesh's control plane.
//!
//! - [`ca`]: the certificate authority; [`token`]: proof of identity;
//!   [`certify`]: the `Identity.Certify` decision.
//! - [`hub`]: the compiler and every proxy's subscription to its view.
//! - [`server`]: the gRPC server (15128); [`admin`]: health, readiness,
//!   metrics and debug (9091).
//! - [`sources`]: what feeds the compiler (a directory of manifests; the
//!   Kubernetes API).
//! - [`traffic_metrics`]: the SMI TrafficMetrics aggregated API, from the
//!   proxies' metrics read once per window.
//! - [`app`]: the wiring of a running controller.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod ca;
pub mod ca_driver;
pub mod certify;
pub mod hub;
pub mod issuers;
pub mod kubernetes;
pub mod metrics;
pub mod server;
pub mod sources;
pub mod status;
pub mod token;
pub mod traffic_metrics;
pub mod webhook;

#[cfg(test)]
mod test_fixtures;
