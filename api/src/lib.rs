//! osm-api: the types every component of the mesh shares.
//!
//! [`v1`] is the config protocol between osm-controller and osm-proxy
//! (`proto/osm/v1/config.proto`): its messages, serde impls following the
//! proto3 JSON mapping (lowerCamelCase names), and the tonic client and server
//! stubs of the `Identity` and `Config` services.

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
pub mod compile;
pub mod identity;
pub mod load;
pub mod protocol;
pub mod regex;
pub mod resources;
pub mod validate;
