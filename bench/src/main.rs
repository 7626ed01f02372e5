//! `osm-bench pairs`: the meshed path against the direct path and against
//! nginx and HAProxy mTLS pairs, in one run, on 127.0.0.1; writes a
//! Markdown table, the raw samples (JSON) and a PNG of the latency
//! percentiles. `osm-bench app` is the 1 KB application it runs behind
//! every path.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, SystemTime},
};

mod intercept_cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use osm_bench::pairs::{
    app,
    paths::{PathKind, Programs},
    plot, report,
    run::{self, Plan},
};

#[derive(Debug, Parser)]
#[command(name = "osm-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every path side by side under the same loads and report.
    Pairs(Box<PairsArgs>),
    /// Retries and outlier detection under failure: success rate, load on
    /// the backend, ejection reaction time (see bench/README.md).
    Resilience {
        /// Constant rate of the retry runs, requests/s.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Length of each run.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Worker threads per osm-proxy.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Where the report goes (resilience.md, resilience.json).
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// osm-proxy binary (default: beside this one).
        #[arg(long)]
        osm_proxy: Option<PathBuf>,
    },
    /// The memory of a release proxy whose config holds N services of
    /// three endpoints (permissive mode in a big cluster), against the
    /// same proxy with an empty config, in one run (see bench/README.md).
    ConfigMemory {
        /// Services in the big config.
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        /// osm-proxy binary (default: beside this one).
        #[arg(long)]
        osm_proxy: Option<PathBuf>,
        /// Only write the big config to this file (to profile the proxy
        /// with it by hand).
        #[arg(long)]
        write_config: Option<PathBuf>,
    },
    /// A local mesh under constant load and churn for a while; every
    /// failed request by cause and by what was happening, latency per
    /// window, memory slopes (see bench/README.md). Needs root.
    Soak(SoakArgs),
    /// The pair under real interception (local mode's pods, osm-init's
    /// rules, controller-issued identities) against the same pods without
    /// sidecars, in one run (see bench/README.md). Needs root and oha.
    Intercept(intercept_cli::InterceptArgs),
    /// The application behind every path (started by `pairs`).
    App {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1024)]
        body_bytes: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// How long the load and the churn run.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// HTTP requests per second through the split.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Churn to apply (comma-separated): rollout, controller, app, policy,
    /// meshconfig. Default: all.
    #[arg(long, value_delimiter = ',')]
    churn: Vec<osm_bench::soak::schedule::Churn>,
    /// Divide every churn period by this (4: a rollout every 15 s).
    #[arg(long, default_value_t = 1)]
    speedup: u32,
    /// The proxies' certificate lifetime; they renew at 80 % of it.
    #[arg(long, default_value = "1m")]
    cert_validity: String,
    /// Where `osm` and the mesh's binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The mesh to soak.
    #[arg(long, default_value = "bench/soak/mesh.yaml")]
    manifests: PathBuf,
    /// Where the report goes (soak.md, soak.json, soak.png).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

fn soak(args: SoakArgs) -> Result<()> {
    let bin_dir = osm_bench::local_mesh::bin_dir(args.bin_dir)?;
    let settings = osm_bench::soak::Settings {
        duration: args.duration,
        rate: args.rate,
        churn: if args.churn.is_empty() {
            osm_bench::soak::schedule::Churn::ALL.to_vec()
        } else {
            args.churn
        },
        speedup: args.speedup,
        cert_validity: args.cert_validity,
        bin_dir,
        manifests: args.manifests,
    };
    let outcome = osm_bench::soak::run(&settings)?;
    let title = format!(
        "Soak: {} at {} requests/s, churn x{}",
        humantime::format_duration(settings.duration),
        settings.rate,
        settings.speedup
    );
    osm_bench::soak::write(&outcome, &title, &args.out)?;
    let (http, tcp) = outcome.successes();
    println!(
        "soak: {http} HTTP requests and {tcp} TCP exchanges succeeded, {} failed; wrote {}/soak.md, soak.json, soak.png",
        outcome.failures(),
        args.out.display()
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
struct PairsArgs {
    /// Paths to run: direct, osm-proxy, osm-proxy+resilience (the pair with
    /// retries, limits and outlier detection configured), osm-proxy+trace1%,
    /// osm-proxy+trace100%, osm-proxy+http2 (the pair with HTTP/1.1
    /// requests multiplexed over HTTP/2 between the proxies),
    /// osm-proxy@baseline (the plain pair from --baseline-osm-proxy), nginx,
    /// haproxy (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,osm-proxy,osm-proxy+resilience,nginx,haproxy"
    )]
    paths: Vec<String>,
    /// Constant rates, requests/s (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "200,1000,5000")]
    rates: Vec<u32>,
    /// Client connections of the constant-rate runs.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Client connections of the closed-loop runs; `--closed-loop` alone:
    /// no closed-loop run.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "16,64")]
    closed_loop: Vec<usize>,
    /// Length of each measured run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before each measured run, same load (pools, handshakes).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Repetitions of each (path, load); medians are reported.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Worker threads per osm-proxy (nginx and HAProxy run one).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Response body size of the app, bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Where the report goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// osm-proxy binary (default: beside this one).
    #[arg(long)]
    osm_proxy: Option<PathBuf>,
    /// Another osm-proxy binary, run as the path osm-proxy@baseline (the
    /// plain pair): a change against the code before it, in one run.
    #[arg(long)]
    baseline_osm_proxy: Option<PathBuf>,
    /// nginx binary (default: Debian's, /usr/sbin/nginx).
    #[arg(long)]
    nginx: Option<PathBuf>,
    /// HAProxy binary (default: Debian's, /usr/sbin/haproxy).
    #[arg(long)]
    haproxy: Option<PathBuf>,
    /// oha binary (cargo install oha --locked).
    #[arg(long)]
    oha: Option<PathBuf>,
}

fn config_memory(services: usize, osm_proxy: Option<PathBuf>) -> Result<()> {
    let proxy = match osm_proxy {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("osm-bench has no directory")?
            .join("osm-proxy"),
    };
    println!("| services | RSS (MiB) | peak RSS (MiB) |\n|---:|---:|---:|");
    for n in [0, services] {
        let m = osm_bench::big_config::measure(&proxy, n)?;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "| {} | {:.1} | {:.1} |",
            m.services,
            mib(m.rss_kib),
            mib(m.peak_kib)
        );
    }
    Ok(())
}

fn version_of(program: &std::path::Path, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|e| format!("{}: {e}", program.display()))
}

fn pairs(args: PairsArgs) -> Result<()> {
    let paths = args
        .paths
        .iter()
        .map(|p| PathKind::parse(p.trim()))
        .collect::<Result<Vec<_>>>()?;
    if paths.contains(&PathKind::OsmBaseline) && args.baseline_osm_proxy.is_none() {
        anyhow::bail!("the path osm-proxy@baseline needs --baseline-osm-proxy BINARY");
    }
    let programs = Programs {
        osm_proxy: args
            .osm_proxy
            .unwrap_or_else(|| run::default_program("osm-proxy")),
        osm_proxy_baseline: args.baseline_osm_proxy,
        nginx: args.nginx.unwrap_or_else(|| run::default_program("nginx")),
        haproxy: args
            .haproxy
            .unwrap_or_else(|| run::default_program("haproxy")),
        workers: args.workers,
    };
    let oha = args.oha.unwrap_or_else(|| run::default_program("oha"));
    let plan = Plan {
        paths,
        rates: args.rates,
        connections: args.connections,
        closed_loop_connections: args.closed_loop,
        duration: args.duration,
        warmup: args.warmup,
        repetitions: args.repetitions.max(1),
        body_bytes: args.body_bytes,
    };
    let work = tempfile::Builder::new().prefix("osm-bench-").tempdir()?;
    let outcome = run::execute(&plan, &programs, &oha, work.path())?;
    let rows = report::rows(&outcome.samples);
    let started = humantime::format_rfc3339_seconds(SystemTime::now());
    let context = format!(
        "# osm-proxy vs nginx vs HAProxy, {started}\n\n\
         All on 127.0.0.1: oha -> [outbound proxy -> mTLS (TLS 1.3, ECDSA P-256, client certificate \
         required) -> inbound proxy] -> app (hyper, {} B body). HTTP/1.1 keep-alive, {} client \
         connections at constant rate, {} s runs after {} s warm-up, {} repetitions, paths \
         interleaved. osm-proxy: {} worker thread(s), access log off, SMI policy in force; \
         nginx and HAProxy: one worker each.\n\n\
         Machine: {}; {}. Tools: {}; {}; {}; {}.",
        plan.body_bytes,
        plan.connections,
        plan.duration.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        plan.repetitions,
        programs.workers,
        osm_bench::machine::summary(),
        version_of(std::path::Path::new("uname"), "-sr"),
        version_of(&oha, "--version"),
        version_of(&programs.osm_proxy, "--version"),
        version_of(&programs.nginx, "-v"),
        version_of(&programs.haproxy, "-v"),
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let md = report::markdown(&rows, &outcome, &context);
    std::fs::write(args.out.join("pairs.md"), &md)?;
    std::fs::write(
        args.out.join("pairs.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "rows": rows, "samples": outcome.samples, "memory": outcome.memory,
        }))?,
    )?;
    plot::latency_png(
        &rows,
        "Latency at constant rate (oha, latency-corrected)",
        &args.out.join("latency.png"),
    )?;
    println!("{md}");
    eprintln!(
        "wrote {}/pairs.md, pairs.json, latency.png",
        args.out.display()
    );
    Ok(())
}

fn resilience(
    rate: u32,
    duration: Duration,
    workers: usize,
    out: PathBuf,
    osm_proxy: Option<PathBuf>,
) -> Result<()> {
    let programs = Programs {
        osm_proxy: osm_proxy.unwrap_or_else(|| run::default_program("osm-proxy")),
        osm_proxy_baseline: None,
        nginx: PathBuf::new(),
        haproxy: PathBuf::new(),
        workers,
    };
    let work = tempfile::Builder::new().prefix("osm-bench-").tempdir()?;
    let outcome = osm_bench::resilience::execute(&programs, work.path(), rate, duration)?;
    let started = humantime::format_rfc3339_seconds(SystemTime::now());
    let context = format!(
        "# osm-proxy resilience under failure, {started}

         Real osm-proxy processes ({workers} worker thread(s) each) on 127.0.0.1; the applications \
         run in the harness, which counts and times every request they get. Retries: client -> \
         outbound proxy -> mTLS -> inbound proxy -> app, {rate} rps over 16 keep-alive connections \
         for {} s. Ejection: client -> outbound proxy -> two plaintext endpoints, 100 rps over 4 \
         connections for {} s, one endpoint failing from a third of the run. Machine: {} CPUs; {}.",
        duration.as_secs_f64(),
        duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        version_of(&programs.osm_proxy, "--version"),
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md = osm_bench::resilience::markdown(&outcome, &context);
    std::fs::write(out.join("resilience.md"), &md)?;
    std::fs::write(
        out.join("resilience.json"),
        serde_json::to_string_pretty(&outcome)?,
    )?;
    println!("{md}");
    eprintln!("wrote {}/resilience.md, resilience.json", out.display());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    osm_bench::interrupt::install();
    let result = match cli.command {
        Command::Pairs(args) => pairs(*args),
        Command::Resilience {
            rate,
            duration,
            workers,
            out,
            osm_proxy,
        } => resilience(rate, duration, workers, out, osm_proxy),
        Command::ConfigMemory {
            services,
            write_config: Some(path),
            ..
        } => osm_bench::big_config::write(&path, services),
        Command::ConfigMemory {
            services,
            osm_proxy,
            write_config: None,
        } => config_memory(services, osm_proxy),
        Command::Soak(args) => soak(args),
        Command::Intercept(args) => intercept_cli::intercept(args),
        Command::App {
            listen,
            body_bytes,
            threads,
        } => app::run(listen, body_bytes, threads),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osm-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
