//! Metrics (Prometheus text on 15010) and the JSON access log.

pub mod access_log;
pub mod metrics;
