//! The bookstore demo's apps, after OSM's: bookbuyer and bookthief buy
//! books from bookstore (v1 and v2 behind one Service), bookstore restocks
//! from bookwarehouse, and bookwarehouse keeps its stock in Redis. Every
//! app serves its counters as JSON at `GET /counters` so the demo and the
//! tests can watch what the mesh lets through. `echo` answers every
//! request with a JSON description of it, for route tests; `soak` counts
//! the soak harness's load by outcome.

pub mod buyer;
pub mod echo;
pub mod http;
pub mod soak;

/// An environment variable, or its default.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A port from the environment.
pub fn port_from_env(name: &str, default: u16) -> anyhow::Result<u16> {
    let text = env_or(name, &default.to_string());
    text.parse()
        .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a port number"))
}
