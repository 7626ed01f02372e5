//! `osm-link-order`: the command line of the crate (see lib.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use osm_link_order::{collect, link};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the order of the functions callgrind profiles of the proxy ran:
    /// those an idle proxy ran first, then the rest; in the order of first
    /// use (by dump) in each, the dearest first within one.
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
        /// `perf script -F ip,sym,dso --no-demangle` output of the page
        /// faults (`perf record -e minor-faults -c 1`) of proxies that have
        /// carried no traffic, on this machine's CPU: their functions join
        /// the idle ones (after callgrind's). One file each.
        #[arg(long)]
        idle_faults: Vec<PathBuf>,
        /// callgrind output files of proxies that have carried no traffic
        /// yet (startup, the config stream, probes): their functions go
        /// first, so that an idle proxy keeps only that block of its code
        /// resident. One file each (`--idle a --idle b`); also given as
        /// `profiles` or not: the same.
        #[arg(long)]
        idle: Vec<PathBuf>,
        /// The order these profiles replace (proxy/link-order.txt): the
        /// functions it had as idle that the profiles still see run stay
        /// idle (a function sharing a block of code with one that faulted
        /// first never faults itself, so one regeneration's page faults
        /// miss some that the last one found).
        #[arg(long)]
        previous: Option<PathBuf>,
        /// The path of the function with which a proxy gives back the
        /// pages only starting used (`osm_proxy::memory::start_pages::release`):
        /// what the idle profiles ran after it, the code an idle sidecar
        /// keeps resident, goes first of all. The idle profiles must be
        /// dumped finely enough to have dumps after it.
        #[arg(long)]
        steady_after: Option<String>,
        /// `perf script -F ip,sym,dso --no-demangle` output of the page
        /// faults of idle proxies after they gave back their start pages,
        /// on this machine's CPU: their functions join the steady ones
        /// (after callgrind's). One file each.
        #[arg(long)]
        steady_faults: Vec<PathBuf>,
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
            perf,
            idle_faults,
            idle,
            previous,
            steady_after,
            steady_faults,
            profiles,
        } => {
            let written = collect::run(
                &object,
                &out,
                &collect::Profiles {
                    idle: &idle,
                    idle_faults: &idle_faults,
                    loaded: &profiles,
                    sampled: &perf,
                    previous: previous.as_deref(),
                    steady_after: steady_after.as_deref(),
                    steady_faults: &steady_faults,
                },
            )?;
            eprintln!(
                "wrote {} functions to {} ({} of them run by idle proxies, first; of those, {} \
                 run once started, first of all)",
                written.functions,
                out.display(),
                written.idle,
                written.steady
            );
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
