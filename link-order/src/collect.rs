//! `collect`: the order from profiles on disk (the glue around
//! `callgrind`, `perf` and `order`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{callgrind, order, perf};

/// The profiles an order is made from.
pub struct Profiles<'a> {
    /// callgrind output of proxies before any traffic.
    pub idle: &'a [PathBuf],
    /// `perf script -F ip,sym,dso --no-demangle` of the page faults of
    /// proxies before any traffic, on this machine's CPU: the functions
    /// callgrind's CPU does not choose (a function in a block of code
    /// already mapped does not fault: found at a later regeneration).
    pub idle_faults: &'a [PathBuf],
    /// callgrind output of proxies at work.
    pub loaded: &'a [PathBuf],
    /// `perf script` samples of proxies at work on this machine's CPU.
    pub sampled: &'a [PathBuf],
    /// The order these profiles replace: its idle functions that the
    /// profiles still saw run stay idle (`order::keep_idle`).
    pub previous: Option<&'a Path>,
}

/// Writes to `out` the functions of `object` that idle proxies ran (what
/// callgrind saw, then what only their page faults showed), then those
/// loaded proxies ran (callgrind), each in the order of first use, then
/// those only the samples of loaded proxies saw (they have no time);
/// answers how many, and how many of them idle proxies ran.
pub fn run(object: &str, out: &Path, profiles: &Profiles<'_>) -> Result<(usize, usize)> {
    let loaded = profiled_entries(object, profiles.loaded)?;
    if loaded.is_empty() {
        bail!(
            "no function of an object ending in {object:?} in {} profiles: were they made with \
             `valgrind --tool=callgrind --demangle=no` of that binary?",
            profiles.loaded.len()
        );
    }
    let idle = order::append_missing(
        profiled_entries(object, profiles.idle)?,
        sampled_entries(object, profiles.idle_faults)?,
    );
    let sampled = sampled_entries(object, profiles.sampled)?;
    let idle = match profiles.previous {
        Some(previous) => {
            let still_run = order::tiers(idle.clone(), loaded.clone(), sampled.clone());
            order::keep_idle(idle, order::previous_idle(&read(previous)?), &still_run)
        }
        None => idle,
    };
    let idle_count = idle.len();
    let entries = order::tiers(idle, loaded, sampled);
    std::fs::write(out, order::render(&entries, idle_count))
        .with_context(|| format!("writing {}", out.display()))?;
    Ok((entries.len(), idle_count))
}

/// The functions of `object` in callgrind `profiles`, by first use (the
/// dump each was first seen in), the dearest first within a dump.
fn profiled_entries(object: &str, profiles: &[PathBuf]) -> Result<Vec<String>> {
    let mut costs: Vec<(String, u32, u64)> = Vec::new();
    for profile in profiles {
        let text = read(profile)?;
        let part = callgrind::part(&text);
        costs.extend(
            callgrind::self_costs(&text, object)
                .into_iter()
                .map(|(name, cost)| (name, part, cost)),
        );
    }
    Ok(order::entries_by_first_use(costs.iter().map(
        |(name, part, cost)| order::Seen {
            name,
            part: *part,
            cost: *cost,
        },
    )))
}

/// The functions of `object` in `perf script` outputs, the most sampled
/// first.
fn sampled_entries(object: &str, scripts: &[PathBuf]) -> Result<Vec<String>> {
    let mut samples: Vec<(String, u64)> = Vec::new();
    for script in scripts {
        samples.extend(perf::sample_counts(&read(script)?, object));
    }
    Ok(order::entries_by_first_use(samples.iter().map(
        |(name, cost)| order::Seen {
            name,
            part: 0,
            cost: *cost,
        },
    )))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callgrind(part: u32, functions: &[(&str, u64)]) -> String {
        let mut text = format!("version: 1\npart: {part}\nevents: Ir\nob=(1) /osm/bin/osm-proxy\n");
        for (id, (name, cost)) in functions.iter().enumerate() {
            text += &format!("fn=({}) {name}\n0 {cost}\n", id + 1);
        }
        text
    }

    fn perf(functions: &[&str]) -> String {
        functions
            .iter()
            .map(|name| format!("7f00 {name} (/osm/bin/osm-proxy)\n"))
            .collect()
    }

    #[test]
    fn idle_code_then_its_faults_then_loaded_code_then_samples() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let idle = [
            file("idle.1", callgrind(1, &[("main", 10), ("config", 5)])),
            file("idle.2", callgrind(2, &[("probe", 7)])),
        ];
        // The CPU's own string function faulted; `main` was seen already.
        let idle_faults = [file("faults", perf(&["strlen_evex", "main"]))];
        let loaded = [file(
            "loaded.1",
            callgrind(1, &[("main", 10), ("route", 900), ("probe", 3)]),
        )];
        let sampled = [file("sampled", perf(&["aes_vaes", "route"]))];
        // The order before found `aes_vaes` idle (it still runs: kept idle)
        // and `gone` (no profile runs it now: dropped).
        let keys = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let previous = file(
            "previous.txt",
            order::render(&keys(&["main", "aes_vaes", "gone", "route"]), 3),
        );
        let out = dir.path().join("order.txt");
        let (written, idle_count) = run(
            "osm-proxy",
            &out,
            &Profiles {
                idle: &idle,
                idle_faults: &idle_faults,
                loaded: &loaded,
                sampled: &sampled,
                previous: Some(&previous),
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            order::parse(&text),
            [
                "main",
                "config",
                "probe",
                "strlen_evex",
                "aes_vaes",
                "route"
            ]
        );
        assert_eq!((written, idle_count), (6, 5));
        assert_eq!(
            order::previous_idle(&text),
            ["main", "config", "probe", "strlen_evex", "aes_vaes"]
        );
    }
}
