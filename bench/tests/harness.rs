//! The harness's paths started for real: the osm-proxy pair carries a
//! request to the app over mTLS with its SMI policy in force, and a proxy
//! that cannot start is reported with its output (no run on a dead path).

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use osm_bench::pairs::{
    paths::{self, PathKind, Programs},
    pki, procs,
    run::{default_program, start_app},
};

const HARNESS: &str = env!("CARGO_BIN_EXE_osm-bench");

fn osm_proxy() -> PathBuf {
    let path = PathBuf::from(HARNESS).with_file_name("osm-proxy");
    assert!(
        path.is_file(),
        "{} is missing: cargo build --workspace --bins (cargo test --workspace --all-targets builds it)",
        path.display()
    );
    path
}

fn programs(osm_proxy: PathBuf) -> Programs {
    Programs {
        osm_proxy,
        osm_proxy_baseline: None,
        nginx: default_program("nginx"),
        haproxy: default_program("haproxy"),
        workers: 1,
    }
}

/// Status and body of one request on a new connection.
fn request(port: u16, method: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    write!(
        stream,
        "{method} /books HTTP/1.1\r\nHost: app.bench\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body_at = text.find("\r\n\r\n").unwrap() + 4;
    (status, answer[body_at..].to_vec())
}

#[test]
fn the_osm_pair_carries_get_and_its_policy_refuses_post() {
    let dir = tempfile::tempdir().unwrap();
    pki::write(dir.path()).unwrap();
    let app_port = paths::free_port().unwrap();
    let _app = start_app(HARNESS.as_ref(), app_port, 1024, dir.path()).unwrap();
    let pair = paths::start(PathKind::Osm, &programs(osm_proxy()), dir.path(), app_port).unwrap();
    assert_eq!(pair.proxies.len(), 2);
    assert_ne!(pair.port, app_port);

    let (status, body) = request(pair.port, "GET");
    assert_eq!(status, 200);
    assert_eq!(body, vec![b'x'; 1024], "the app's 1 KB body, unchanged");
    // The inbound policy allows GET only: POST is refused by the inbound
    // proxy, so the pair's policy is really in force.
    assert_eq!(request(pair.port, "POST").0, 403);
}

/// The resident pages (KiB) of `pid`'s binary that it can give back, read
/// as the proxy itself reads them.
fn releasable_resident_kib(pid: u32) -> u64 {
    let binary = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    osm_proxy::memory::releasable(&smaps, &binary.to_string_lossy())
        .iter()
        .map(|mapping| mapping.resident_kib)
        .sum()
}

/// The CPU time `pid` has used so far, as the harness reads it.
fn cpu_used(pid: u32) -> Duration {
    Duration::from_secs_f64(procs::usage(pid).cpu_ticks as f64 / procs::ticks_per_second())
}

/// Waits until every proxy's releasable resident code is below `than`
/// (KiB, one per proxy), failing with `what` after `limit`.
fn wait_given_back(pair: &paths::RunningPath, than: &[u64], limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let now = releasable_resident(pair);
        if now.iter().zip(than).all(|(now, than)| now < than) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "resident code {now:?} KiB, {than:?} {what}: not given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn releasable_resident(pair: &paths::RunningPath) -> Vec<u64> {
    pair.proxies
        .iter()
        .map(|p| releasable_resident_kib(p.pid()))
        .collect()
}

/// Both proxies give back the pages of their binary only starting used
/// (`START_SETTLES` after they turn ready); requests bring the pages they
/// need back, and once the proxies are quiet again those go too
/// (`LOOK_EVERY`, `QUIET_CPU`). Between and after, the pair carries
/// requests with its policy in force.
#[test]
fn the_osm_pair_gives_back_its_pages_at_start_and_when_quiet_again() {
    let dir = tempfile::tempdir().unwrap();
    pki::write(dir.path()).unwrap();
    let app_port = paths::free_port().unwrap();
    let _app = start_app(HARNESS.as_ref(), app_port, 1024, dir.path()).unwrap();
    let pair = paths::start(PathKind::Osm, &programs(osm_proxy()), dir.path(), app_port).unwrap();
    assert_eq!(request(pair.port, "GET").0, 200);
    // Until the release, a proxy's resident code only grows.
    let started = releasable_resident(&pair);
    let patience = std::env::var("OSM_TEST_PATIENCE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let start_settles = osm_proxy::memory::START_SETTLES;
    wait_given_back(
        &pair,
        &started,
        start_settles + patience,
        "at the first request",
    );

    // A burst right after the release, busy enough for the proxies' next
    // look (the one that sets what they keep) to see them at work.
    let before: Vec<Duration> = pair.proxies.iter().map(|p| cpu_used(p.pid())).collect();
    let busy = osm_proxy::memory::QUIET_CPU * 3;
    let deadline = Instant::now() + osm_proxy::memory::LOOK_EVERY / 2;
    while pair
        .proxies
        .iter()
        .zip(&before)
        .any(|(p, before)| cpu_used(p.pid()) - *before < busy)
    {
        assert!(
            Instant::now() < deadline,
            "the burst did not keep the proxies busy"
        );
        let (status, body) = request(pair.port, "GET");
        assert_eq!((status, body), (200, vec![b'x'; 1024]));
    }
    assert_eq!(request(pair.port, "POST").0, 403);
    let after_burst = releasable_resident(&pair);
    let look = osm_proxy::memory::LOOK_EVERY;
    wait_given_back(&pair, &after_burst, look * 3 + patience, "after the burst");

    let (status, body) = request(pair.port, "GET");
    assert_eq!((status, body), (200, vec![b'x'; 1024]));
    assert_eq!(request(pair.port, "POST").0, 403);
}

/// `osm-proxy@baseline` runs the other binary: here the main one could
/// not start (osm-bench itself), the baseline is the real proxy.
#[test]
fn the_baseline_path_runs_the_baseline_binary() {
    let dir = tempfile::tempdir().unwrap();
    pki::write(dir.path()).unwrap();
    let app_port = paths::free_port().unwrap();
    let _app = start_app(HARNESS.as_ref(), app_port, 64, dir.path()).unwrap();
    let mut programs = programs(HARNESS.into());
    let missing = paths::start(PathKind::OsmBaseline, &programs, dir.path(), app_port)
        .err()
        .unwrap();
    assert!(
        format!("{missing:#}").contains("--baseline-osm-proxy"),
        "{missing:#}"
    );
    programs.osm_proxy_baseline = Some(osm_proxy());
    let pair = paths::start(PathKind::OsmBaseline, &programs, dir.path(), app_port).unwrap();
    let (status, body) = request(pair.port, "GET");
    assert_eq!((status, body), (200, vec![b'x'; 64]));
}

/// The peers' pairs from bench/pairs/ (Debian's nginx and HAProxy, which
/// `.ci/run` and `bench/run` install): the same certificates, the 1 KB body
/// through both hops.
#[test]
fn the_nginx_and_haproxy_pairs_carry_requests_over_mtls() {
    let dir = tempfile::tempdir().unwrap();
    pki::write(dir.path()).unwrap();
    let app_port = paths::free_port().unwrap();
    let _app = start_app(HARNESS.as_ref(), app_port, 1024, dir.path()).unwrap();
    for kind in [PathKind::Nginx, PathKind::Haproxy] {
        let pair = paths::start(kind, &programs(osm_proxy()), dir.path(), app_port)
            .unwrap_or_else(|e| panic!("{}: {e:#}", kind.name()));
        assert_eq!(pair.proxies.len(), 2, "{}", kind.name());
        let (status, body) = request(pair.port, "GET");
        assert_eq!(status, 200, "{}", kind.name());
        assert_eq!(body, vec![b'x'; 1024], "{}", kind.name());
    }
}

#[test]
fn a_proxy_that_exits_is_reported_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    pki::write(dir.path()).unwrap();
    let app_port = paths::free_port().unwrap();
    let _app = start_app(HARNESS.as_ref(), app_port, 16, dir.path()).unwrap();
    // osm-bench itself refuses osm-proxy's flags and exits at once.
    let err = paths::start(
        PathKind::Osm,
        &programs(HARNESS.into()),
        dir.path(),
        app_port,
    )
    .err()
    .unwrap()
    .to_string();
    // Whichever of the two is seen first.
    assert!(
        err.starts_with("osm-outbound exited") || err.starts_with("osm-inbound exited"),
        "{err}"
    );
    assert!(err.contains("unexpected argument"), "{err}");
}

/// The resilience scenarios run for real (briefly): retries turn the
/// failing tenth of requests into successes within the budget, and the
/// failing endpoint is ejected.
#[test]
fn the_resilience_scenarios_show_retries_and_ejection_at_work() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = osm_bench::resilience::execute(
        &programs(osm_proxy()),
        dir.path(),
        50,
        std::time::Duration::from_secs(3),
    )
    .unwrap();
    let (off, on) = (&outcome.retries[0], &outcome.retries[1]);
    assert!(!off.retries && on.retries);
    assert_eq!(off.sent.requests, 150);
    assert_eq!(
        off.sent.failed, 15,
        "every 10th request fails without retries: {off:?}"
    );
    assert_eq!(on.sent.failed, 0, "and is retried with them: {on:?}");
    assert!(
        on.load_ratio > 1.05 && on.load_ratio < 1.2,
        "one retry per failure: {on:?}"
    );
    let e = &outcome.ejection;
    assert!(
        e.bad_endpoint_failures >= 3 && e.bad_endpoint_failures < 20,
        "ejected after its third failure in a row (the client saw {})",
        e.bad_endpoint_failures
    );
    let md = osm_bench::resilience::markdown(&outcome, "# test");
    assert!(
        md.contains("| 5xx, 2 retries | 50 rps | 150 | 150 |"),
        "{md}"
    );
}
