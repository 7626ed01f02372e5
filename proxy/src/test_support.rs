//! Shared state for in-memory tests: a proxy's state from a static config,
//! and whole connections driven over `tokio::io::duplex`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::{
    config::parse_config,
    state::Shared,
    telemetry::{access_log::AccessLog, metrics::Metrics},
};

/// The snapshot `yaml` (the static config format) builds.
pub fn snapshot(yaml: &str) -> crate::config::Snapshot {
    let config = parse_config("test.yaml", yaml).expect("parses");
    crate::config::build_snapshot(config, 1, &crate::upstream::EndpointRegistry::default())
        .expect("valid")
}

/// A proxy's shared state with `yaml` (the static config format) applied.
pub fn shared_with(yaml: &str) -> Arc<Shared> {
    shared_logging_into(yaml, AccessLog::disabled)
}

/// A proxy's shared state with `yaml` applied and the access log `log`
/// makes (given its counter of dropped lines).
fn shared_logging_into(yaml: &str, log: impl FnOnce(metrics::Counter) -> AccessLog) -> Arc<Shared> {
    let metrics = Metrics::new(&Default::default());
    let dropped = metrics.counter("dropped", vec![]);
    let shared = Shared::new(metrics, log(dropped), None);
    let config = parse_config("test.yaml", yaml).expect("parses");
    shared.apply_config(config).expect("applies");
    Arc::new(shared)
}

/// What an access log wrote: its lines once flushed.
#[derive(Clone, Default)]
pub struct Written(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Written {
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("not poisoned");
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// [`shared_with`], with a JSON access log whose lines go to the
/// [`Written`] returned (after `shared.access_log.flush()`).
pub fn shared_logging_with(yaml: &str) -> (Arc<Shared>, Written) {
    let written = Written::default();
    let lines = written.clone();
    let shared = shared_logging_into(yaml, |dropped| {
        AccessLog::start(
            Box::new(lines),
            dropped,
            crate::telemetry::access_log::LogFormat::Json,
        )
    });
    (shared, written)
}

/// Serves one in-memory connection with `handler` (given the proxy's end),
/// writes `request` on the client's end and reads until the proxy closes
/// it: what the client read, and how the handler ended.
pub async fn exchange<F, Fut>(request: &[u8], handler: F) -> (String, Fut::Output)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let (mut client, server) = tokio::io::duplex(4096);
    let task = tokio::spawn(handler(server));
    client.write_all(request).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.read_to_end(&mut out),
    )
    .await
    .expect("the proxy ends the connection")
    .expect("read");
    let ended = task.await.expect("the handler does not panic");
    (String::from_utf8_lossy(&out).into_owned(), ended)
}

/// The value of a counter in the proxy's Prometheus text, 0 when absent.
/// `labels` must be written as the exporter writes them (`a="x",b="y"`).
pub fn counter(shared: &Shared, name: &str, labels: &str) -> u64 {
    let text = shared.metrics.render();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

/// A TCP stream on 127.0.0.1 (its listener's end is not accepted): the
/// stream type an accepted connection's task really holds.
pub async fn tcp_stream() -> tokio::net::TcpStream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect")
}
