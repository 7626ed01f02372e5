//! The `osm` command line.

pub mod cluster;
pub mod output;
pub mod local;
