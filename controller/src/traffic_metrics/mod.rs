//! SMI TrafficMetrics served by the controller: every meshed pod's proxy is
//! read (its metrics port, as Prometheus scrapes it) once per window, and
//! the aggregated API ([`serve`]) answers from the last two readings, so
//! each answer covers one window (`window: 30s`) as the SMI spec means it,
//! not the counts since each proxy started.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures_util::StreamExt as _;
use osm_api::resources::MeshPod;
use osm_api::traffic_metrics::{
    Requests, Workload, read_exposition,
    refused::{attribute, pod_workload},
    scrape::{Reading, between, scrape_target_of},
};
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

pub mod serve;

/// Proxies read at once.
const CONCURRENT_SCRAPES: usize = 32;
/// How long one proxy may take to answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// How to serve the API.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The CA of the API server's front-proxy client certificate
    /// (`requestheader-client-ca-file` of kube-system's
    /// `extension-apiserver-authentication`): only clients with a
    /// certificate from it are answered.
    pub client_ca_pem: String,
    /// Common names the client certificate may carry
    /// (`requestheader-allowed-names`); empty: any from the CA.
    pub allowed_names: Vec<String>,
    /// The window: how often the proxies are read.
    pub window: Duration,
}

/// A window's requests, ready to answer from.
#[derive(Debug, Clone)]
pub struct Window {
    pub requests: Vec<Requests>,
    /// The end of the window, RFC 3339.
    pub timestamp: String,
    /// Its length, as a duration string (`30s`).
    pub length: String,
}

/// The last reading, and the window it closed (computed once per reading,
/// not per answer).
#[derive(Debug, Default)]
pub struct Readings {
    state: Mutex<ReadingsState>,
}

#[derive(Debug, Default)]
struct ReadingsState {
    last: Option<(SystemTime, Reading)>,
    window: Option<Arc<Window>>,
}

impl Readings {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadingsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, at: SystemTime, reading: Reading) {
        let mut state = self.lock();
        if let Some((start, older)) = &state.last {
            let length = at.duration_since(*start).unwrap_or_default();
            state.window = Some(Arc::new(Window {
                requests: between(older, &reading),
                timestamp: humantime::format_rfc3339_seconds(at).to_string(),
                length: humantime::format_duration(Duration::from_secs(length.as_secs()))
                    .to_string(),
            }));
        }
        state.last = Some((at, reading));
    }

    /// The window between the last two readings; None until there are two.
    pub fn window(&self) -> Option<Arc<Window>> {
        self.lock().window.clone()
    }
}

/// Where to read: every pod with a readable proxy (`namespace/name`,
/// address, path), and every pod's workload by address (to tell whose
/// refused plaintext requests were).
struct Plan {
    targets: Vec<(String, SocketAddr, String)>,
    workloads_by_ip: BTreeMap<String, Workload>,
}

fn plan(pods: &BTreeMap<(String, String), Arc<MeshPod>>) -> Plan {
    Plan {
        targets: pods
            .iter()
            .filter_map(|((ns, name), pod)| {
                let (addr, path) = scrape_target_of(pod)?;
                Some((format!("{ns}/{name}"), addr, path))
            })
            .collect(),
        workloads_by_ip: pods.values().filter_map(pod_workload).collect(),
    }
}

/// Reads every proxy the hub knows of once.
pub async fn read_proxies(hub: &Hub) -> Reading {
    let Plan {
        targets,
        workloads_by_ip,
    } = hub.with_pods(plan);
    let asked = targets.iter().map(|(pod, ..)| pod.clone()).collect();
    let answers: Vec<(String, SocketAddr, anyhow::Result<Vec<Requests>>)> =
        futures_util::stream::iter(targets)
            .map(|(pod, addr, path)| {
                let workloads_by_ip = &workloads_by_ip;
                async move {
                    let answer = osm_serve::fetch::get(addr, &path, SCRAPE_TIMEOUT)
                        .await
                        .and_then(|a| match a.status {
                            200 => {
                                let text = String::from_utf8_lossy(&a.body);
                                let (mut requests, refused) = read_exposition(&text);
                                requests.extend(attribute(&refused, workloads_by_ip));
                                Ok(requests)
                            }
                            status => Err(anyhow::anyhow!("answered {status}")),
                        });
                    (pod, addr, answer)
                }
            })
            .buffer_unordered(CONCURRENT_SCRAPES)
            .collect()
            .await;
    let mut answered = BTreeMap::new();
    for (pod, addr, answer) in answers {
        match answer {
            Ok(requests) => {
                answered.insert(pod, requests);
            }
            Err(e) => tracing::debug!(%pod, %addr, error = %e, "proxy metrics not read"),
        }
    }
    Reading { answered, asked }
}

/// Reads the proxies once the hub knows the cluster (`synced`), then once
/// per `window` until `stop`. (A first reading before the sync would miss
/// pods the second then takes for new, counting all their requests since
/// their proxies started into one window.)
pub async fn keep_reading(
    hub: Arc<Hub>,
    readings: Arc<Readings>,
    window: Duration,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    while !synced.load(Ordering::Acquire) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stop.cancelled() => return,
        }
    }
    let mut missing_before = 0;
    loop {
        let reading = read_proxies(&hub).await;
        let missing = reading.asked.len() - reading.answered.len();
        if missing != missing_before {
            tracing::info!(
                missing,
                asked = reading.asked.len(),
                "traffic metrics: proxies whose metrics could not be read"
            );
            missing_before = missing;
        }
        readings.push(SystemTime::now(), reading);
        tokio::select! {
            () = tokio::time::sleep(window) => {}
            () = stop.cancelled() => return,
        }
    }
}
