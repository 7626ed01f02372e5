//! The per-endpoint request series (`osm_request_total`,
//! `osm_request_duration_ms`), which carry the destination pod: every pod
//! a rollout replaces would leave series behind for the proxy's life
//! (memory, and a scrape that grows with every rollout). They live in a
//! registry of their own that drops a series idle for
//! [`ENDPOINT_SERIES_IDLE`], as Linkerd's proxy does; the proxy's other
//! metrics stay for the process's life.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::MetricKindMask;

use super::duration_histogram::DurationHistograms;

pub const REQUEST_TOTAL: &str = "osm_request_total";
pub const REQUEST_DURATION: &str = "osm_request_duration_ms";

/// How long a per-endpoint series stays without a request; a scrape after
/// that no longer shows it (a series that comes back starts from zero,
/// which `rate()` reads as a counter reset).
pub const ENDPOINT_SERIES_IDLE: Duration = Duration::from_secs(600);

/// The series of one (endpoint, response code).
#[derive(Debug)]
pub struct RequestSeries {
    total: Counter,
    duration: Histogram,
    /// Milliseconds since the registry's epoch.
    last_used_ms: AtomicU64,
}

/// Whether a cached series must be looked up in the registry again before
/// use (pure): the registry drops a series once idle for `idle` (counting
/// from when a scrape saw its last change), after which a cached handle
/// would count where no scrape looks. A series used within half of that
/// cannot have been dropped; one idle longer is looked up again, which
/// finds it, or makes it anew if it was dropped.
pub fn series_may_be_expired(last_used_ms: u64, now_ms: u64, idle: Duration) -> bool {
    let half = u64::try_from(idle.as_millis() / 2).unwrap_or(u64::MAX);
    now_ms.saturating_sub(last_used_ms) >= half
}

/// Per-endpoint cache of request series, so the request path does not look
/// labels up in the registry. Read without locks; a new response code copies
/// the small map.
#[derive(Debug, Default)]
pub struct RequestMetricsCache {
    // None until the endpoint's first request: most endpoints of a big
    // config are never called, and an empty map costs an allocation each.
    by_code: ArcSwapOption<HashMap<u16, Arc<RequestSeries>>>,
}

/// The registry of the per-endpoint series.
pub struct EndpointSeries {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    durations: DurationHistograms,
    idle: Duration,
    epoch: Instant,
}

impl EndpointSeries {
    pub fn new(idle: Duration) -> Self {
        let recorder = PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::COUNTER, Some(idle))
            .build_recorder();
        recorder.describe_counter(
            REQUEST_TOTAL.into(),
            None,
            "HTTP requests sent through the mesh, by source, destination and response code".into(),
        );
        Self {
            handle: recorder.handle(),
            recorder,
            durations: DurationHistograms::new(
                REQUEST_DURATION,
                "Time from request to response headers",
                idle,
            ),
            idle,
            epoch: Instant::now(),
        }
    }

    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        self.durations.render(&mut text);
        text
    }

    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
        self.durations.expire(Instant::now());
    }

    /// Records one request answered with `code`, ended `at` (the caller's
    /// clock read: none more on the request path); `labels` makes the
    /// series' labels when it must be looked up.
    pub fn record(
        &self,
        cache: &RequestMetricsCache,
        code: u16,
        millis: f64,
        at: Instant,
        labels: impl FnOnce() -> Vec<Label>,
        metadata: &Metadata<'static>,
    ) {
        let since_epoch = at.saturating_duration_since(self.epoch);
        let now_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        let record = |s: &RequestSeries| {
            s.last_used_ms.store(now_ms, Ordering::Relaxed);
            s.total.increment(1);
            s.duration.record(millis);
        };
        match cache.by_code.load().as_ref().and_then(|m| m.get(&code)) {
            Some(series)
                if !series_may_be_expired(
                    series.last_used_ms.load(Ordering::Relaxed),
                    now_ms,
                    self.idle,
                ) =>
            {
                record(series)
            }
            _ => record(&self.register(cache, code, now_ms, labels(), metadata)),
        }
    }

    #[cold]
    fn register(
        &self,
        cache: &RequestMetricsCache,
        code: u16,
        now_ms: u64,
        mut labels: Vec<Label>,
        metadata: &Metadata<'static>,
    ) -> Arc<RequestSeries> {
        labels.push(Label::new("response_code", code.to_string()));
        let series = Arc::new(RequestSeries {
            total: self
                .recorder
                .register_counter(&Key::from_parts(REQUEST_TOTAL, labels.clone()), metadata),
            duration: Histogram::from_arc(self.durations.register(labels)),
            last_used_ms: AtomicU64::new(now_ms),
        });
        // The newest wins: an entry it replaces may be of a dropped series.
        cache.by_code.rcu(|map| {
            let mut map = map.as_deref().cloned().unwrap_or_default();
            map.insert(code, series.clone());
            Some(Arc::new(map))
        });
        series
    }
}
