//! The comparison harness: the meshed path (osm-proxy pair) against the
//! direct path and against nginx and HAProxy pairs, in one run, on
//! 127.0.0.1. See bench/README.md.

pub mod app;
pub mod load;
pub mod paths;
pub mod pki;
pub mod plot;
pub mod procs;
pub mod report;
pub mod run;
pub mod template;
