//! `osm-bench intercept` end to end, briefly (root, and oha, which CI does
//! not build: run with `cargo test -p osm-bench --test intercept --
//! --ignored` after `cargo build --workspace --bins`): both paths answer
//! every request, and the meshed one is charged to both proxies.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use osm_bench::intercept::{Settings, report, run, write};

#[test]
#[ignore = "needs oha (bench/run-intercept installs it) and root"]
fn both_paths_answer_and_the_meshed_one_crosses_both_proxies() {
    let settings = Settings {
        bin_dir: osm_tests::local::bin_dir(),
        oha: osm_bench::pairs::run::default_program("oha"),
        manifests: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intercept/mesh.yaml"),
        rates: vec![200],
        connections: 4,
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        repetitions: 2,
    };
    let outcome = run(&settings).unwrap();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("intercept");
    write(&outcome, &out).unwrap();
    let text = std::fs::read_to_string(out.join("intercept.md")).unwrap();
    assert_eq!(outcome.samples.len(), 4, "{text}");
    for s in &outcome.samples {
        assert!(s.measured.requests >= 400, "{text}");
        assert_eq!(s.measured.ok, s.measured.requests, "{text}");
        let charged = s.outbound_cpu_s > 0.0 && s.inbound_cpu_s > 0.0;
        assert_eq!(charged, s.path == report::Path::Meshed, "{text}");
    }
    let rows = report::rows(&outcome.samples);
    assert!(rows[1].added_p50_ms.is_some(), "{text}");
}
