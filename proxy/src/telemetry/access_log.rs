//! One line per request or TCP connection on stdout, as JSON or as text,
//! or none: the proxy's `--access-log` until the config says otherwise
//! (MeshConfig `observability.accessLog`, a pod's
//! `openservicemesh.io/access-log` annotation).
//!
//! Lines are formatted on the request path into a bounded buffer that a
//! thread of its own writes out ([`super::log_buffer`]), so a slow stdout
//! never blocks traffic and a line wakes nobody. When the writer falls
//! behind, lines are dropped and counted (`osm_access_log_dropped_total`).

use std::{
    fmt,
    io::Write,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::SystemTime,
};

use metrics::Counter;
use serde::Serialize;

use super::log_buffer::{LogBuffer, start_writer};

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Off = 0,
    Json = 1,
    Text = 2,
}

impl LogFormat {
    /// `off`, `json` or `text`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "json" => Some(Self::Json),
            "text" => Some(Self::Text),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Json,
            2 => Self::Text,
            _ => Self::Off,
        }
    }
}

/// A line in the text format.
pub trait TextLine {
    fn text(&self) -> String;
}

/// A handle to the access log; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    buffer: Option<Arc<LogBuffer>>,
    dropped: Counter,
    /// The format in force: the config's when it names one, else `own`.
    format: Arc<AtomicU8>,
    own: LogFormat,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format())
            .finish()
    }
}

/// When a request or connection arrived, written as RFC 3339 with
/// milliseconds when its line is (no string kept per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Self(SystemTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_rfc3339_millis(self.0).fmt(f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn method_name<S: serde::Serializer>(method: &http::Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(method.as_str())
}

/// The request fields the access log keeps, taken before the request is
/// moved into the client.
pub struct LogParts {
    /// When the request arrived.
    pub timestamp: Timestamp,
    pub version: &'static str,
    pub method: http::Method,
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
            timestamp: Timestamp::now(),
            version: match req.version() {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            method: req.method().clone(),
            authority: crate::http_util::authority(req).unwrap_or("").to_string(),
            path: req.uri().path().to_string(),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
        }
    }
}

/// One HTTP request, written when its response body has been sent
/// ([`super::body_bytes::Logged`]). What the proxy already holds (the
/// identities, service and rule, the addresses, the arrival time) is shared
/// or copied, and formatted only when the line is written.
#[derive(Debug, Default, Serialize)]
pub struct HttpEntry {
    /// Why the proxy answered or failed it, in Envoy's response-flag codes
    /// (`-` for none): NR no route, UF connect failure, UO overflow, UT
    /// timeout, UC reset, UR refused stream, RL rate limited, DPE bad
    /// request, DF host unresolved, UAEX denied by authorization.
    pub response_flags: &'static str,
    /// The other end's verified identity: the server's (outbound), the
    /// client's (inbound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<Arc<str>>,
    /// When the request arrived.
    pub timestamp: Timestamp,
    pub direction: &'static str,
    pub protocol: &'static str,
    #[serde(serialize_with = "method_name")]
    pub method: http::Method,
    pub authority: String,
    pub path: String,
    pub response_code: u16,
    /// From the request's arrival to the last byte of the response body.
    pub duration_ms: f64,
    /// Request body bytes read from the client.
    pub bytes_received: u64,
    /// Response body bytes written to the client.
    pub bytes_sent: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_service: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HttpEntry {
    /// An entry for a request whose fields `parts` kept.
    pub fn of(parts: LogParts, direction: &'static str) -> Self {
        Self {
            timestamp: parts.timestamp,
            direction,
            protocol: parts.version,
            method: parts.method,
            authority: parts.authority,
            path: parts.path,
            user_agent: parts.user_agent,
            request_id: parts.request_id,
            ..Self::default()
        }
    }
}

/// One opaque TCP connection.
#[derive(Debug, Serialize)]
pub struct TcpEntry<'a> {
    /// `-`, or why the connection ended early (UF: no upstream connection
    /// was made; a refusal's flag, [`crate::connection::ConnectionError`]).
    pub response_flags: &'static str,
    /// When its bytes began to flow (the upstream connected); for one that
    /// ended early, when it was accepted.
    pub timestamp: Timestamp,
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

fn or_dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

impl TextLine for HttpEntry {
    /// Envoy's default format, in this log's fields: `[time] "METHOD PATH
    /// PROTOCOL" CODE FLAGS RECEIVED SENT DURATION_MS "AUTHORITY"
    /// "UPSTREAM_HOST" "USER_AGENT" "REQUEST_ID"`, then what Envoy's has not.
    fn text(&self) -> String {
        let mut line = format!(
            "[{}] \"{} {} {}\" {} {} {} {} {:.3} \"{}\" \"{}\" \"{}\" \"{}\" {} upstream={} peer={} rule={}",
            self.timestamp,
            self.method,
            self.path,
            self.protocol,
            self.response_code,
            self.response_flags,
            self.bytes_received,
            self.bytes_sent,
            self.duration_ms,
            self.authority,
            self.upstream_host
                .map_or_else(|| "-".to_string(), |host| host.to_string()),
            or_dash(self.user_agent.as_deref()),
            or_dash(self.request_id.as_deref()),
            self.direction,
            or_dash(self.upstream_service.as_deref()),
            or_dash(self.peer_identity.as_deref()),
            or_dash(self.authorization.as_deref()),
        );
        if let Some(e) = &self.error {
            line.push_str(&format!(" error={e:?}"));
        }
        line
    }
}

impl TextLine for TcpEntry<'_> {
    /// `[time] "TCP DOWNSTREAM" FLAGS SENT RECEIVED DURATION_MS
    /// "UPSTREAM_HOST"`, then what the HTTP line has after.
    fn text(&self) -> String {
        let mut line = format!(
            "[{}] \"TCP {}\" {} {} {} {:.3} \"{}\" {} upstream={} peer={}",
            self.timestamp,
            self.downstream,
            self.response_flags,
            self.bytes_sent,
            self.bytes_received,
            self.duration_ms,
            or_dash(self.upstream_host.as_deref()),
            self.direction,
            or_dash(self.upstream_service),
            or_dash(self.source_identity),
        );
        if let Some(e) = &self.error {
            line.push_str(&format!(" error={e:?}"));
        }
        line
    }
}

impl AccessLog {
    /// Starts the writer thread; lines go to `out`, in `own` format until
    /// the config names one.
    pub fn start(out: Box<dyn Write + Send>, dropped: Counter, own: LogFormat) -> Self {
        let buffer = Arc::new(LogBuffer::new(out));
        Self {
            buffer: start_writer(&buffer).then_some(buffer),
            dropped,
            format: Arc::new(AtomicU8::new(own as u8)),
            own,
        }
    }

    /// A log that writes nothing, whatever the config says.
    pub fn disabled(dropped: Counter) -> Self {
        Self {
            buffer: None,
            dropped,
            format: Arc::new(AtomicU8::new(LogFormat::Off as u8)),
            own: LogFormat::Off,
        }
    }

    /// Follows the config: its format, or the proxy's own when it names none.
    pub fn follow(&self, configured: Option<LogFormat>) {
        let format = if self.buffer.is_some() {
            configured.unwrap_or(self.own)
        } else {
            LogFormat::Off
        };
        self.format.store(format as u8, Ordering::Relaxed);
    }

    pub fn format(&self) -> LogFormat {
        LogFormat::from_u8(self.format.load(Ordering::Relaxed))
    }

    pub fn enabled(&self) -> bool {
        self.format() != LogFormat::Off
    }

    pub fn log(&self, entry: &(impl Serialize + TextLine)) {
        let Some(buffer) = &self.buffer else { return };
        let kept = match self.format() {
            LogFormat::Off => return,
            // Serialized straight into the buffer: no line of its own.
            LogFormat::Json => buffer.append(|out| serde_json::to_writer(out, entry).is_ok()),
            LogFormat::Text => {
                let line = entry.text();
                buffer.append(|out| out.write_all(line.as_bytes()).is_ok())
            }
        };
        if !kept {
            self.dropped.increment(1);
        }
    }

    /// Writes every line waiting; the proxy calls it once drained, before
    /// it exits.
    pub fn flush(&self) {
        if let Some(buffer) = &self.buffer {
            buffer.flush();
        }
    }
}
