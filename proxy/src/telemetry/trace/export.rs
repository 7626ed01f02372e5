//! Sends finished spans to the collector, off the request path: requests
//! push spans into a bounded buffer (full: dropped and counted), and a
//! thread of its own takes what is there every [`FLUSH_AFTER`] and POSTs
//! it in batches of up to [`MAX_BATCH`], once. Pushing wakes nobody (a
//! channel would wake the exporter for every span: a context switch per
//! request at full sampling). A collector that is down or slow costs
//! requests nothing; its batches are dropped and counted.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use metrics::Counter;

use super::{Settings, encode::Span};

/// Spans waiting for the exporter; more are dropped.
pub const QUEUE: usize = 4096;
pub const MAX_BATCH: usize = 512;
pub const FLUSH_AFTER: Duration = Duration::from_millis(500);

/// Finished spans waiting for the exporter.
#[derive(Debug, Default)]
pub struct SpanBuffer {
    spans: Mutex<Vec<Span>>,
}

impl SpanBuffer {
    /// Adds a span; false (and the span dropped) when [`QUEUE`] are
    /// already waiting.
    pub fn push(&self, span: Span) -> bool {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if spans.len() >= QUEUE {
            return false;
        }
        if spans.capacity() == 0 {
            spans.reserve(MAX_BATCH);
        }
        spans.push(span);
        true
    }

    pub fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
/// The most one export may take (resolve, connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome counters of spans.
#[derive(Debug, Clone)]
pub struct Counters {
    pub exported: Counter,
    pub queue_full: Counter,
    pub export_failed: Counter,
}

/// Starts the exporter thread; None when no thread could be made.
pub fn start(
    settings: Arc<ArcSwapOption<Settings>>,
    counters: Counters,
) -> Option<Arc<SpanBuffer>> {
    let buffer = Arc::new(SpanBuffer::default());
    let rx = buffer.clone();
    std::thread::Builder::new()
        .name("trace-export".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(run(rx, settings, counters)),
                Err(e) => tracing::warn!(error = %e, "span export not started"),
            }
        })
        .ok()?;
    Some(buffer)
}

async fn run(buffer: Arc<SpanBuffer>, settings: Arc<ArcSwapOption<Settings>>, counters: Counters) {
    let resolver = crate::resolve::Resolver::default();
    let mut failing = false;
    let mut tick = tokio::time::interval(FLUSH_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The buffer is the tracer's and lives as long as the proxy.
        let taken = buffer.take();
        for batch in taken.chunks(MAX_BATCH) {
            export(&resolver, &settings, &counters, &mut failing, batch).await;
        }
    }
}

/// Sends one batch and counts how it went.
async fn export(
    resolver: &crate::resolve::Resolver,
    settings: &ArcSwapOption<Settings>,
    counters: &Counters,
    failing: &mut bool,
    batch: &[Span],
) {
    let n = batch.len() as u64;
    // Tracing turned off since: the spans go nowhere.
    let Some(settings) = settings.load_full() else {
        return;
    };
    let sent = tokio::time::timeout(EXPORT_TIMEOUT, post(resolver, &settings, batch)).await;
    match sent.unwrap_or_else(|_| Err(format!("no answer within {EXPORT_TIMEOUT:?}"))) {
        Ok(()) => {
            counters.exported.increment(n);
            if *failing {
                tracing::info!(collector = %settings.collector(), "span export recovered");
            }
            *failing = false;
        }
        Err(error) => {
            counters.export_failed.increment(n);
            // Once per outage, not once per batch.
            if !*failing {
                tracing::warn!(collector = %settings.collector(), %error, "spans dropped: export failed");
            }
            *failing = true;
        }
    }
}

async fn post(
    resolver: &crate::resolve::Resolver,
    settings: &Settings,
    spans: &[Span],
) -> Result<(), String> {
    let ip = match settings.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) => *resolver
            .lookup(&settings.host)
            .await
            .first()
            .ok_or_else(|| format!("{} does not resolve", settings.host))?,
    };
    let addr = std::net::SocketAddr::new(ip, settings.port);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    let driving = tokio::spawn(conn);
    let request = Request::post(settings.path.as_str())
        .header(header::HOST, settings.collector())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(super::encode::body(
            settings.format,
            spans,
        ))))
        .map_err(|e| e.to_string())?;
    let status = sender.send_request(request).await.map(|r| r.status());
    driving.abort();
    match status {
        Ok(s) if s.is_success() => Ok(()),
        Ok(s) => Err(format!("the collector answered {s}")),
        Err(e) => Err(e.to_string()),
    }
}
