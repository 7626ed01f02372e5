//! `collect`: the order from profiles on disk (the glue around
//! `callgrind`, `perf` and `order`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{
    callgrind,
    key::key_of_path,
    order, perf,
    steady::{self, Dump},
};

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
    /// The path of the function with which an idle proxy gives back the
    /// pages only starting used: what the idle profiles ran after it goes
    /// first of all (`steady`).
    pub steady_after: Option<&'a str>,
    /// `perf script` of the page faults of idle proxies after they gave
    /// back their start pages, on this machine's CPU: their functions join
    /// the steady ones (after callgrind's).
    pub steady_faults: &'a [PathBuf],
}

/// How many functions an order has, and in its first tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub functions: usize,
    /// Run by idle proxies (the steady ones among them).
    pub idle: usize,
    /// Run by idle proxies after they gave back their start pages.
    pub steady: usize,
}

/// Writes to `out` the functions of `object` that idle proxies ran once
/// started (with `steady_after`), then the rest of what they ran (what
/// callgrind saw, then what only their page faults showed), then those
/// loaded proxies ran (callgrind), each in the order of first use, then
/// those only the samples of loaded proxies saw (they have no time).
pub fn run(object: &str, out: &Path, profiles: &Profiles<'_>) -> Result<Written> {
    let loaded = entries(&dumps(object, profiles.loaded)?);
    if loaded.is_empty() {
        bail!(
            "no function of an object ending in {object:?} in {} profiles: were they made with \
             `valgrind --tool=callgrind --demangle=no` of that binary?",
            profiles.loaded.len()
        );
    }
    let idle_dumps = dumps(object, profiles.idle)?;
    let steady = match profiles.steady_after {
        Some(path) => entries(
            steady::after_marker(&idle_dumps, &key_of_path(path)).with_context(|| {
                format!(
                    "no idle profile ran {path}: were the idle proxies profiled long enough \
                     after they turned ready to give back their start pages?"
                )
            })?,
        ),
        None => Vec::new(),
    };
    let steady = order::append_missing(steady, sampled_entries(object, profiles.steady_faults)?);
    let steady_count = steady.len();
    let idle = order::append_missing(
        order::append_missing(steady, entries(&idle_dumps)),
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
    Ok(Written {
        functions: entries.len(),
        idle: idle_count,
        steady: steady_count,
    })
}

/// The functions of `object` in each of the callgrind `profiles`.
fn dumps(object: &str, profiles: &[PathBuf]) -> Result<Vec<Dump>> {
    profiles
        .iter()
        .map(|profile| {
            let text = read(profile)?;
            Ok(Dump {
                process: callgrind::pid(&text),
                part: callgrind::part(&text),
                costs: callgrind::self_costs(&text, object),
            })
        })
        .collect()
}

/// The functions of `dumps`, by first use (the dump each was first seen
/// in), the dearest first within a dump.
fn entries<'a>(dumps: impl IntoIterator<Item = &'a Dump>) -> Vec<String> {
    order::entries_by_first_use(dumps.into_iter().flat_map(|dump| {
        dump.costs.iter().map(|(name, cost)| order::Seen {
            name,
            part: dump.part,
            cost: *cost,
        })
    }))
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

    const RELEASE: &str = "_ZN1m7release17h0123456789abcdefE";

    fn callgrind(part: u32, functions: &[(&str, u64)]) -> String {
        let mut text =
            format!("version: 1\npid: 77\npart: {part}\nevents: Ir\nob=(1) /osm/bin/osm-proxy\n");
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

    fn write(dir: &Path, name: &str, text: String) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn steady_idle_code_then_idle_code_then_its_faults_then_loaded_code_then_samples() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: String| write(dir.path(), name, text);
        let idle = [
            file("idle.1", callgrind(1, &[("main", 10), ("config", 5)])),
            file("idle.2", callgrind(2, &[("probe", 7), (RELEASE, 1)])),
            // After the proxy gave its start pages back: what stays.
            file("idle.3", callgrind(3, &[("timer", 9), ("probe", 4)])),
        ];
        // The CPU's own string function faulted; `main` was seen already.
        let idle_faults = [file("faults", perf(&["strlen_evex", "main"]))];
        // ... and so did its own `memcpy` after the start pages went.
        let steady_faults = [file("steady-faults", perf(&["memcpy_evex", "timer"]))];
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
        let written = run(
            "osm-proxy",
            &out,
            &Profiles {
                idle: &idle,
                idle_faults: &idle_faults,
                loaded: &loaded,
                sampled: &sampled,
                previous: Some(&previous),
                steady_after: Some("m::release"),
                steady_faults: &steady_faults,
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let idle = [
            "timer",
            "probe",
            "memcpy_evex",
            "main",
            "config",
            RELEASE,
            "strlen_evex",
            "aes_vaes",
        ];
        assert_eq!(order::parse(&text), [&idle[..], &["route"]].concat());
        assert_eq!(
            written,
            Written {
                functions: 9,
                idle: 8,
                steady: 3
            }
        );
        assert_eq!(order::previous_idle(&text), idle);
    }

    #[test]
    fn a_marker_no_idle_profile_ran_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let idle = [write(dir.path(), "idle.1", callgrind(1, &[("main", 10)]))];
        let loaded = [write(dir.path(), "loaded.1", callgrind(1, &[("route", 9)]))];
        let error = run(
            "osm-proxy",
            &dir.path().join("order.txt"),
            &Profiles {
                idle: &idle,
                idle_faults: &[],
                loaded: &loaded,
                sampled: &[],
                previous: None,
                steady_after: Some("m::release"),
                steady_faults: &[],
            },
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("no idle profile ran m::release"),
            "{error:#}"
        );
    }
}
