//! Metrics (Prometheus text on 15010), the JSON access log, and traces.

pub mod access_log;
#[cfg(test)]
mod access_log_tests;
pub mod body_bytes;
pub mod duration_histogram;
pub mod endpoint_series;
pub mod log_buffer;
pub mod metrics;
pub mod tally;
pub mod trace;
