//! `osm-bench intercept` (issue 17): the pair as users pay for it. A local
//! mesh of the bench's own runs `bench/intercept/mesh.yaml` (an app and a
//! load pod, once without sidecars and once with them: osm-init's rules,
//! the real proxies with controller-issued certificates, mTLS and an SMI
//! policy); oha runs in each load pod's network namespace against its
//! namespace's app Service, the two paths alternating within every
//! repetition. Needs root (local mode) and oha.

pub mod report;

use std::{
    path::{Path as FsPath, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use self::report::{Path, Sample};
use crate::{
    local_mesh::{Local, Ranges, first_pid},
    pairs::{
        load::{Load, Measured, parse_report},
        procs,
    },
};

/// The bench mesh's name and ranges (apart from the soak's).
pub const RANGES: Ranges = Ranges {
    name: "ibench",
    pod_cidr: "10.233.0.0/16",
    service_cidr: "10.234.0.0/16",
    gateway: [10, 233, 0, 1],
};

/// The app's port in the manifests.
const APP_PORT: u16 = 8080;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bin_dir: PathBuf,
    pub oha: PathBuf,
    pub manifests: PathBuf,
    pub rates: Vec<u32>,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub repetitions: usize,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    pub context: String,
}

/// One path's pods as the bench reaches them.
struct Target {
    path: Path,
    /// The load pod's container process: oha joins its network
    /// namespace (`nsenter -t PID -n`).
    load: i32,
    /// The app Service's cluster address.
    url: String,
    /// Pids of the processes a run's CPU is charged to: the app and
    /// (meshed) the two proxies.
    app: i32,
    proxies: Option<(i32, i32)>,
}

pub fn run(settings: &Settings) -> Result<Outcome> {
    anyhow::ensure!(
        settings.oha.is_file(),
        "{} is missing: install oha (cargo install oha --locked; bench/run does)",
        settings.oha.display()
    );
    let manifests = std::fs::read_to_string(&settings.manifests)
        .with_context(|| format!("reading {}", settings.manifests.display()))?;
    let mesh = Local::up(&settings.bin_dir, RANGES)?;
    mesh.apply(&manifests)?;
    for path in [Path::Plain, Path::Meshed] {
        mesh.wait_ready(path.namespace(), 2, Duration::from_secs(120))?;
    }
    let targets = [target(&mesh, Path::Plain)?, target(&mesh, Path::Meshed)?];
    for t in &targets {
        wait_for_answers(settings, t, Duration::from_secs(60))?;
    }
    refuses_what_the_policy_does_not_allow(settings, &targets[1])?;
    let mut samples = Vec::new();
    for &rate in &settings.rates {
        for repetition in 0..settings.repetitions {
            // Alternate which path runs first.
            let order: Vec<&Target> = if repetition % 2 == 0 {
                targets.iter().collect()
            } else {
                targets.iter().rev().collect()
            };
            for t in order {
                let load = |duration| Load {
                    rate: Some(rate),
                    connections: settings.connections,
                    duration,
                };
                oha(settings, t, &load(settings.warmup))?;
                let sample = measure(settings, t, &load(settings.duration), repetition)?;
                eprintln!(
                    "intercept: {rate} rps, {} #{repetition}: p50 {:.3} ms, p99 {:.3} ms, {} of {} ok",
                    t.path.namespace(),
                    sample.measured.p50,
                    sample.measured.p99,
                    sample.measured.ok,
                    sample.measured.requests
                );
                samples.push(sample);
            }
        }
    }
    Ok(Outcome {
        samples,
        context: format!(
            "{} connections, {} s runs after {} s of warm-up, {} repetitions, 1 KB answers; \
             the proxies as the injector starts them (one worker each). Machine: {}.",
            settings.connections,
            settings.duration.as_secs(),
            settings.warmup.as_secs(),
            settings.repetitions,
            crate::machine::summary(),
        ),
    })
}

/// The load pod, app Service and measured processes of `path`.
fn target(mesh: &Local, path: Path) -> Result<Target> {
    let namespace = path.namespace();
    let pods = mesh.pods(namespace)?;
    let pod_named = |app: &str| -> Result<String> {
        pods.iter()
            .find(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
            .and_then(|p| p.pointer("/metadata/name").and_then(Value::as_str))
            .map(str::to_string)
            .with_context(|| format!("no {app} pod in {namespace}"))
    };
    let (load, app) = (pod_named("load")?, pod_named("app")?);
    let services: Value = serde_json::from_str(
        &mesh.ok(&["get", "services", "-n", namespace, "app", "-o", "json"])?,
    )?;
    let cluster_ip = services
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .context("the app Service has no clusterIP")?;
    let dir = |pod: &str| mesh.state().join("pods").join(namespace).join(pod);
    let process = |pod: &str, container: &str| -> Result<i32> {
        first_pid(&dir(pod).join(format!("{container}.process")))
    };
    Ok(Target {
        path,
        load: process(&load, "load")?,
        url: format!("http://{cluster_ip}:{APP_PORT}/"),
        app: process(&app, "app")?,
        proxies: match path {
            Path::Plain => None,
            Path::Meshed => Some((process(&load, "osm-proxy")?, process(&app, "osm-proxy")?)),
        },
    })
}

/// oha once in the target's load pod; its measurement.
fn oha(settings: &Settings, target: &Target, load: &Load) -> Result<Measured> {
    oha_with(settings, target, load, &[])
}

/// `oha` with more of oha's options (`-m POST`).
fn oha_with(settings: &Settings, target: &Target, load: &Load, extra: &[&str]) -> Result<Measured> {
    let mut args = load.args(0);
    // `args` ends with a loopback URL; the bench's is the Service.
    args.pop();
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.push(target.url.clone());
    let output = Command::new("nsenter")
        .args(["-t", &target.load.to_string(), "-n", "--"])
        .arg(&settings.oha)
        .args(&args)
        .output()
        .context("running oha in the load pod's network namespace (nsenter)")?;
    if !output.status.success() {
        bail!(
            "oha in {}'s load pod failed ({}): {}",
            target.path.namespace(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_report(&String::from_utf8_lossy(&output.stdout))
}

/// Waits until a short run through `target` is answered 200 throughout
/// (the policy reached both proxies).
fn wait_for_answers(settings: &Settings, target: &Target, timeout: Duration) -> Result<()> {
    let began = Instant::now();
    let probe = Load {
        rate: Some(50),
        connections: 1,
        duration: Duration::from_secs(1),
    };
    loop {
        let last = oha(settings, target, &probe);
        if let Ok(m) = &last
            && m.requests > 0
            && m.ok == m.requests
        {
            return Ok(());
        }
        if began.elapsed() > timeout {
            bail!(
                "{} did not answer 200 within {timeout:?}: {last:?}",
                target.path.namespace()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The meshed path measures a pair that enforces an SMI policy, as the
/// pairs harness's does: the manifests allow only `GET`, so a `POST` must
/// not be answered 200 (it is not when permissive mode is on, local mode's
/// default, or the policy did not reach the proxy).
fn refuses_what_the_policy_does_not_allow(settings: &Settings, meshed: &Target) -> Result<()> {
    let probe = Load {
        rate: Some(20),
        connections: 1,
        duration: Duration::from_secs(1),
    };
    let posted = oha_with(settings, meshed, &probe, &["-m", "POST"])?;
    if posted.requests == 0 || posted.ok > 0 {
        bail!(
            "the SMI policy is not in force on the meshed path: {} of {} POSTs were answered 200 \
             (the manifests must turn permissive mode off and allow only GET)",
            posted.ok,
            posted.requests
        );
    }
    Ok(())
}

/// CPU ticks this process's waited-for children used (oha, through
/// `nsenter`, which execs it).
fn children_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    procs::parse_children_ticks(&text).unwrap_or(0)
}

/// One measured run with the CPU of the proxies and the machine around it.
fn measure(settings: &Settings, target: &Target, load: &Load, repetition: usize) -> Result<Sample> {
    let ticks = |pid: i32| procs::usage(pid as u32).cpu_ticks;
    let proxies = |f: &dyn Fn(i32) -> u64| target.proxies.map_or((0, 0), |(o, i)| (f(o), f(i)));
    let (out0, in0) = proxies(&ticks);
    let app0 = ticks(target.app);
    let kids0 = children_ticks();
    let (busy0, _) = procs::machine_ticks()?;
    let started = Instant::now();
    let measured = oha(settings, target, load)?;
    let elapsed = started.elapsed().as_secs_f64();
    let (busy1, _) = procs::machine_ticks()?;
    let (out1, in1) = proxies(&ticks);
    let own = (out1 - out0) + (in1 - in0) + (ticks(target.app) - app0) + (children_ticks() - kids0);
    let per_second = procs::ticks_per_second();
    let seconds = |t: u64| t as f64 / per_second;
    Ok(Sample {
        rate: load.rate.unwrap_or(0),
        repetition,
        path: target.path,
        measured,
        outbound_cpu_s: seconds(out1 - out0),
        inbound_cpu_s: seconds(in1 - in0),
        foreign_cores: (seconds(busy1.saturating_sub(busy0)) - seconds(own)).max(0.0) / elapsed,
    })
}

/// Writes `intercept.md` and `intercept.json` into `dir`.
pub fn write(outcome: &Outcome, dir: &FsPath) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let rows = report::rows(&outcome.samples);
    std::fs::write(
        dir.join("intercept.md"),
        report::markdown(&rows, &outcome.context),
    )?;
    let json = json!({"context": outcome.context, "rows": rows, "samples": outcome.samples});
    std::fs::write(
        dir.join("intercept.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}
