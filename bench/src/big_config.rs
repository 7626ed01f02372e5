//! A proxy's config at scale (issue 17): N outbound services of three
//! endpoints each, as a proxy in permissive mode in a big cluster holds.
//! The `proxy_config` criterion bench builds and changes it;
//! `osm-bench config-memory` measures the memory of a release proxy
//! started with it.

use std::{
    io::BufRead,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result};
use osm_api::v1;

/// Service `i` of a big cluster on `port`, and its endpoint set: three
/// pods of its own.
pub fn service(i: usize, port: u32) -> (v1::OutboundService, v1::EndpointSet) {
    let key = format!("ns{}/svc{i}:{port}", i % 100);
    let set = v1::EndpointSet {
        key: key.clone(),
        namespace: format!("ns{}", i % 100),
        service: format!("svc{i}"),
        endpoints: (0..3)
            .map(|e| v1::Endpoint {
                // Three pods of its own per service.
                address: format!(
                    "10.{}.{}.{}:8080",
                    1 + i / 20_000,
                    (i / 80) % 250,
                    (i % 80) * 3 + e
                ),
                identity: format!("spiffe://cluster.local/ns/ns{}/sa/svc{i}", i % 100),
                pod: format!("svc{i}-{e}"),
                workload_kind: "Deployment".into(),
                workload_name: format!("svc{i}"),
            })
            .collect(),
    };
    let outbound = v1::OutboundService {
        key: key.clone(),
        namespace: format!("ns{}", i % 100),
        name: format!("svc{i}"),
        port,
        hostnames: vec![
            format!("svc{i}.ns{}", i % 100),
            format!("svc{i}.ns{}.svc", i % 100),
            format!("svc{i}.ns{}.svc.cluster.local", i % 100),
        ],
        vips: vec![format!("10.96.{}.{}", i / 250, i % 250)],
        protocol: v1::Protocol::Http1 as i32,
        endpoints: key,
        ..Default::default()
    };
    (outbound, set)
}

/// A config of `services` such services (permissive mode).
pub fn config(services: usize) -> v1::ProxyConfig {
    let mut config = v1::ProxyConfig {
        mesh: Some(v1::MeshSettings {
            permissive: true,
            trust_domain: "cluster.local".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for i in 0..services {
        let (s, e) = service(i, 80);
        config.outbound.push(s);
        config.endpoints.push(e);
    }
    config
}

/// A proxy's memory with a config: resident now and at its peak, KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    pub services: usize,
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Kills the proxy when dropped (on failure too).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes the config of `services` services as the proxy reads it (JSON).
pub fn write(path: &Path, services: usize) -> Result<()> {
    std::fs::write(path, serde_json::to_vec(&config(services))?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// How long the proxy runs before its memory is read: three polls of its
/// config file.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Starts `proxy` with a config of `services` services as a JSON file,
/// on ports the kernel picks, and reads its memory [`SETTLE`] after it
/// has started (its config is built before it says so).
pub fn measure(proxy: &Path, services: usize) -> Result<Memory> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("config.json");
    write(&file, services)?;
    let child = Command::new(proxy)
        .arg("--config")
        .arg(&file)
        .args([
            "--admin",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--inbound-listen",
            "127.0.0.1:0=127.0.0.1:9",
            "--outbound-listen",
            "127.0.0.1:0",
            "--access-log",
            "off",
            "--workers",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", proxy.display()))?;
    let mut running = Running(child);
    let pid = running.0.id();
    let (started, wait) = std::sync::mpsc::channel();
    for out in [
        running
            .0
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        running
            .0
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let started = started.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("osm-proxy started") {
                    let _ = started.send(());
                }
            }
        });
    }
    wait.recv_timeout(Duration::from_secs(300))
        .context("the proxy did not start within 5 minutes")?;
    // What it holds running, not only once built: the config file is
    // polled every second (it was read whole at each poll until
    // 2026-12-03, which a reading at start did not see).
    std::thread::sleep(SETTLE);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Memory {
        services,
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}
