//! Test harness: a throwaway CA, whole proxies on 127.0.0.1 with port 0,
//! real HTTP/TCP applications, and clients. No fixed ports, no sleeps as
//! synchronisation: waits poll a condition with a deadline.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod apps;
pub mod client;
pub mod collector;
pub mod control_plane;
pub mod flaky;
pub mod load;
pub mod local;
pub mod mesh;
pub mod pki;
pub mod relay;
pub mod vault;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use osm_proxy::{
    app::{AccessLogSink, BoundAddrs, ListenerSpec, Proxy, Settings},
    identity::Credentials,
    state::Shared,
    telemetry::metrics::PodInfo,
};
use tokio::{sync::oneshot, task::JoinHandle};

/// How long `eventually` waits; `OSM_TEST_PATIENCE_MS` raises it on slow machines.
pub fn patience() -> Duration {
    let ms = std::env::var("OSM_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    Duration::from_millis(ms)
}

/// Polls `check` until it returns Some, or panics after the patience.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A proxy running in the test's runtime.
pub struct TestProxy {
    pub addrs: BoundAddrs,
    pub shared: Arc<Shared>,
    pub access_log: Arc<Mutex<Vec<u8>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// What to start a proxy with.
pub struct ProxyOptions {
    pub credentials: Option<Credentials>,
    pub config_yaml: Option<String>,
    pub config_file: Option<std::path::PathBuf>,
    /// Inbound listeners on 127.0.0.1:0, each forwarding to this app address.
    pub inbound_targets: Vec<SocketAddr>,
    /// Outbound listeners on 127.0.0.1:0, each with this original destination
    /// (None: route by Host).
    pub outbound_targets: Vec<Option<SocketAddr>>,
    pub pod: PodInfo,
    pub log_filter: Option<Arc<dyn osm_proxy::logging::LogFilter>>,
    /// Inbound listeners at exactly these addresses (bind, app target), as
    /// a pod's address would be; for proxies fed by a controller.
    pub inbound_at: Vec<(SocketAddr, SocketAddr)>,
    /// Get the certificate and config from a controller.
    pub control: Option<osm_proxy::control::ControlSettings>,
    /// Probe listeners on 127.0.0.1:0.
    pub probes: Vec<osm_proxy::probes::ProbePort>,
    /// HTTP/1.1 between proxies over HTTP/2 (off by default, as the
    /// proxy's own default).
    pub multiplex_http1: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            credentials: None,
            config_yaml: None,
            config_file: None,
            inbound_targets: vec![],
            outbound_targets: vec![None],
            pod: PodInfo::default(),
            log_filter: None,
            inbound_at: vec![],
            control: None,
            probes: vec![],
            multiplex_http1: false,
        }
    }
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl TestProxy {
    pub async fn start(options: ProxyOptions) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let proxy = Proxy::bind(Settings {
            inbound: options
                .inbound_targets
                .iter()
                .map(|t| ListenerSpec {
                    bind: localhost(),
                    target: Some(*t),
                    required: true,
                })
                .chain(options.inbound_at.iter().map(|(bind, t)| ListenerSpec {
                    bind: *bind,
                    target: Some(*t),
                    required: true,
                }))
                .collect(),
            outbound: options
                .outbound_targets
                .iter()
                .map(|t| ListenerSpec {
                    bind: localhost(),
                    target: *t,
                    required: true,
                })
                .collect(),
            admin: localhost(),
            metrics: localhost(),
            pod: options.pod,
            credentials: options.credentials,
            config_file: options.config_file,
            config_poll_interval: Duration::from_millis(50),
            access_log: AccessLogSink::Writer(Box::new(SharedWriter(log.clone()))),
            drain_timeout: Duration::from_secs(5),
            log_filter: options.log_filter,
            multiplex_http1: options.multiplex_http1,
            control: options.control,
            probes: options
                .probes
                .into_iter()
                .map(|p| (localhost(), p))
                .collect(),
            pod_ports: Default::default(),
        })
        .await
        .expect("proxy binds");
        let shared = proxy.shared().clone();
        if let Some(yaml) = options.config_yaml {
            let config =
                osm_proxy::config::parse_config("test.yaml", &yaml).expect("test config parses");
            shared.apply_config(config).expect("test config is valid");
        }
        let addrs = proxy.addrs().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(proxy.run(async move {
            let _ = rx.await;
        }));
        Self {
            addrs,
            shared,
            access_log: log,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn inbound(&self) -> SocketAddr {
        self.addrs.inbound[0]
    }

    pub fn outbound(&self) -> SocketAddr {
        self.addrs.outbound[0]
    }

    /// Applies a YAML config as a controller would.
    pub fn apply(&self, yaml: &str) {
        let config =
            osm_proxy::config::parse_config("test.yaml", yaml).expect("test config parses");
        self.shared
            .apply_config(config)
            .expect("test config is valid");
    }

    pub fn metrics(&self) -> String {
        self.shared.metrics.render()
    }

    pub fn access_log_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.access_log.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Stops accepting and drains.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The value of one Prometheus series, matched by name and a set of
/// `label="value"` pairs; 0 when absent.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
