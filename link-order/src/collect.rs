//! `collect`: the order from profiles on disk (the glue around
//! `callgrind`, `perf` and `order`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{callgrind, order, perf};

/// Writes to `out` the functions of `object` that the callgrind `profiles`
/// saw, in the order of first use, then those only the `perf_scripts`
/// sampled (they have no time); answers how many.
pub fn run(
    object: &str,
    out: &Path,
    perf_scripts: &[PathBuf],
    profiles: &[PathBuf],
) -> Result<usize> {
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
    if costs.is_empty() {
        bail!(
            "no function of an object ending in {object:?} in {} profiles: were they made with \
             `valgrind --tool=callgrind --demangle=no` of that binary?",
            profiles.len()
        );
    }
    let mut samples: Vec<(String, u64)> = Vec::new();
    for script in perf_scripts {
        samples.extend(perf::sample_counts(&read(script)?, object));
    }
    let profiled = costs.iter().map(|(name, part, cost)| order::Seen {
        name,
        part: *part,
        cost: *cost,
    });
    let sampled = samples.iter().map(|(name, cost)| order::Seen {
        name,
        part: 0,
        cost: *cost,
    });
    let entries = order::append_missing(
        order::entries_by_first_use(profiled),
        order::entries_by_first_use(sampled),
    );
    std::fs::write(out, order::render(&entries))
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(entries.len())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
