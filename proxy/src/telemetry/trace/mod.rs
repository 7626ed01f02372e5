//! Distributed tracing: each proxy continues or starts the trace of an
//! HTTP request (W3C trace context or B3, [`context`]), records one span
//! per request (client kind in the client's proxy, server kind in the
//! server's), and exports spans in batches off the request path
//! ([`export`]) as Zipkin v2 or OTLP/HTTP JSON ([`encode`]).
//!
//! Sampling is decided once, where a trace starts, and travels with it: a
//! request that carries a decision keeps it; one without is sampled with
//! the mesh's `sampledFraction`, and the proxy writes a context carrying
//! that decision (sampled or not) so the proxies after it agree. With
//! tracing off, headers pass through untouched and nothing is recorded.

pub mod context;
pub mod encode;
pub mod export;

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::{Instant, SystemTime},
};

use arc_swap::ArcSwapOption;
use context::{Formats, Incoming, Written};
pub use encode::{Format, Kind, Span};
use http::Request;
use osm_api::v1;

use crate::telemetry::metrics::PodInfo;

/// Where spans go and how many requests start a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub format: Format,
    pub sampled_fraction: f64,
}

impl Settings {
    /// The proxy's reading of the config's tracing; Err says what is wrong.
    pub fn from_config(t: &v1::Tracing) -> Result<Self, String> {
        if t.address.is_empty() || t.address.contains(['/', ' ']) {
            return Err(format!("{:?} is not a collector host", t.address));
        }
        let port = u16::try_from(t.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{} is not a collector port", t.port))?;
        if !t.endpoint.starts_with('/')
            || http::uri::PathAndQuery::try_from(t.endpoint.as_str()).is_err()
        {
            return Err(format!("{:?} is not a path", t.endpoint));
        }
        if !(0.0..=1.0).contains(&t.sampled_fraction) {
            return Err(format!(
                "sampled fraction {} is not within 0 and 1",
                t.sampled_fraction
            ));
        }
        Ok(Self {
            host: t.address.clone(),
            port,
            path: t.endpoint.clone(),
            format: Format::of_endpoint(&t.endpoint),
            sampled_fraction: t.sampled_fraction,
        })
    }

    /// `host:port`, as the `Host` header and logs name it.
    pub fn collector(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How a proxy takes part in a request's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The request carries a decision not to sample: leave it alone.
    PassThrough,
    /// Write a new span into the request; record it when `sampled`.
    Span {
        /// Continue this trace (with the sender's span as parent), or start
        /// one.
        parent: Option<(u128, u64)>,
        sampled: bool,
        formats: Formats,
    },
}

/// What to do with a request's trace context; `roll` is uniform in [0, 1).
pub fn plan(incoming: Incoming, sampled_fraction: f64, roll: f64) -> Plan {
    let sample = || roll < sampled_fraction;
    match incoming {
        Incoming::Parent {
            sampled: Some(false),
            ..
        }
        | Incoming::Decision { sampled: false, .. } => Plan::PassThrough,
        Incoming::Parent {
            trace_id,
            span_id,
            sampled,
            formats,
        } => Plan::Span {
            parent: Some((trace_id, span_id)),
            sampled: sampled.unwrap_or_else(sample),
            formats,
        },
        Incoming::Decision {
            sampled: true,
            formats,
        } => Plan::Span {
            parent: None,
            sampled: true,
            formats: Formats {
                w3c: true,
                ..formats
            },
        },
        Incoming::None { formats } => Plan::Span {
            parent: None,
            sampled: sample(),
            formats: Formats {
                w3c: true,
                ..formats
            },
        },
    }
}

/// A sampled request in flight.
#[derive(Debug)]
pub struct ActiveSpan {
    written: Written,
    kind: Kind,
    name: String,
    started_at: SystemTime,
    started: Instant,
    request_tags: [(&'static str, String); 3],
}

/// The proxy's tracer; one per proxy, shared by every request.
pub struct Tracer {
    settings: Arc<ArcSwapOption<Settings>>,
    queue: OnceLock<Option<Arc<export::SpanBuffer>>>,
    counters: export::Counters,
    local_service: Arc<str>,
    /// The proxy's own workload, as `source_*` (client spans) or
    /// `destination_*` (server spans) tags.
    own: [(&'static str, &'static str, String); 4],
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("settings", &self.settings.load())
            .finish_non_exhaustive()
    }
}

impl Tracer {
    pub fn new(pod: &PodInfo, counters: export::Counters) -> Self {
        let local_service = match (pod.name.is_empty(), pod.namespace.is_empty()) {
            (false, false) => format!("{}.{}", pod.name, pod.namespace),
            _ => "osm-proxy".to_string(),
        };
        Self {
            settings: Arc::default(),
            queue: OnceLock::new(),
            counters,
            local_service: local_service.into(),
            own: [
                (
                    "source_namespace",
                    "destination_namespace",
                    pod.namespace.clone(),
                ),
                ("source_kind", "destination_kind", pod.kind.clone()),
                ("source_name", "destination_name", pod.name.clone()),
                ("source_pod", "destination_pod", pod.pod.clone()),
            ],
        }
    }

    /// Follows the config: None turns tracing off. The exporter thread
    /// starts the first time tracing is on.
    pub fn configure(&self, settings: Option<Settings>) {
        if self.settings.load().as_deref() == settings.as_ref() {
            return;
        }
        if let Some(s) = &settings {
            tracing::info!(collector = %s.collector(), path = %s.path, fraction = s.sampled_fraction, "tracing on");
            self.queue
                .get_or_init(|| export::start(self.settings.clone(), self.counters.clone()));
        } else {
            tracing::info!("tracing off");
        }
        self.settings.store(settings.map(Arc::new));
    }

    /// Takes part in the trace of `req` (writing the context the next hop
    /// reads); Some when this proxy records a span of it.
    pub fn start<B>(&self, kind: Kind, req: &mut Request<B>) -> Option<ActiveSpan> {
        let settings = self.settings.load();
        let settings = settings.as_deref()?;
        let incoming = context::extract(req.headers());
        let Plan::Span {
            parent,
            sampled,
            formats,
        } = plan(incoming, settings.sampled_fraction, fastrand::f64())
        else {
            return None;
        };
        let written = Written {
            trace_id: parent.map(|(t, _)| t).unwrap_or_else(new_trace_id),
            span_id: new_span_id(),
            parent_id: parent.map(|(_, s)| s),
            sampled,
        };
        context::inject(req.headers_mut(), &written, formats);
        if !sampled {
            return None;
        }
        let authority = crate::http_util::authority(req).unwrap_or("").to_string();
        Some(ActiveSpan {
            written,
            kind,
            name: format!("{} {authority}", req.method()),
            started_at: SystemTime::now(),
            started: Instant::now(),
            request_tags: [
                ("http.method", req.method().to_string()),
                ("http.path", req.uri().path().to_string()),
                ("http.host", authority),
            ],
        })
    }

    /// Takes the spans waiting for export (tests and benchmarks measure
    /// them; the exporter takes them otherwise).
    pub fn take_waiting(&self) -> Vec<Span> {
        match self.queue.get() {
            Some(Some(buffer)) => buffer.take(),
            _ => Vec::new(),
        }
    }

    /// Records the span of a request answered with `status`; `tags` say
    /// who the other end was. Never waits: a full queue drops the span.
    pub fn finish(
        &self,
        span: ActiveSpan,
        status: u16,
        remote: Option<SocketAddr>,
        tags: impl IntoIterator<Item = (&'static str, String)>,
    ) {
        let Some(Some(queue)) = self.queue.get() else {
            return;
        };
        let duration = span.started.elapsed();
        let start_unix_us = span
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let own = self.own.iter().map(|(as_source, as_destination, value)| {
            let key = match span.kind {
                Kind::Client => *as_source,
                Kind::Server => *as_destination,
            };
            (key, value.clone())
        });
        let mut all: Vec<(&'static str, String)> = span.request_tags.into_iter().collect();
        all.push(("http.status_code", status.to_string()));
        all.push((
            "osm.direction",
            match span.kind {
                Kind::Client => "outbound",
                Kind::Server => "inbound",
            }
            .to_string(),
        ));
        all.extend(own);
        all.extend(tags);
        let finished = Span {
            trace_id: span.written.trace_id,
            id: span.written.span_id,
            parent_id: span.written.parent_id,
            kind: span.kind,
            name: span.name,
            start_unix_us,
            duration_us: duration.as_micros() as u64,
            local_service: self.local_service.clone(),
            remote,
            error: status >= 500,
            tags: all,
        };
        if !queue.push(finished) {
            self.counters.queue_full.increment(1);
        }
    }
}

fn new_trace_id() -> u128 {
    // Never zero: an all-zero id is invalid in every format.
    fastrand::u128(1..)
}

fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

#[cfg(test)]
mod tests;
