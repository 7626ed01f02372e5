//! `osm-bench intercept`'s arguments and what it prints (the harness is
//! the library's `intercept` module).

use std::{path::PathBuf, time::Duration};

use anyhow::Result;

/// The pair under real interception (local mode's pods, osm-init's rules,
/// controller-issued identities) against the same pods without sidecars,
/// in one run (see bench/README.md). Needs root and oha.
#[derive(Debug, clap::Args)]
pub struct InterceptArgs {
    /// Constant rates, requests/s (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rates: Vec<u32>,
    /// Client connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Length of each measured run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before each measured run, same load.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Repetitions of each (rate, path); medians are reported.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Where `osm` and the mesh's binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// oha binary (cargo install oha --locked).
    #[arg(long)]
    oha: Option<PathBuf>,
    /// The pods to run.
    #[arg(long, default_value = "bench/intercept/mesh.yaml")]
    manifests: PathBuf,
    /// Where the report goes (intercept.md, intercept.json).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

pub fn intercept(args: InterceptArgs) -> Result<()> {
    let bin_dir = osm_bench::local_mesh::bin_dir(args.bin_dir)?;
    let settings = osm_bench::intercept::Settings {
        bin_dir,
        oha: args
            .oha
            .unwrap_or_else(|| osm_bench::pairs::run::default_program("oha")),
        manifests: args.manifests,
        rates: args.rates,
        connections: args.connections,
        duration: args.duration,
        warmup: args.warmup,
        repetitions: args.repetitions,
    };
    let outcome = osm_bench::intercept::run(&settings)?;
    osm_bench::intercept::write(&outcome, &args.out)?;
    println!(
        "intercept: {} runs; wrote {}/intercept.md, intercept.json",
        outcome.samples.len(),
        args.out.display()
    );
    Ok(())
}
