use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use osm_proxy::{
    app::{AccessLogSink, Proxy, Settings},
    args::{Args, default_listeners},
    control::{ControlSettings, certify::PodRef, channel::ControllerAddr},
    identity::Credentials,
    logging::LogFilter,
    telemetry::metrics::PodInfo,
};

fn main() -> std::process::ExitCode {
    match start(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osm-proxy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    let log_filter = osm_proxy::logging::init(&args.log_level).context("--log-level")?;
    // One worker: a current-thread runtime, so every task and the accept
    // loops share one thread with no cross-thread wake-ups (a multi-thread
    // runtime with one worker still runs `block_on` on a second thread).
    let mut runtime = if args.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.workers);
        builder
    };
    runtime
        .enable_all()
        .build()?
        .block_on(boxed_run(args, log_filter))
}

/// The proxy's future, made in a frame of its own and kept on the heap:
/// made in `start`, it took its size twice in the main thread's stack for
/// the proxy's life.
#[inline(never)]
fn boxed_run(
    args: Args,
    log_filter: Arc<dyn LogFilter>,
) -> std::pin::Pin<Box<impl std::future::Future<Output = anyhow::Result<()>>>> {
    Box::pin(run(args, log_filter))
}

async fn run(args: Args, log_filter: Arc<dyn LogFilter>) -> anyhow::Result<()> {
    let credentials = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
            };
            Some(Credentials::from_pem(&read(cert)?, &read(key)?).context("--cert/--key")?)
        }
        _ => None,
    };
    let control = match &args.controller {
        Some(controller) => Some(control_settings(&args, controller)?),
        None => None,
    };
    let probes = osm_proxy::probes::ports(
        &osm_proxy::probes::parse(&args.probes).map_err(anyhow::Error::msg)?,
    )
    .into_iter()
    .map(|(port, what)| (std::net::SocketAddr::from(([0, 0, 0, 0], port)), what))
    .collect();
    let pick = |given: Vec<osm_proxy::args::ListenArg>, port| {
        if given.is_empty() {
            default_listeners(port)
        } else {
            given.into_iter().map(|l| l.0).collect()
        }
    };
    let proxy = Proxy::bind(Settings {
        inbound: pick(args.inbound, osm_api::compat::PROXY_INBOUND_PORT),
        outbound: pick(args.outbound, osm_api::compat::PROXY_OUTBOUND_PORT),
        admin: args.admin,
        metrics: args.metrics,
        pod: PodInfo {
            namespace: args.pod_namespace,
            kind: args.workload_kind,
            name: args.workload_name,
            pod: args.pod_name,
        },
        credentials,
        config_file: args.config,
        config_poll_interval: args.config_poll_interval,
        // `on`, the flag's first value, is json.
        access_log: AccessLogSink::Stdout(
            osm_proxy::telemetry::access_log::LogFormat::parse(&args.access_log)
                .unwrap_or(osm_proxy::telemetry::access_log::LogFormat::Json),
        ),
        drain_timeout: args.drain_timeout,
        multiplex_http1: args.multiplex_http1,
        log_filter: Some(log_filter),
        control,
        probes,
        pod_ports: osm_proxy::inbound::PodPorts {
            pod_ip: args.pod_ip,
            declared: args
                .app_ports
                .as_deref()
                .map(osm_proxy::inbound::parse_declared)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            own: Default::default(),
        },
    })
    .await?;
    tracing::info!(addrs = ?proxy.addrs(), "osm-proxy started");
    // The process's own choice, not the library's: a test or a program
    // that embeds the proxy keeps its pages.
    tokio::spawn(osm_proxy::memory::give_back_pages(proxy.shared().clone()));
    proxy.run(shutdown_signal()).await;
    Ok(())
}

/// The controller settings from the flags and the pod's environment.
fn control_settings(args: &Args, controller: &str) -> anyhow::Result<ControlSettings> {
    let ca = args
        .controller_ca
        .as_deref()
        .context("--controller needs --controller-ca")?;
    let ca_pem = if ca.trim_start().starts_with("-----BEGIN") {
        ca.as_bytes().to_vec()
    } else {
        std::fs::read(ca).with_context(|| format!("cannot read --controller-ca {ca}"))?
    };
    if args.pod_name.is_empty() || args.pod_namespace.is_empty() {
        anyhow::bail!(
            "--controller needs the pod's name and namespace (--pod-name/POD_NAME, --pod-namespace/POD_NAMESPACE)"
        );
    }
    Ok(ControlSettings {
        controller: ControllerAddr::new(
            controller,
            args.controller_server_name.as_deref(),
            &ca_pem,
        )
        .context("--controller")?,
        pod: PodRef {
            name: args.pod_name.clone(),
            namespace: args.pod_namespace.clone(),
            service_account: args.service_account.clone().unwrap_or_default(),
            trust_domain: args.trust_domain.clone(),
        },
        token_file: args.token_file.clone(),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stopping");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
