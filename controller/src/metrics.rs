//! The controller's Prometheus metrics, in a registry of its own (no global
//! recorder, so tests can run several controllers in one process).
//!
//! Each event is recorded under this mesh's name (`osm_controller_*`) and,
//! where OSM v1.2 had a metric for it, under OSM's name too ([`osm`]), so
//! alerts and dashboards written for OSM keep working. Recording goes
//! through the methods below, so the two never disagree.

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
/// Gauge, by `root` (SHA-256 fingerprint): certificates issued from that
/// root that have not expired (sampled when scraped).
pub const LIVE_CERTIFICATES: &str = "osm_controller_live_certificates";
/// Gauge, by `phase` (steady, distributing, retiring): 1 for the phase
/// the root rotation is in, 0 for the others.
pub const CA_ROTATION_PHASE: &str = "osm_controller_ca_rotation_phase";

/// OSM v1.2's names (`pkg/metricsstore`), for what this controller does
/// the same. Per-proxy labels OSM put on some (`proxy_uuid`, `identity`)
/// are left out: one series per proxy does not scale to 10,000 proxies.
pub mod osm {
    /// Gauge: proxies connected now.
    pub const PROXY_CONNECT_COUNT: &str = "osm_proxy_connect_count";
    /// Counter: streams opened by a proxy that already held a config.
    pub const PROXY_RECONNECT_COUNT: &str = "osm_proxy_reconnect_count";
    /// Counter: config batches sent to proxies.
    pub const PROXY_RESPONSE_SEND_SUCCESS_COUNT: &str = "osm_proxy_response_send_success_count";
    /// Counter: batches a proxy refused (NACK).
    pub const PROXY_RESPONSE_SEND_ERROR_COUNT: &str = "osm_proxy_response_send_error_count";
    /// Histogram (seconds): from a change to its batch being sent.
    pub const PROXY_CONFIG_UPDATE_TIME: &str = "osm_proxy_config_update_time";
    /// Counter: messages from proxies (acknowledgements and refusals).
    pub const PROXY_XDS_REQUEST_COUNT: &str = "osm_proxy_xds_request_count";
    /// Counter: streams refused over `sidecar.maxDataPlaneConnections`.
    pub const PROXY_MAX_CONNECTIONS_REJECTED: &str = "osm_proxy_max_connections_rejected";
    /// Counter: certificates issued.
    pub const CERT_ISSUED_COUNT: &str = "osm_cert_issued_count";
    /// Histogram (seconds): time to issue one certificate.
    pub const CERT_ISSUED_TIME: &str = "osm_cert_issued_time";
    /// Counter, by `err_code`: errors (this mesh's error kinds as codes).
    pub const ERROR_ERR_CODE_COUNT: &str = "osm_error_err_code_count";
    /// Counter, by `kind` and `success`: validating webhook answers.
    pub const ADMISSION_WEBHOOK_RESPONSE_TOTAL: &str = "osm_admission_webhook_response_total";
}

const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("osm_controller", Level::INFO, Some(module_path!()));

/// The controller's registry and the handles used on hot paths.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    connected_proxies: Gauge,
    pub proxies_out_of_sync: Gauge,
    updates_pushed: Counter,
    push_latency: Histogram,
    nacks: Counter,
    pub rejected_resources: Counter,
    certificates_issued: Counter,
    osm: OsmNames,
}

/// Handles of OSM's names.
struct OsmNames {
    connect_count: Gauge,
    reconnect_count: Counter,
    send_success: Counter,
    send_error: Counter,
    config_update_time: Histogram,
    xds_requests: Counter,
    max_connections_rejected: Counter,
    cert_issued_count: Counter,
    cert_issued_time: Histogram,
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
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(osm::PROXY_CONFIG_UPDATE_TIME.into()),
                    SECONDS_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(osm::CERT_ISSUED_TIME.into()),
                    SECONDS_BUCKETS,
                )
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &METADATA);
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        let histogram =
            |name: &'static str| recorder.register_histogram(&Key::from_name(name), &METADATA);
        let osm = OsmNames {
            connect_count: gauge(osm::PROXY_CONNECT_COUNT),
            reconnect_count: counter(osm::PROXY_RECONNECT_COUNT),
            send_success: counter(osm::PROXY_RESPONSE_SEND_SUCCESS_COUNT),
            send_error: counter(osm::PROXY_RESPONSE_SEND_ERROR_COUNT),
            config_update_time: histogram(osm::PROXY_CONFIG_UPDATE_TIME),
            xds_requests: counter(osm::PROXY_XDS_REQUEST_COUNT),
            max_connections_rejected: counter(osm::PROXY_MAX_CONNECTIONS_REJECTED),
            cert_issued_count: counter(osm::CERT_ISSUED_COUNT),
            cert_issued_time: histogram(osm::CERT_ISSUED_TIME),
        };
        Self {
            connected_proxies: gauge(CONNECTED_PROXIES),
            proxies_out_of_sync: gauge(PROXIES_OUT_OF_SYNC),
            updates_pushed: counter(UPDATES_PUSHED_TOTAL),
            push_latency: recorder.register_histogram(&Key::from_name(PUSH_LATENCY), &METADATA),
            nacks: counter(NACKS_TOTAL),
            rejected_resources: counter(REJECTED_RESOURCES_TOTAL),
            certificates_issued: counter(CERTIFICATES_ISSUED_TOTAL),
            osm,
            recorder,
            handle,
        }
    }

    /// Counts an error of some kind (`certify`, `stream`, `source`, ...).
    pub fn error(&self, kind: &'static str) {
        for (name, label) in [
            (ERRORS_TOTAL, "kind"),
            (osm::ERROR_ERR_CODE_COUNT, "err_code"),
        ] {
            self.recorder
                .register_counter(
                    &Key::from_parts(name, vec![Label::new(label, kind)]),
                    &METADATA,
                )
                .increment(1);
        }
    }

    /// A proxy opened its config stream; `reconnect` when it already held
    /// a config (from an earlier stream).
    pub fn proxy_connected(&self, reconnect: bool) {
        self.connected_proxies.increment(1.0);
        self.osm.connect_count.increment(1.0);
        if reconnect {
            self.osm.reconnect_count.increment(1);
        }
    }

    pub fn proxy_disconnected(&self) {
        self.connected_proxies.decrement(1.0);
        self.osm.connect_count.decrement(1.0);
    }

    /// A batch was sent; `since_change` is the time from the change it
    /// carries (None for a first, full batch).
    pub fn config_pushed(&self, since_change: Option<std::time::Duration>) {
        self.updates_pushed.increment(1);
        self.osm.send_success.increment(1);
        if let Some(d) = since_change {
            self.push_latency.record(d.as_secs_f64() * 1000.0);
            self.osm.config_update_time.record(d.as_secs_f64());
        }
    }

    /// A proxy acknowledged (or, `refused`, NACKed) a batch.
    pub fn proxy_answered(&self, refused: bool) {
        self.osm.xds_requests.increment(1);
        if refused {
            self.nacks.increment(1);
            self.osm.send_error.increment(1);
        }
    }

    /// A stream refused over `sidecar.maxDataPlaneConnections`.
    pub fn stream_over_limit(&self) {
        self.osm.max_connections_rejected.increment(1);
    }

    /// The validating webhook answered a review of a `kind` object.
    pub fn admission_answered(&self, kind: &str, allowed: bool) {
        let labels = vec![
            Label::new("kind", kind.to_string()),
            Label::new("success", if allowed { "true" } else { "false" }),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts(osm::ADMISSION_WEBHOOK_RESPONSE_TOTAL, labels),
                &METADATA,
            )
            .increment(1);
    }

    /// A certificate issued, in `took`.
    pub fn certificate_issued(&self, took: std::time::Duration) {
        self.certificates_issued.increment(1);
        self.osm.cert_issued_count.increment(1);
        self.osm.cert_issued_time.record(took.as_secs_f64());
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

    /// Sets how many live certificates chain to `root` (its fingerprint).
    pub fn live_certificates(&self, root: &str, live: usize) {
        self.recorder
            .register_gauge(
                &Key::from_parts(
                    LIVE_CERTIFICATES,
                    vec![Label::new("root", root.to_string())],
                ),
                &METADATA,
            )
            .set(live as f64);
    }

    /// The root rotation is in `phase`.
    pub fn ca_rotation_phase(&self, phase: &str) {
        for name in ["steady", "distributing", "retiring"] {
            self.recorder
                .register_gauge(
                    &Key::from_parts(CA_ROTATION_PHASE, vec![Label::new("phase", name)]),
                    &METADATA,
                )
                .set(if name == phase { 1.0 } else { 0.0 });
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}
