//! osm-controller: the mesh's control plane.
//!
//! Built so far: the certificate authority ([`ca`]), proof of identity with
//! tokens ([`token`]) and the `Identity.Certify` decision ([`certify`]),
//! all without I/O beyond the CA's key file.

#![forbid(unsafe_code)]

pub mod ca;
pub mod certify;
pub mod hub;
pub mod sources;
pub mod token;

#[cfg(test)]
mod test_fixtures;
