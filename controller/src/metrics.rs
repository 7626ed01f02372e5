//! The controller's Prometheus metrics, in a registry of its own (no global
//! recorder, so tests can run several controllers in one process).

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const CONNECTED_PROXIES: &str = "osm_controller_connected_proxies";
/// Connected proxies that have not acknowledged the last batch sent to
/// them (sampled when scraped): 0 means every proxy runs what it was sent.
pub const PROXIES_OUT_OF_SYNC: &str = "osm_controller_proxies_out_of_sync";
pub const UPDATES_PUSHED_TOTAL: &str = "osm_controller_updates_pushed_total";
pub const PUSH_LATENCY: &str = "osm_controller_push_latency_ms";
pub const NACKS_TOTAL: &str = "osm_controller_nacks_total";
/// Resources proxies reported they enforce fail-closed (per acknowledgement).
pub const REJECTED_RESOURCES_TOTAL: &str = "osm_controller_rejected_resources_total";
pub const CERTIFICATES_ISSUED_TOTAL: &str = "osm_controller_certificates_issued_total";
pub const ERRORS_TOTAL: &str = "osm_controller_errors_total";
pub const SOURCE_SYNCS_TOTAL: &str = "osm_controller_source_syncs_total";
pub const SOURCE_PROBLEMS: &str = "osm_controller_source_problems";

const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("osm_controller", Level::INFO, Some(module_path!()));

/// The controller's registry and the handles used on hot paths.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pub connected_proxies: Gauge,
    pub proxies_out_of_sync: Gauge,
    pub updates_pushed: Counter,
    pub push_latency: Histogram,
    pub nacks: Counter,
    pub rejected_resources: Counter,
    pub certificates_issued: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PUSH_LATENCY.into()), LATENCY_BUCKETS_MS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &METADATA);
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        Self {
            connected_proxies: gauge(CONNECTED_PROXIES),
            proxies_out_of_sync: gauge(PROXIES_OUT_OF_SYNC),
            updates_pushed: counter(UPDATES_PUSHED_TOTAL),
            push_latency: recorder.register_histogram(&Key::from_name(PUSH_LATENCY), &METADATA),
            nacks: counter(NACKS_TOTAL),
            rejected_resources: counter(REJECTED_RESOURCES_TOTAL),
            certificates_issued: counter(CERTIFICATES_ISSUED_TOTAL),
            recorder,
            handle,
        }
    }

    /// Counts an error of some kind (`certify`, `stream`, `source`, ...).
    pub fn error(&self, kind: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(ERRORS_TOTAL, vec![Label::new("kind", kind)]),
                &METADATA,
            )
            .increment(1);
    }

    /// Records a sync of a source and how many objects it had to skip.
    pub fn source_synced(&self, source: &'static str, problems: usize) {
        let labels = vec![Label::new("source", source)];
        self.recorder
            .register_counter(
                &Key::from_parts(SOURCE_SYNCS_TOTAL, labels.clone()),
                &METADATA,
            )
            .increment(1);
        self.recorder
            .register_gauge(&Key::from_parts(SOURCE_PROBLEMS, labels), &METADATA)
            .set(problems as f64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}
