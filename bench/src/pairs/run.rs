//! One comparison run: every path started side by side, then each load
//! level run on each path in turn (the order rotated per repetition, so no
//! path always runs first or right after a heavy one), each measured run
//! preceded by a warm-up at the same load so pools and handshakes are done.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{
    load::{self, Load, Measured},
    paths::{self, PathKind, Process, Programs, RunningPath},
    pki, procs,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub paths: Vec<PathKind>,
    pub rates: Vec<u32>,
    /// Connections of the constant-rate runs.
    pub connections: usize,
    /// Connections of the closed-loop runs (the best is the maximum rate).
    pub closed_loop_connections: Vec<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    pub repetitions: usize,
    pub body_bytes: usize,
}

/// What one proxy process used during one measured run.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyUsage {
    pub role: String,
    pub cpu_seconds: f64,
}

/// One measured run of one path.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub path: PathKind,
    pub load: Load,
    pub repetition: usize,
    pub measured: Measured,
    pub elapsed_seconds: f64,
    pub proxies: Vec<ProxyUsage>,
    /// CPU the app used, in cores.
    pub app_cores: f64,
    /// CPU used by everything outside this run (other work on the
    /// machine), in cores: runs above ~0.3 were disturbed.
    pub foreign_cores: f64,
}

/// What a proxy process holds in memory.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyMemory {
    pub path: PathKind,
    pub role: String,
    /// Peak resident set over the whole run (VmHWM), binary pages included.
    pub peak_rss_kib: u64,
    /// Private (anonymous) resident memory at the end: what each further
    /// copy of the proxy costs, the binary's pages being shared.
    pub anon_rss_kib: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    /// Memory of each proxy process at the end, KiB.
    pub memory: Vec<ProxyMemory>,
}

/// Runs the plan; `dir` receives certificates, configs and logs.
pub fn execute(plan: &Plan, programs: &Programs, oha: &Path, dir: &Path) -> Result<Outcome> {
    pki::write(dir)?;
    let app_port = paths::free_port()?;
    let exe = std::env::current_exe().context("the harness's own path")?;
    let app = start_app(&exe, app_port, plan.body_bytes, dir)?;
    let mut running: Vec<RunningPath> = Vec::new();
    for &kind in &plan.paths {
        eprintln!("starting {}", kind.name());
        running.push(paths::start(kind, programs, dir, app_port)?);
    }
    let mut loads: Vec<Load> = plan
        .rates
        .iter()
        .map(|&rate| Load {
            rate: Some(rate),
            connections: plan.connections,
            duration: plan.duration,
        })
        .collect();
    loads.extend(plan.closed_loop_connections.iter().map(|&c| Load {
        rate: None,
        connections: c,
        duration: plan.duration,
    }));
    let mut samples = Vec::new();
    for load in &loads {
        for repetition in 0..plan.repetitions {
            for i in 0..running.len() {
                let path = &running[(i + repetition) % running.len()];
                let warmup = Load {
                    duration: plan.warmup,
                    ..*load
                };
                load::run(oha, &warmup, path.port)?;
                let sample = measure(path, load, repetition, app.pid(), oha)?;
                eprintln!(
                    "{:>9} {:>12} rep {}: {:>8.0} rps  p50 {:.3}  p99 {:.3}  max {:.2} ms  ok {}/{}  foreign {:.2} cores",
                    path.kind.name(),
                    describe(load),
                    repetition + 1,
                    sample.measured.rps,
                    sample.measured.p50,
                    sample.measured.p99,
                    sample.measured.max,
                    sample.measured.ok,
                    sample.measured.requests,
                    sample.foreign_cores
                );
                samples.push(sample);
            }
        }
    }
    let memory = running
        .iter()
        .flat_map(|path| {
            path.proxies.iter().map(|p| {
                let usage = procs::usage(p.pid());
                ProxyMemory {
                    path: path.kind,
                    role: p.role.clone(),
                    peak_rss_kib: usage.peak_rss_kib,
                    anon_rss_kib: usage.anon_rss_kib,
                }
            })
        })
        .collect();
    Ok(Outcome { samples, memory })
}

/// `1000 rps` or `closed, 64 conns`.
pub fn describe(load: &Load) -> String {
    match load.rate {
        Some(rate) => format!("{rate} rps"),
        None => format!("closed/{}c", load.connections),
    }
}

/// Starts the app (`osm-bench app`, from the binary `exe`) on `port` and
/// waits until it answers.
pub fn start_app(exe: &Path, port: u16, body_bytes: usize, dir: &Path) -> Result<Process> {
    let mut command = Command::new(exe);
    command.args([
        "app",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--body-bytes",
        &body_bytes.to_string(),
    ]);
    let app = Process::spawn("app", &mut command, &dir.join("app.log"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while paths::get_status(([127, 0, 0, 1], port).into()).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the app did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(app)
}

fn children_cpu_ticks() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| {
        let micros = |t: nix::sys::time::TimeVal| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_usec()).unwrap_or(0)
        };
        let ticks = procs::ticks_per_second();
        ((micros(u.user_time()) + micros(u.system_time())) as f64 * ticks / 1e6) as u64
    })
}

fn measure(
    path: &RunningPath,
    load: &Load,
    repetition: usize,
    app_pid: u32,
    oha: &Path,
) -> Result<Sample> {
    let before: Vec<u64> = path
        .proxies
        .iter()
        .map(|p| procs::usage(p.pid()).cpu_ticks)
        .collect();
    let app_before = procs::usage(app_pid).cpu_ticks;
    let (machine_before, _) = procs::machine_ticks()?;
    let oha_before = children_cpu_ticks();
    let started = Instant::now();
    let measured = load::run(oha, load, path.port)?;
    let elapsed = started.elapsed().as_secs_f64();
    let oha_ticks = children_cpu_ticks().saturating_sub(oha_before);
    let (machine_after, _) = procs::machine_ticks()?;
    let app_ticks = procs::usage(app_pid).cpu_ticks.saturating_sub(app_before);
    let tick = procs::ticks_per_second();
    let mut ours = app_ticks + oha_ticks;
    let proxies = path
        .proxies
        .iter()
        .zip(before)
        .map(|(p, before)| {
            let ticks = procs::usage(p.pid()).cpu_ticks.saturating_sub(before);
            ours += ticks;
            ProxyUsage {
                role: p.role.clone(),
                cpu_seconds: ticks as f64 / tick,
            }
        })
        .collect();
    let foreign = machine_after
        .saturating_sub(machine_before)
        .saturating_sub(ours);
    Ok(Sample {
        path: path.kind,
        load: *load,
        repetition,
        measured,
        elapsed_seconds: elapsed,
        proxies,
        app_cores: app_ticks as f64 / tick / elapsed,
        foreign_cores: foreign as f64 / tick / elapsed,
    })
}

/// Where the programs are by default: osm-proxy beside this binary (same
/// cargo profile), nginx and HAProxy from Debian, oha from cargo install.
pub fn default_program(name: &str) -> PathBuf {
    if name == "osm-proxy"
        && let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        return dir.join("osm-proxy");
    }
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    home.map(|h| h.join("bin").join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
