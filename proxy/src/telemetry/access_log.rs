//! One JSON line per request or TCP connection on stdout.
//!
//! Lines are formatted on the request path and written by a dedicated thread
//! through a buffer, so a slow stdout never blocks traffic. When the writer
//! falls behind, lines are dropped and counted (`osm_access_log_dropped_total`).

use std::{
    io::Write,
    sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};

use metrics::Counter;
use serde::Serialize;

const QUEUE: usize = 16 * 1024;

/// A handle to the access log; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    dropped: Counter,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("enabled", &self.tx.is_some())
            .finish()
    }
}

/// The request fields the access log keeps, taken before the request is
/// moved into the client.
pub struct LogParts {
    pub version: &'static str,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl LogParts {
    pub fn of<B>(req: &http::Request<B>) -> Self {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            version: match req.version() {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            method: req.method().to_string(),
            authority: crate::http_util::authority(req).unwrap_or("").to_string(),
            path: req.uri().path().to_string(),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
        }
    }
}

/// One HTTP request.
#[derive(Debug, Serialize)]
pub struct HttpEntry<'a> {
    pub timestamp: String,
    pub direction: &'static str,
    pub protocol: &'a str,
    pub method: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub response_code: u16,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One opaque TCP connection.
#[derive(Debug, Serialize)]
pub struct TcpEntry<'a> {
    pub timestamp: String,
    pub direction: &'static str,
    pub protocol: &'static str,
    pub downstream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<&'a str>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl AccessLog {
    /// Starts the writer thread; lines go to `out`.
    pub fn start(out: Box<dyn Write + Send>, dropped: Counter) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, out));
        Self {
            tx: spawned.ok().map(|_| tx),
            dropped,
        }
    }

    pub fn disabled(dropped: Counter) -> Self {
        Self { tx: None, dropped }
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub fn log(&self, entry: &impl Serialize) {
        let Some(tx) = &self.tx else { return };
        let Ok(line) = serde_json::to_string(entry) else {
            return;
        };
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.increment(1),
        }
    }
}

fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = writeln!(out, "{line}");
        // Batch whatever else is queued, then flush once.
        while let Ok(line) = rx.try_recv() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}
