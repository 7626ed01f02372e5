use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use osm_proxy::{
    app::{AccessLogSink, Proxy, Settings},
    args::{Args, default_listeners},
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
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?
        .block_on(run(args, log_filter))
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
    let pick = |given: Vec<osm_proxy::args::ListenArg>, port| {
        if given.is_empty() {
            default_listeners(port)
        } else {
            given.into_iter().map(|l| l.0).collect()
        }
    };
    let proxy = Proxy::bind(Settings {
        inbound: pick(args.inbound, 15003),
        outbound: pick(args.outbound, 15001),
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
        access_log: if args.access_log == "on" {
            AccessLogSink::Stdout
        } else {
            AccessLogSink::Off
        },
        drain_timeout: args.drain_timeout,
        log_filter: Some(log_filter),
    })
    .await?;
    tracing::info!(addrs = ?proxy.addrs(), "osm-proxy started");
    proxy.run(shutdown_signal()).await;
    Ok(())
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
