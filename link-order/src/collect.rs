//! `collect`: the order from profiles on disk (the glue around
//! `callgrind`, `perf` and `order`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{callgrind, order, perf};

/// Writes to `out` the functions of `object` that the callgrind
/// `idle_profiles` saw (a proxy before any traffic), then those the other
/// `profiles` saw, each in the order of first use, then those only the
/// `perf_scripts` sampled (they have no time); answers how many, and how
/// many of them the idle profiles had.
pub fn run(
    object: &str,
    out: &Path,
    perf_scripts: &[PathBuf],
    idle_profiles: &[PathBuf],
    profiles: &[PathBuf],
) -> Result<(usize, usize)> {
    let idle_costs = self_costs(object, idle_profiles)?;
    let costs = self_costs(object, profiles)?;
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
    let seen = |costs: &[(String, u32, u64)]| {
        order::entries_by_first_use(costs.iter().map(|(name, part, cost)| order::Seen {
            name,
            part: *part,
            cost: *cost,
        }))
    };
    let sampled = samples.iter().map(|(name, cost)| order::Seen {
        name,
        part: 0,
        cost: *cost,
    });
    let idle = seen(&idle_costs);
    let idle_count = idle.len();
    let entries = order::tiers(idle, seen(&costs), order::entries_by_first_use(sampled));
    std::fs::write(out, order::render(&entries))
        .with_context(|| format!("writing {}", out.display()))?;
    Ok((entries.len(), idle_count))
}

/// What each function of `object` cost in each of `profiles`, with the
/// dump it was seen in.
fn self_costs(object: &str, profiles: &[PathBuf]) -> Result<Vec<(String, u32, u64)>> {
    let mut costs = Vec::new();
    for profile in profiles {
        let text = read(profile)?;
        let part = callgrind::part(&text);
        costs.extend(
            callgrind::self_costs(&text, object)
                .into_iter()
                .map(|(name, cost)| (name, part, cost)),
        );
    }
    Ok(costs)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
