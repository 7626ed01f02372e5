//! The `osm` command line.

pub mod local;
