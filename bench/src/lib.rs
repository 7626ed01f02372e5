//! Benchmarks. Criterion benches live in `benches/` (`micro`, `compiler`,
//! `loopback`, `controller_scale`; `cargo bench -p osm-bench --bench NAME`);
//! the side-by-side load harness is the `osm-bench` binary (module
//! [`pairs`]; `bench/run` builds and runs it); the soak harness is
//! `osm-bench soak` ([`soak`]; `bench/run-soak`); the pair under real
//! interception is `osm-bench intercept` ([`intercept`]; `bench/run-intercept`).

pub mod big_config;
pub mod intercept;
pub mod interrupt;
pub mod local_mesh;
pub mod machine;
pub mod pairs;
pub mod resilience;
pub mod soak;
