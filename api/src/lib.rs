//! osm-api: the types every component of the mesh shares.
//!
//! [`v1`] is the config protocol between osm-controller and osm-proxy
//! (`proto/osm/v1/config.proto`): its messages, serde impls following the
//! proto3 JSON mapping (lowerCamelCase names), and the tonic client and server
//! stubs of the `Identity` and `Config` services; [`protocol`] its keyed
//! resources (what the controller diffs and the proxy applies).
//!
//! With the `compiler` feature: the Kubernetes resource model
//! ([`resources`]), the manifest loader ([`load`]), validation
//! ([`validate`]), the policy compiler ([`compile`]) and the helpers that
//! read Kubernetes objects as the mesh does ([`k8s`]). The sidecar links
//! without it.

#![forbid(unsafe_code)]

/// The config protocol, version 1.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    rust_2018_idioms
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/osm.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/osm.v1.serde.rs"));
}

pub mod codec;
pub mod compat;
pub mod identity;
#[cfg(feature = "logging")]
pub mod logging;
pub mod matcher;
#[cfg(feature = "pki")]
pub mod pki;
pub mod protocol;
pub mod regex;
pub mod resilience;
pub mod tls;

#[cfg(feature = "compiler")]
pub mod compile;
#[cfg(feature = "compiler")]
pub mod k8s;
#[cfg(feature = "compiler")]
pub mod kinds;
#[cfg(feature = "compiler")]
pub mod load;
#[cfg(feature = "compiler")]
pub mod resources;
#[cfg(feature = "compiler")]
pub mod traffic_metrics;
#[cfg(feature = "compiler")]
pub mod validate;
