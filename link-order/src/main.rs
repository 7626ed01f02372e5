//! `osm-link-order`: the command line of the crate (see lib.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use osm_link_order::{callgrind, link, order, perf};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the order of the functions callgrind profiles of the proxy ran:
    /// in the order of first use (by dump), the dearest first within one.
    Collect {
        /// The object whose functions are kept (its path's end, as callgrind
        /// names it).
        #[arg(long, default_value = "osm-proxy")]
        object: String,
        /// The order file to write (proxy/link-order.txt).
        #[arg(long)]
        out: PathBuf,
        /// `perf script -F ip,sym,dso --no-demangle` output of the proxy
        /// under load on this machine's CPU: functions callgrind's virtual
        /// CPU cannot run (chosen by CPU features) go after its own.
        #[arg(long)]
        perf: Vec<PathBuf>,
        /// callgrind output files (`valgrind --tool=callgrind --demangle=no`).
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
    },
    /// Run a linker with the order applied (as rustc's `-C linker`, through
    /// deploy/link-order-cc). LLD only (`--symbol-ordering-file`).
    Link {
        /// The order file (proxy/link-order.txt).
        #[arg(long)]
        order: PathBuf,
        /// Where to write what was placed (also printed on stderr).
        #[arg(long)]
        report: Option<PathBuf>,
        /// The linker and its arguments.
        #[arg(last = true, required = true)]
        linker: Vec<OsString>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Collect {
            object,
            out,
            perf: perf_scripts,
            profiles,
        } => {
            let mut costs: Vec<(String, u32, u64)> = Vec::new();
            for profile in &profiles {
                let text = std::fs::read_to_string(profile)
                    .with_context(|| format!("reading {}", profile.display()))?;
                let part = callgrind::part(&text);
                costs.extend(
                    callgrind::self_costs(&text, &object)
                        .into_iter()
                        .map(|(name, cost)| (name, part, cost)),
                );
            }
            if costs.is_empty() {
                anyhow::bail!(
                    "no function of an object ending in {object:?} in {} profiles: were they made with \
                     `valgrind --tool=callgrind --demangle=no` of that binary?",
                    profiles.len()
                );
            }
            let mut samples: Vec<(String, u64)> = Vec::new();
            for script in &perf_scripts {
                let text = std::fs::read_to_string(script)
                    .with_context(|| format!("reading {}", script.display()))?;
                samples.extend(perf::sample_counts(&text, &object));
            }
            let profiled = costs.iter().map(|(name, part, cost)| order::Seen {
                name,
                part: *part,
                cost: *cost,
            });
            // Samples have no time: they go after everything callgrind saw.
            let sampled = samples.iter().map(|(name, cost)| order::Seen {
                name,
                part: 0,
                cost: *cost,
            });
            let entries = order::append_missing(
                order::entries_by_first_use(profiled),
                order::entries_by_first_use(sampled),
            );
            std::fs::write(&out, order::render(&entries))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} functions to {}", entries.len(), out.display());
            Ok(())
        }
        Command::Link {
            order,
            report,
            linker,
        } => {
            let status = link::run(&order, report.as_deref(), &linker)?;
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}
