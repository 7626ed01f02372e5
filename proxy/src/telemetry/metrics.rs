//! The proxy's metrics, in a registry of its own (no global recorder, so
//! several proxies can share a process in tests).
//!
//! `osm_request_total` and `osm_request_duration_ms` have OSM's names and
//! labels and are recorded by the client-side (outbound) proxy, which knows
//! both ends from trusted sources: itself, and the controller's description
//! of the endpoint it chose. Each request is counted once in the mesh.
//! Those two live in a registry of their own, whose idle series expire
//! ([`super::endpoint_series`]).

use std::{collections::HashSet, net::IpAddr, sync::Mutex, time::Duration};

use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::endpoint_series::EndpointSeries;
pub use super::endpoint_series::{
    ENDPOINT_SERIES_IDLE, REQUEST_DURATION, REQUEST_TOTAL, RequestMetricsCache,
};

use crate::upstream::spec::EndpointSpec;

pub const TCP_CONNECTIONS_TOTAL: &str = "osm_tcp_connections_total";
pub const TCP_CONNECTIONS_OPEN: &str = "osm_tcp_connections_open";
pub const TCP_BYTES_TOTAL: &str = "osm_tcp_bytes_total";
pub const INBOUND_DENIED_TOTAL: &str = "osm_inbound_denied_total";
pub const OUTBOUND_REFUSED_TOTAL: &str = "osm_outbound_refused_total";
pub const ACCESS_LOG_DROPPED_TOTAL: &str = "osm_access_log_dropped_total";
pub const CONFIG_RELOADS_TOTAL: &str = "osm_config_reloads_total";
pub const CONFIG_RESOURCES_REJECTED: &str = "osm_config_resources_rejected";
pub const REQUEST_RETRIES_TOTAL: &str = "osm_request_retries_total";
pub const REQUEST_RETRIES_SKIPPED_TOTAL: &str = "osm_request_retries_skipped_total";
pub const REQUEST_UNPROCESSED_RESENT_TOTAL: &str = "osm_request_unprocessed_resent_total";
pub const OUTLIER_EJECTIONS_TOTAL: &str = "osm_outlier_ejections_total";
pub const REQUEST_MIRRORS_TOTAL: &str = "osm_request_mirrors_total";
pub const TRACE_SPANS_EXPORTED_TOTAL: &str = "osm_trace_spans_exported_total";
pub const TRACE_SPANS_DROPPED_TOTAL: &str = "osm_trace_spans_dropped_total";
pub const INBOUND_PLAINTEXT_REFUSED_TOTAL: &str = "osm_inbound_plaintext_refused_requests_total";

/// Client addresses named in `source_ip` of refused plaintext requests;
/// further ones are counted as `other`, so strangers cannot grow the
/// registry without bound.
pub const MAX_SOURCE_IPS: usize = 256;

static METADATA: Metadata<'static> = Metadata::new("osm_proxy", Level::INFO, Some(module_path!()));

/// Who this proxy is, for the `source_*` labels.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub pod: String,
}

/// The proxy's metrics registry.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The per-endpoint request series, which expire when idle.
    endpoints: EndpointSeries,
    source: Vec<Label>,
    pod: PodInfo,
    /// Addresses already named by a `source_ip` label.
    source_ips: Mutex<HashSet<IpAddr>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

// === impl Metrics ===

impl Metrics {
    pub fn new(pod: &PodInfo) -> Self {
        Self::with_endpoint_idle(pod, ENDPOINT_SERIES_IDLE)
    }

    /// Metrics whose per-endpoint series expire after `endpoint_idle`.
    pub fn with_endpoint_idle(pod: &PodInfo, endpoint_idle: Duration) -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let source = vec![
            Label::new("source_namespace", pod.namespace.clone()),
            Label::new("source_kind", pod.kind.clone()),
            Label::new("source_name", pod.name.clone()),
            Label::new("source_pod", pod.pod.clone()),
        ];
        let this = Self {
            recorder,
            handle,
            endpoints: EndpointSeries::new(endpoint_idle),
            source,
            pod: pod.clone(),
            source_ips: Mutex::default(),
        };
        this.describe();
        this
    }

    fn describe(&self) {
        let r = &self.recorder;
        r.describe_counter(
            TCP_CONNECTIONS_TOTAL.into(),
            None,
            "Opaque TCP connections proxied".into(),
        );
        r.describe_gauge(
            TCP_CONNECTIONS_OPEN.into(),
            None,
            "Opaque TCP connections open now".into(),
        );
        r.describe_counter(
            TCP_BYTES_TOTAL.into(),
            Some(Unit::Bytes),
            "Bytes proxied over opaque TCP connections".into(),
        );
        r.describe_counter(
            INBOUND_DENIED_TOTAL.into(),
            None,
            "Inbound requests and connections denied by authorization".into(),
        );
        r.describe_counter(
            OUTBOUND_REFUSED_TOTAL.into(),
            None,
            "Outbound requests and connections refused before reaching an endpoint".into(),
        );
        r.describe_counter(
            ACCESS_LOG_DROPPED_TOTAL.into(),
            None,
            "Access-log lines dropped because the writer fell behind".into(),
        );
        r.describe_counter(
            CONFIG_RELOADS_TOTAL.into(),
            None,
            "Config changes, by result".into(),
        );
        r.describe_counter(
            REQUEST_RETRIES_TOTAL.into(),
            None,
            "Retries of HTTP requests (each request counts once in osm_request_total), by source and destination service".into(),
        );
        r.describe_counter(
            REQUEST_UNPROCESSED_RESENT_TOTAL.into(),
            None,
            "Requests sent once more because a try left them unprocessed (no connection, a refused stream, or the server's proxy could not reach its application), by source and destination service".into(),
        );
        r.describe_counter(
            REQUEST_RETRIES_SKIPPED_TOTAL.into(),
            None,
            "Retries a policy asked for but the retry budget or maxRetries refused, by reason"
                .into(),
        );
        r.describe_counter(
            REQUEST_MIRRORS_TOTAL.into(),
            None,
            "Copies of requests for route mirrors (RequestMirror), by destination set and outcome: answered or failed (once sent), skipped (a body too large or streamed to copy) or no_endpoint".into(),
        );
        r.describe_counter(
            OUTLIER_EJECTIONS_TOTAL.into(),
            None,
            "Endpoints ejected from load balancing by outlier detection, by destination service"
                .into(),
        );
        r.describe_counter(
            TRACE_SPANS_EXPORTED_TOTAL.into(),
            None,
            "Spans accepted by the trace collector".into(),
        );
        r.describe_counter(
            TRACE_SPANS_DROPPED_TOTAL.into(),
            None,
            "Spans not exported, by reason: queue_full (the exporter fell behind) or export_failed (the collector could not be reached or refused them)".into(),
        );
        r.describe_counter(
            INBOUND_PLAINTEXT_REFUSED_TOTAL.into(),
            None,
            "HTTP requests from outside the mesh (plaintext) this proxy refused, by the client's address (the only thing known of the client: the request never went through a client proxy, so osm_request_total does not have it) and this pod as destination".into(),
        );
        r.describe_gauge(
            CONFIG_RESOURCES_REJECTED.into(),
            None,
            "Resources of the controller's config this proxy could not build, enforced fail-closed"
                .into(),
        );
    }

    /// The Prometheus text exposition (the two registries hold different
    /// metric names, so each family stays in one piece).
    pub fn render(&self) -> String {
        let mut text = self.endpoints.render();
        text.push_str(&self.handle.render());
        text
    }

    /// Drops idle series (also done by every render); call periodically so
    /// a proxy nobody scrapes does not keep series of pods long gone.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
        self.endpoints.run_upkeep();
    }

    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    /// Records an HTTP request from `client`, outside the mesh, answered
    /// with `code` by this proxy's refusal.
    pub fn record_plaintext_refused(&self, client: IpAddr, code: u16) {
        let source_ip = {
            let mut seen = self.source_ips.lock().unwrap_or_else(|e| e.into_inner());
            if seen.contains(&client) || seen.len() < MAX_SOURCE_IPS {
                seen.insert(client);
                client.to_string()
            } else {
                "other".to_string()
            }
        };
        let pod = &self.pod;
        let labels = vec![
            Label::new("source_ip", source_ip),
            Label::new("destination_namespace", pod.namespace.clone()),
            Label::new("destination_kind", pod.kind.clone()),
            Label::new("destination_name", pod.name.clone()),
            Label::new("destination_pod", pod.pod.clone()),
            Label::new("response_code", code.to_string()),
        ];
        self.counter(INBOUND_PLAINTEXT_REFUSED_TOTAL, labels)
            .increment(1);
    }

    /// Who this proxy is.
    pub fn pod(&self) -> &PodInfo {
        &self.pod
    }

    /// The counters of the span exporter.
    pub fn trace_counters(&self) -> crate::telemetry::trace::export::Counters {
        let dropped = |reason: &'static str| {
            self.counter(
                TRACE_SPANS_DROPPED_TOTAL,
                vec![Label::new("reason", reason)],
            )
        };
        crate::telemetry::trace::export::Counters {
            exported: self.counter(TRACE_SPANS_EXPORTED_TOTAL, vec![]),
            queue_full: dropped("queue_full"),
            export_failed: dropped("export_failed"),
        }
    }

    fn destination_labels(&self, endpoint: &EndpointSpec) -> Vec<Label> {
        let mut labels = self.source.clone();
        labels.extend([
            Label::new("destination_namespace", endpoint.namespace.to_string()),
            Label::new("destination_kind", endpoint.workload_kind.to_string()),
            Label::new("destination_name", endpoint.workload_name.to_string()),
            Label::new("destination_pod", endpoint.pod.to_string()),
        ]);
        labels
    }

    /// Records one HTTP request answered by `endpoint`, ended `at`.
    pub fn record_request(
        &self,
        cache: &RequestMetricsCache,
        endpoint: &EndpointSpec,
        code: u16,
        millis: f64,
        at: std::time::Instant,
    ) {
        self.endpoints.record(
            cache,
            code,
            millis,
            at,
            || self.destination_labels(endpoint),
            &METADATA,
        );
    }

    /// Counts one retry of a request to a service.
    pub fn record_retry(&self, namespace: &str, service: &str) {
        let mut labels = self.source.clone();
        labels.extend([
            Label::new("destination_namespace", namespace.to_string()),
            Label::new("destination_service", service.to_string()),
        ]);
        self.counter(REQUEST_RETRIES_TOTAL, labels).increment(1);
    }

    /// Counts a request sent once more after a try left it unprocessed.
    pub fn record_unprocessed_resent(&self, namespace: &str, service: &str) {
        let mut labels = self.source.clone();
        labels.extend([
            Label::new("destination_namespace", namespace.to_string()),
            Label::new("destination_service", service.to_string()),
        ]);
        self.counter(REQUEST_UNPROCESSED_RESENT_TOTAL, labels)
            .increment(1);
    }

    /// Counts a retry the budget (`budget`) or `maxRetries` refused.
    pub fn record_retry_skipped(&self, reason: &'static str) {
        self.counter(
            REQUEST_RETRIES_SKIPPED_TOTAL,
            vec![Label::new("reason", reason)],
        )
        .increment(1);
    }

    /// The counter of mirror copies to `set` with `outcome`.
    pub fn mirror_counter(&self, set: &str, outcome: &'static str) -> Counter {
        self.counter(
            REQUEST_MIRRORS_TOTAL,
            vec![
                Label::new("destination_set", set.to_string()),
                Label::new("outcome", outcome),
            ],
        )
    }

    /// Counts a mirror copy to `set` by outcome.
    pub fn record_mirror(&self, set: &str, outcome: &'static str) {
        self.mirror_counter(set, outcome).increment(1);
    }

    /// Counts one ejection of an endpoint of `set` ("<ns>/<service>:<port>").
    pub fn record_ejection(&self, set: &str) {
        self.counter(
            OUTLIER_EJECTIONS_TOTAL,
            vec![Label::new("destination_set", set.to_string())],
        )
        .increment(1);
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
