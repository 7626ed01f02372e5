//! The controller's own calls to the Kubernetes API: checking proxies'
//! tokens with TokenReview, keeping the CA in a Secret, reading the
//! aggregator's front-proxy CA. (Watching
//! cluster state is in [`crate::sources::kubernetes`].)

pub mod bootstrap;
pub mod ca_secret;
pub mod cert_manager;
pub mod front_proxy;
pub mod lost_root;
pub mod token_review;

#[cfg(any(test, feature = "test-support"))]
pub mod fake;

/// The Secret the mesh CA is kept in (OSM's name).
pub const CA_SECRET: &str = "osm-ca-bundle";
