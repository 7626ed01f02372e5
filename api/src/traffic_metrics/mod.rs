//! SMI TrafficMetrics (`metrics.smi-spec.io/v1alpha1`) from the sidecars'
//! series: which requests a pod, a deployment or a namespace received and
//! sent, and from or to whom (edges), as the spec's objects. Pure: the
//! series come from wherever the caller read them (the proxies scraped
//! directly, or Prometheus).
//!
//! Every request is counted once, by the client's proxy
//! (`osm_request_total` and `osm_request_duration_ms` carry both ends), so
//! both directions of an edge read the same series. Success is a 2xx
//! answer, as the smi-metrics reference server counts it; everything else
//! is a failure.

use std::collections::BTreeMap;

pub mod api;
pub mod refused;
pub mod scrape;

use serde_json::{Value, json};

pub const API_VERSION: &str = "metrics.smi-spec.io/v1alpha1";

/// One end of a request, as the series label it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, ... (empty when unknown).
    pub kind: String,
    pub name: String,
    pub pod: String,
}

/// Requests between two workloads with one response code.
#[derive(Debug, Clone, PartialEq)]
pub struct Requests {
    pub source: Workload,
    pub destination: Workload,
    pub code: u16,
    pub count: f64,
    /// Cumulative histogram buckets of the duration in ms: (upper bound,
    /// count at or below it), `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
}

const REQUEST_TOTAL: &str = "osm_request_total";
const REQUEST_DURATION: &str = "osm_request_duration_ms";

/// The request series of one proxy's `/stats/prometheus` text
/// (`osm_request_total` with the `osm_request_duration_ms` histogram of
/// the same labels); other series and lines that do not parse are skipped.
pub fn from_exposition(text: &str) -> Vec<Requests> {
    read_exposition(text).0
}

/// [`from_exposition`], and the plaintext requests the proxy refused
/// ([`refused`]).
pub fn read_exposition(text: &str) -> (Vec<Requests>, Vec<refused::Refused>) {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return (Vec::new(), Vec::new());
    };
    (requests_of(&scrape), refused::of(&scrape))
}

/// One end of a request as a series labels it (`source` or `destination`).
fn workload_labelled(labels: &prometheus_parse::Labels, side: &str) -> Workload {
    let get = |k: &str| labels.get(&format!("{side}_{k}")).unwrap_or("").to_string();
    Workload {
        namespace: get("namespace"),
        kind: get("kind"),
        name: get("name"),
        pod: get("pod"),
    }
}

/// A sample's value when it is a count.
fn count_of(value: &prometheus_parse::Value) -> Option<f64> {
    match value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => {
            (v.is_finite() && *v >= 0.0).then_some(*v)
        }
        _ => None,
    }
}

fn requests_of(scrape: &prometheus_parse::Scrape) -> Vec<Requests> {
    let ends = |l: &prometheus_parse::Labels| {
        (
            workload_labelled(l, "source"),
            workload_labelled(l, "destination"),
            l.get("response_code")
                .unwrap_or("")
                .parse::<u16>()
                .unwrap_or(0),
        )
    };
    let mut histograms: BTreeMap<(Workload, Workload, u16), Vec<(f64, f64)>> = BTreeMap::new();
    for sample in &scrape.samples {
        if let (REQUEST_DURATION, prometheus_parse::Value::Histogram(buckets)) =
            (sample.metric.as_str(), &sample.value)
        {
            let mut b: Vec<(f64, f64)> = buckets.iter().map(|h| (h.less_than, h.count)).collect();
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            histograms.insert(ends(&sample.labels), b);
        }
    }
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == REQUEST_TOTAL)
        .filter_map(|s| {
            let count = count_of(&s.value)?;
            let key = ends(&s.labels);
            let buckets = histograms.get(&key).cloned().unwrap_or_default();
            let (source, destination, code) = key;
            Some(Requests {
                source,
                destination,
                code,
                count,
                buckets,
            })
        })
        .collect()
}

/// What the metrics are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Deployment,
    Namespace,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => Some(Kind::Pod),
            "deployment" | "deployments" | "deploy" => Some(Kind::Deployment),
            "namespace" | "namespaces" | "ns" => Some(Kind::Namespace),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::Namespace => "Namespace",
        }
    }

    /// The resource of this kind a workload belongs to: (namespace, name).
    fn of(self, w: &Workload) -> Option<Resource> {
        match self {
            Kind::Pod => Some((w.namespace.clone(), w.pod.clone())),
            Kind::Deployment => {
                (w.kind == "Deployment").then(|| (w.namespace.clone(), w.name.clone()))
            }
            Kind::Namespace => Some((String::new(), w.namespace.clone())),
        }
    }
}

/// An edge's totals.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    success: f64,
    failure: f64,
    buckets: BTreeMap<OrderedBound, f64>,
}

/// A bucket bound as a map key (bounds are finite or +Inf, never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedBound(f64);

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Totals {
    fn add(&mut self, r: &Requests) {
        if (200..300).contains(&r.code) {
            self.success += r.count;
        } else {
            self.failure += r.count;
        }
        for (bound, count) in &r.buckets {
            *self.buckets.entry(OrderedBound(*bound)).or_default() += count;
        }
    }

    /// Prometheus's `histogram_quantile`: linear within the bucket that
    /// holds the rank; None without observations.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.values().last().copied().unwrap_or(0.0);
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for (bound, count) in &self.buckets {
            if *count >= rank {
                if bound.0.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = count - lower.1;
                let share = if in_bucket > 0.0 {
                    (rank - lower.1) / in_bucket
                } else {
                    0.0
                };
                return Some(lower.0 + (bound.0 - lower.0) * share);
            }
            lower = (bound.0, *count);
        }
        Some(lower.0)
    }
}

/// A count or a latency as a Kubernetes quantity, as the SMI SDK writes
/// them: whole numbers plain, others in thousandths (`10.5` -> `10500m`).
pub fn quantity(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{}m", (v * 1000.0).round() as i64)
    }
}

/// A resource: (namespace, name); the namespace empty for namespaces.
type Resource = (String, String);

/// Which way an edge's requests went, seen from the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    /// Received from the edge's resource.
    From,
    /// Sent to it.
    To,
}

/// The TrafficMetrics of the resources of `kind` (one, when `name` is
/// given) in `namespace` (any when empty, or for namespaces): with `edges`, one item per
/// peer and direction; without, all the traffic each one received
/// (`edge: {direction: from, resource: null}`), as the spec's plain GET.
/// Returns a TrafficMetricsList.
pub fn traffic_metrics(
    requests: &[Requests],
    kind: Kind,
    namespace: &str,
    name: Option<&str>,
    edges: bool,
    timestamp: &str,
    window: &str,
) -> Value {
    let selected = |r: &Resource| {
        (kind == Kind::Namespace || namespace.is_empty() || r.0 == namespace)
            && name.is_none_or(|n| r.1 == n)
    };
    // (resource, direction, peer) -> totals; peer None: everyone.
    let mut totals: BTreeMap<(Resource, Direction, Option<Resource>), Totals> = BTreeMap::new();
    for r in requests {
        let (Some(src), Some(dst)) = (kind.of(&r.source), kind.of(&r.destination)) else {
            continue;
        };
        if selected(&dst) {
            let peer = edges.then(|| src.clone());
            totals
                .entry((dst.clone(), Direction::From, peer))
                .or_default()
                .add(r);
        }
        if edges && selected(&src) {
            totals
                .entry((src, Direction::To, Some(dst)))
                .or_default()
                .add(r);
        }
    }
    let reference = |(ns, n): &Resource| {
        let mut v = json!({"kind": kind.name(), "name": n});
        if kind != Kind::Namespace {
            v["namespace"] = json!(ns);
        }
        v
    };
    let items: Vec<Value> = totals
        .iter()
        .map(|((resource, direction, peer), t)| {
            let rate = if t.success + t.failure > 0.0 {
                t.success / (t.success + t.failure)
            } else {
                0.0
            };
            let mut metrics = vec![
                json!({"name": "success_count", "value": quantity(t.success)}),
                json!({"name": "failure_count", "value": quantity(t.failure)}),
                json!({"name": "success_rate", "value": quantity((rate * 1000.0).round() / 1000.0)}),
            ];
            for (q, metric) in [
                (0.5, "p50_response_latency"),
                (0.9, "p90_response_latency"),
                (0.99, "p99_response_latency"),
            ] {
                if let Some(ms) = t.quantile(q) {
                    metrics.push(json!({"name": metric, "unit": "ms", "value": quantity((ms * 1000.0).round() / 1000.0)}));
                }
            }
            json!({
                "kind": "TrafficMetrics",
                "apiVersion": API_VERSION,
                "metadata": {"name": resource.1, "namespace": resource.0},
                "timestamp": timestamp,
                "window": window,
                "resource": reference(resource),
                "edge": {
                    "direction": match direction { Direction::From => "from", Direction::To => "to" },
                    // Every request is measured by the client's proxy.
                    "side": "client",
                    "resource": peer.as_ref().map(reference),
                },
                "metrics": metrics,
            })
        })
        .collect();
    json!({
        "kind": "TrafficMetricsList",
        "apiVersion": API_VERSION,
        "metadata": {},
        "resource": {"kind": kind.name(), "namespace": namespace},
        "items": items,
    })
}

#[cfg(test)]
mod tests;
