//! The proxy's own logs: the shared reloadable filter
//! ([`osm_api::logging`]), changed at runtime by the admin endpoint
//! (`/logging?level=debug`).

pub use osm_api::logging::{FilterError, LogFilter, init};
