use std::net::SocketAddr;

use std::{sync::Arc, time::Instant};

use super::*;
use crate::telemetry::endpoint_series::series_may_be_expired;

#[test]
fn refused_clients_past_the_cap_are_counted_as_other() {
    let metrics = Metrics::new(&PodInfo::default());
    let client = |i: usize| IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
    for i in 0..MAX_SOURCE_IPS + 10 {
        metrics.record_plaintext_refused(client(i), 403);
    }
    // One already named keeps its series.
    metrics.record_plaintext_refused(client(0), 403);
    let text = metrics.render();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(INBOUND_PLAINTEXT_REFUSED_TOTAL))
        .collect();
    assert_eq!(series.len(), MAX_SOURCE_IPS + 1, "named ones and `other`");
    let value = |ip: &str| {
        series
            .iter()
            .find(|l| l.contains(&format!("source_ip=\"{ip}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(value("other").as_deref(), Some("10"));
    assert_eq!(value("10.0.0.0").as_deref(), Some("2"));
}

#[test]
fn a_cached_series_is_looked_up_again_once_it_may_have_expired() {
    let idle = Duration::from_secs(600);
    // (last used, now, look up again)
    let table = [
        (0, 0, false),
        (1_000, 299_999, false),
        (0, 300_000, true),
        (5_000, 900_000, true),
        // A clock read before the last use (another thread): not idle.
        (10_000, 9_000, false),
    ];
    for (last, now, expected) in table {
        assert_eq!(
            series_may_be_expired(last, now, idle),
            expected,
            "last used {last} ms, now {now} ms"
        );
    }
}

fn endpoint(pod: &str) -> EndpointSpec {
    EndpointSpec {
        addr: SocketAddr::from(([10, 0, 0, 1], 80)),
        identity: None,
        namespace: "shop".into(),
        service: "store".into(),
        pod: pod.into(),
        workload_kind: "Deployment".into(),
        workload_name: "store".into(),
        connect_timeout: Duration::from_secs(1),
        tls: Arc::default(),
    }
}

/// The value of `osm_request_total` for a destination pod in `text`.
fn requests_to(text: &str, pod: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(REQUEST_TOTAL))
        .find(|l| l.contains(&format!("destination_pod=\"{pod}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_removed_endpoints_series_expire_and_counting_resumes_if_it_comes_back() {
    let metrics = Metrics::with_endpoint_idle(&PodInfo::default(), Duration::from_millis(200));
    let (gone, gone_spec) = (RequestMetricsCache::default(), endpoint("store-old"));
    let (live, live_spec) = (RequestMetricsCache::default(), endpoint("store-new"));
    metrics.record_request(&gone, &gone_spec, 200, 1.0, Instant::now());
    metrics.record_retry("shop", "store");
    let text = metrics.render();
    assert_eq!(requests_to(&text, "store-old"), Some(1), "{text}");

    // The old pod gets no more requests; the new one keeps getting them.
    let mut sent_live = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        metrics.record_request(&live, &live_spec, 200, 1.0, Instant::now());
        sent_live += 1;
        let text = metrics.render();
        if requests_to(&text, "store-old").is_none() {
            break text;
        }
        assert!(Instant::now() < deadline, "the idle series stayed:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        requests_to(&text, "store-new"),
        Some(sent_live),
        "a series in use stays, with every request:\n{text}"
    );
    assert!(
        text.contains(REQUEST_RETRIES_TOTAL),
        "only per-endpoint series expire:\n{text}"
    );
    assert!(
        text.contains(&format!("# HELP {REQUEST_TOTAL}")),
        "still described:\n{text}"
    );

    // The same endpoint (its cached handles) counts again, from zero.
    metrics.record_request(&gone, &gone_spec, 200, 1.0, Instant::now());
    let text = metrics.render();
    assert_eq!(requests_to(&text, "store-old"), Some(1), "{text}");
    let count = text
        .lines()
        .find(|l| l.starts_with("osm_request_duration_ms_count") && l.contains("store-old"))
        .and_then(|l| l.rsplit(' ').next());
    assert_eq!(count, Some("1"), "{text}");
}
