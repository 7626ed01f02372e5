//! Sends finished spans to the collector, off the request path: requests
//! hand spans to a bounded queue (full: dropped and counted), and a thread
//! of its own batches them (up to [`MAX_BATCH`], or what arrived within
//! [`FLUSH_AFTER`] of the first) and POSTs each batch once. A collector
//! that is down or slow costs requests nothing; its batches are dropped
//! and counted.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use metrics::Counter;
use tokio::sync::mpsc;

use super::{Settings, encode::Span};

/// Spans waiting for the exporter; more are dropped.
pub const QUEUE: usize = 4096;
pub const MAX_BATCH: usize = 512;
pub const FLUSH_AFTER: Duration = Duration::from_millis(500);
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
) -> Option<mpsc::Sender<Span>> {
    let (tx, rx) = mpsc::channel(QUEUE);
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
    Some(tx)
}

async fn run(
    mut rx: mpsc::Receiver<Span>,
    settings: Arc<ArcSwapOption<Settings>>,
    counters: Counters,
) {
    let resolver = crate::resolve::Resolver::default();
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        // Tracing turned off since: the spans go nowhere.
        let Some(settings) = settings.load_full() else {
            continue;
        };
        let sent = tokio::time::timeout(EXPORT_TIMEOUT, post(&resolver, &settings, &batch)).await;
        match sent.unwrap_or_else(|_| Err(format!("no answer within {EXPORT_TIMEOUT:?}"))) {
            Ok(()) => {
                counters.exported.increment(n);
                if failing {
                    tracing::info!(collector = %settings.collector(), "span export recovered");
                }
                failing = false;
            }
            Err(error) => {
                counters.export_failed.increment(n);
                // Once per outage, not once per batch.
                if !failing {
                    tracing::warn!(collector = %settings.collector(), %error, "spans dropped: export failed");
                }
                failing = true;
            }
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
