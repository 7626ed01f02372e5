//! Benchmarks live in `benches/`: `micro` (route matching, authorization,
//! split and endpoint choice) and `loopback` (one request through
//! client -> outbound proxy -> mTLS -> inbound proxy -> app, against
//! client -> app directly). Run with `cargo bench -p osm-bench`.
