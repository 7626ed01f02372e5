//! The `osm` command line.

pub mod cluster;
pub mod local;
pub mod output;
pub mod table;
