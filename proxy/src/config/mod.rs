//! The proxy's configuration: loading the protocol schema from a file, and
//! compiling it into an immutable, validated [`Snapshot`].

pub mod batch;
mod file_stream;
mod load;
mod packed;
mod snapshot;
pub mod store;
pub mod watch;

pub use load::{LoadError, parse_config, parse_file};
pub use snapshot::{
    ConfigError, EndpointSet, Mesh, Mirror, OnBadResource, OutboundService, PodTarget, Retries,
    RouteBackend, RouteRule, Routes, Snapshot, Split, build, build_file_snapshot, build_snapshot,
    update,
};

use osm_api::v1;

/// Application protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Detect,
    Http1,
    Http2,
    Grpc,
    Tcp,
    TcpServerFirst,
}

impl Protocol {
    pub fn from_proto(value: i32) -> Option<Self> {
        Some(match v1::Protocol::try_from(value).ok()? {
            v1::Protocol::Detect => Self::Detect,
            v1::Protocol::Http1 => Self::Http1,
            v1::Protocol::Http2 => Self::Http2,
            v1::Protocol::Grpc => Self::Grpc,
            v1::Protocol::Tcp => Self::Tcp,
            v1::Protocol::TcpServerFirst => Self::TcpServerFirst,
        })
    }

    pub fn is_opaque(self) -> bool {
        matches!(self, Self::Tcp | Self::TcpServerFirst)
    }
}
