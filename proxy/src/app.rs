//! Wiring: bind every listener (so tests can use port 0 and read the bound
//! addresses), then run until shutdown and drain.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admin,
    identity::Credentials,
    state::Shared,
    telemetry::{
        access_log::{AccessLog, LogFormat},
        metrics::{ACCESS_LOG_DROPPED_TOTAL, Metrics, PodInfo},
    },
};

/// A listener to bind, and the destination to assume for its connections
/// instead of reading `SO_ORIGINAL_DST`.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub bind: SocketAddr,
    pub target: Option<SocketAddr>,
    /// When false, failing to bind (say, IPv6 disabled) only warns.
    pub required: bool,
}

/// Where access-log lines go.
pub enum AccessLogSink {
    /// Standard output, in this format until the config names one.
    Stdout(crate::telemetry::access_log::LogFormat),
    Off,
    Writer(Box<dyn std::io::Write + Send>),
}

/// How to run a proxy.
pub struct Settings {
    pub inbound: Vec<ListenerSpec>,
    pub outbound: Vec<ListenerSpec>,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    pub pod: PodInfo,
    pub credentials: Option<Credentials>,
    pub config_file: Option<PathBuf>,
    pub config_poll_interval: Duration,
    pub access_log: AccessLogSink,
    pub drain_timeout: Duration,
    /// Lets `/logging` change the log filter; None: not offered.
    pub log_filter: Option<Arc<dyn crate::logging::LogFilter>>,
    /// Get the certificate and config from a controller.
    pub control: Option<crate::control::ControlSettings>,
    /// The kubelet's rewritten probes: where to listen and what to do.
    pub probes: Vec<(SocketAddr, crate::probes::ProbePort)>,
    /// The pod's address and declared ports (the proxy's own ports are
    /// added once its listeners are bound).
    pub pod_ports: crate::inbound::PodPorts,
    /// HTTP/1.1 requests to peer proxies share HTTP/2 connections.
    pub multiplex_http1: bool,
}

/// The addresses the proxy actually bound.
#[derive(Debug, Clone)]
pub struct BoundAddrs {
    pub inbound: Vec<SocketAddr>,
    pub outbound: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    /// The probe listeners, in the order of `Settings::probes`.
    pub probes: Vec<SocketAddr>,
}

/// A bound proxy, ready to run.
pub struct Proxy {
    shared: Arc<Shared>,
    inbound: Vec<(TcpListener, Option<SocketAddr>)>,
    outbound: Vec<(TcpListener, Option<SocketAddr>)>,
    admin: TcpListener,
    metrics: TcpListener,
    addrs: BoundAddrs,
    /// The config file and what was applied from it.
    config_file: Option<(PathBuf, crate::config::watch::Seen)>,
    config_poll_interval: Duration,
    drain_timeout: Duration,
    control: Option<crate::control::ControlSettings>,
    probes: Vec<(TcpListener, crate::probes::ProbePort)>,
    pod_ports: Arc<crate::inbound::PodPorts>,
}

async fn bind_all(
    specs: &[ListenerSpec],
) -> anyhow::Result<Vec<(TcpListener, Option<SocketAddr>)>> {
    let mut out = Vec::new();
    for spec in specs {
        match bind(spec.bind) {
            Ok(l) => out.push((l, spec.target)),
            Err(e) if !spec.required => {
                tracing::warn!(addr = %spec.bind, error = %e, "listener not bound")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {}", spec.bind)),
        }
    }
    Ok(out)
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn local_addrs(listeners: &[(TcpListener, Option<SocketAddr>)]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|(l, _)| l.local_addr().ok())
        .collect()
}

impl Proxy {
    /// Loads credentials and the config file, then binds every listener.
    pub async fn bind(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new(&settings.pod);
        let dropped = metrics.counter(ACCESS_LOG_DROPPED_TOTAL, vec![]);
        let access_log = match settings.access_log {
            AccessLogSink::Stdout(own) => {
                AccessLog::start(Box::new(std::io::stdout()), dropped, own)
            }
            AccessLogSink::Writer(w) => AccessLog::start(w, dropped, LogFormat::Json),
            AccessLogSink::Off => AccessLog::disabled(dropped),
        };
        let shared = Arc::new(
            Shared::new(metrics, access_log, settings.log_filter)
                .multiplexing_http1(settings.multiplex_http1),
        );
        if let Some(credentials) = settings.credentials {
            shared
                .set_credentials(credentials)
                .context("the proxy's certificate")?;
        }
        let config_file = match settings.config_file {
            Some(path) => {
                let seen = crate::config::watch::load_and_apply(&path, &shared)?;
                Some((path, seen))
            }
            None => None,
        };
        let inbound = bind_all(&settings.inbound).await?;
        let outbound = bind_all(&settings.outbound).await?;
        let admin =
            bind(settings.admin).with_context(|| format!("cannot listen on {}", settings.admin))?;
        let metrics = bind(settings.metrics)
            .with_context(|| format!("cannot listen on {}", settings.metrics))?;
        let mut probes = Vec::new();
        for (addr, port) in settings.probes {
            let listener =
                bind(addr).with_context(|| format!("cannot listen on {addr} for probes"))?;
            probes.push((listener, port));
        }
        let addrs = BoundAddrs {
            inbound: local_addrs(&inbound),
            outbound: local_addrs(&outbound),
            admin: admin.local_addr()?,
            metrics: metrics.local_addr()?,
            probes: probes
                .iter()
                .filter_map(|(l, _)| l.local_addr().ok())
                .collect(),
        };
        // The proxy's own listeners are never a destination of inbound
        // traffic (the network reaches them through interception).
        let own: Vec<u16> = addrs
            .inbound
            .iter()
            .chain(&addrs.outbound)
            .chain(std::iter::once(&addrs.admin))
            .map(SocketAddr::port)
            .chain([
                osm_api::compat::PROXY_ADMIN_PORT,
                osm_api::compat::PROXY_OUTBOUND_PORT,
                osm_api::compat::PROXY_INBOUND_PORT,
            ])
            .collect();
        let pod_ports = Arc::new(crate::inbound::PodPorts {
            own: own.into(),
            ..settings.pod_ports
        });
        Ok(Self {
            shared,
            inbound,
            outbound,
            admin,
            metrics,
            addrs,
            pod_ports,
            config_file,
            config_poll_interval: settings.config_poll_interval,
            drain_timeout: settings.drain_timeout,
            control: settings.control,
            probes,
        })
    }

    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// in-flight work finish for up to the drain timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let drain = CancellationToken::new();
        let tasks = TaskTracker::new();
        let shared = self.shared;
        for (listener, target) in self.inbound {
            spawn(&tasks, || {
                crate::inbound::serve(
                    listener,
                    target,
                    self.pod_ports.clone(),
                    shared.clone(),
                    drain.clone(),
                    tasks.clone(),
                )
            });
        }
        for (listener, target) in self.outbound {
            spawn(&tasks, || {
                crate::outbound::serve(
                    listener,
                    target,
                    shared.clone(),
                    drain.clone(),
                    tasks.clone(),
                )
            });
        }
        spawn(&tasks, || {
            admin::serve(
                self.admin,
                admin::Role::Admin,
                shared.clone(),
                drain.clone(),
                tasks.clone(),
            )
        });
        spawn(&tasks, || {
            admin::serve(
                self.metrics,
                admin::Role::Metrics,
                shared.clone(),
                drain.clone(),
                tasks.clone(),
            )
        });
        if let Some((path, seen)) = self.config_file {
            spawn(&tasks, || {
                crate::config::watch::watch_file(
                    path,
                    seen,
                    shared.clone(),
                    self.config_poll_interval,
                    drain.clone(),
                )
            });
        }
        for (listener, port) in self.probes {
            spawn(&tasks, || {
                crate::probes::serve(listener, port, drain.clone(), tasks.clone())
            });
        }
        if let Some(control) = self.control {
            spawn(&tasks, || {
                crate::control::run(control, shared.clone(), drain.clone())
            });
        }
        spawn(&tasks, || metrics_upkeep(shared.clone(), drain.clone()));

        shutdown.await;
        tracing::info!(timeout = ?self.drain_timeout, "draining");
        drain.cancel();
        tasks.close();
        if tokio::time::timeout(self.drain_timeout, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout: closing remaining connections");
        }
        shared.access_log.flush();
    }
}

/// How often idle metric series are looked for when no scrape comes. No
/// sample buffers wait for it (request durations are counted in place), so
/// it is a minute, not the exporter's usual 5 s: a wake-up fewer for an idle
/// proxy, with series expiring after [`crate::telemetry::metrics::ENDPOINT_SERIES_IDLE`].
const METRICS_UPKEEP: Duration = Duration::from_secs(60);

/// Spawns the service task `make` builds. Built here, in a frame of its
/// own that ends before the next one: built in `run`, every service's
/// future had its own place in one 47 KB stack frame, and stack pages once
/// touched stay resident for the proxy's life (with `boxed_run`, 30 KB
/// of an idle sidecar's memory).
#[inline(never)]
fn spawn<F>(tasks: &TaskTracker, make: impl FnOnce() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    tasks.spawn(Box::pin(make()));
}

async fn metrics_upkeep(shared: Arc<Shared>, drain: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(METRICS_UPKEEP) => shared.metrics.run_upkeep(),
            _ = drain.cancelled() => return,
        }
    }
}
