//! The order itself: which functions go first, and which symbols of one
//! link they are.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::key::{entry_name, stable_key};

/// A defined function symbol of the objects being linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub size: u64,
}

/// What a profile says of one function: the dump it was first seen in (see
/// `callgrind::part`) and what it cost there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<'a> {
    pub name: &'a str,
    pub part: u32,
    pub cost: u64,
}

/// The entry names of the functions profiled in the order a process first
/// runs them (by the earliest dump that has them), the dearest first within
/// a dump, ties by name so the same profiles always give the same file.
/// Startup code comes first and together, then what the first requests
/// run. (The dumps are too coarse to tell idle from loaded code: what an
/// idle proxy runs is profiled apart and goes first, `collect::run`.)
/// Names of one entry (callgrind's `'2`, LTO's suffixes) add up.
pub fn entries_by_first_use<'a>(seen: impl IntoIterator<Item = Seen<'a>>) -> Vec<String> {
    let mut by_entry: HashMap<&str, (u32, u64)> = HashMap::new();
    for Seen { name, part, cost } in seen {
        let (first, total) = by_entry.entry(entry_name(name)).or_insert((part, 0));
        *first = (*first).min(part);
        *total += cost;
    }
    let mut entries: Vec<(&str, (u32, u64))> = by_entry.into_iter().collect();
    entries.sort_by(|(a, (pa, ca)), (b, (pb, cb))| {
        pa.cmp(pb).then_with(|| cb.cmp(ca)).then_with(|| a.cmp(b))
    });
    entries
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// `first` then what `then` adds (entries not in `first`), in their orders.
pub fn append_missing(first: Vec<String>, then: Vec<String>) -> Vec<String> {
    let seen: HashSet<String> = first.iter().cloned().collect();
    let mut out = first;
    out.extend(then.into_iter().filter(|entry| !seen.contains(entry)));
    out
}

/// The whole order: what idle proxies ran, then what loaded ones ran, then
/// what only native sampling saw; each without what an earlier one has.
pub fn tiers(idle: Vec<String>, loaded: Vec<String>, sampled: Vec<String>) -> Vec<String> {
    append_missing(append_missing(idle, loaded), sampled)
}

/// What one link gets of the order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Symbol names for the linker, in the order's order; all the symbols
    /// of a key, by name.
    pub names: Vec<String>,
    /// Entries of the order found by their exact name.
    pub exact: usize,
    /// Entries found only by their key (a build the order was not made
    /// from): every instance with that key is placed.
    pub by_key: usize,
    pub total: usize,
    /// Bytes of code those symbols hold (what goes first).
    pub bytes: u64,
}

/// The symbols of `symbols` that `order` lists, in its order: an entry's
/// own symbol where the link has it, else every symbol with its key.
pub fn resolve(order: &[String], symbols: &[Symbol]) -> Resolution {
    let mut by_entry: HashMap<&str, BTreeMap<&str, u64>> = HashMap::new();
    let mut by_key: HashMap<String, BTreeMap<&str, u64>> = HashMap::new();
    for symbol in symbols {
        let name = symbol.name.as_str();
        by_entry
            .entry(entry_name(name))
            .or_default()
            .insert(name, symbol.size);
        by_key
            .entry(stable_key(name))
            .or_default()
            .insert(name, symbol.size);
    }
    let mut resolution = Resolution {
        total: order.len(),
        ..Resolution::default()
    };
    let mut placed: HashSet<&str> = HashSet::new();
    for entry in order {
        let found = match by_entry.get(entry.as_str()) {
            Some(found) => {
                resolution.exact += 1;
                found
            }
            None => match by_key.get(&stable_key(entry)) {
                Some(found) => {
                    resolution.by_key += 1;
                    found
                }
                None => continue,
            },
        };
        for (&name, &size) in found {
            // A symbol is placed once, where it is first listed.
            if placed.insert(name) {
                resolution.names.push(name.to_owned());
                resolution.bytes += size;
            }
        }
    }
    resolution
}

const HEADER: &str = "\
# The shipped osm-proxy's functions in the order its linker lays them out,
# in the order a proxy first runs them (symbol names without LTO's suffixes).
# Written by `osm-link-order collect` from callgrind profiles of the proxy
# under load (bench/README.md, \"Link order\"); read by `deploy/build-proxy`.
";

/// The line after the idle tier of an order file (the next collect reads
/// what an earlier one found idle: [`previous_idle`]).
pub const IDLE_END: &str = "# end of what idle proxies ran";

/// An order file: the first `idle` keys are the idle tier.
pub fn render(keys: &[String], idle: usize) -> String {
    let mut out = String::from(HEADER);
    for (i, key) in keys.iter().enumerate() {
        if i == idle {
            out.push_str(IDLE_END);
            out.push('\n');
        }
        out.push_str(key);
        out.push('\n');
    }
    if idle >= keys.len() {
        out.push_str(IDLE_END);
        out.push('\n');
    }
    out
}

/// The idle tier of an order file: its keys before [`IDLE_END`] (none in a
/// file without it).
pub fn previous_idle(text: &str) -> Vec<String> {
    match text.split_once(&format!("\n{IDLE_END}\n")) {
        Some((idle, _)) => parse(idle),
        None => Vec::new(),
    }
}

/// What idle proxies ran now, then what an earlier order found them
/// running that the profiles still saw run (`still_run`). The page faults
/// name only the first function of a block of code to be touched, so each
/// regeneration misses idle functions that shared a block with another in
/// the last layout; kept, the idle tier grows towards all of them instead
/// of moving by a few hundred KB of resident code from one regeneration
/// to the next.
pub fn keep_idle(idle: Vec<String>, previous: Vec<String>, still_run: &[String]) -> Vec<String> {
    let still_run: HashSet<&str> = still_run.iter().map(String::as_str).collect();
    let kept = previous
        .into_iter()
        .filter(|entry| still_run.contains(entry.as_str()))
        .collect();
    append_missing(idle, kept)
}

/// The keys of an order file: one a line; `#` comments and blank lines left out.
pub fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(name: &str, size: u64) -> Symbol {
        Symbol {
            name: name.to_owned(),
            size,
        }
    }

    #[test]
    fn first_used_first_then_dearest_with_names_of_one_entry_added_up() {
        let seen = |name, part, cost| Seen { name, part, cost };
        let profiles = [
            seen("_ZN1a5serve17h0000000000000001E", 2, 900),
            seen("_ZN1a4main17h0000000000000002E", 1, 10),
            seen("_ZN1a6config17h0000000000000003E", 1, 300),
            // Seen again later, and under callgrind's `'2`: one entry,
            // placed by its first dump.
            seen("_ZN1a4main17h0000000000000002E'2", 3, 5000),
            seen("_ZN1a5serve17h0000000000000001E.llvm.9", 4, 10),
            seen("_ZN1a4tick17h0000000000000004E", 2, 900),
        ];
        assert_eq!(
            entries_by_first_use(profiles),
            [
                "_ZN1a4main17h0000000000000002E",
                "_ZN1a6config17h0000000000000003E",
                "_ZN1a5serve17h0000000000000001E",
                "_ZN1a4tick17h0000000000000004E",
            ]
        );
    }

    #[test]
    fn sampled_functions_callgrind_did_not_see_go_after_its_own() {
        let callgrind: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let perf: Vec<String> = ["vaes", "b", "ghash"].map(String::from).to_vec();
        assert_eq!(append_missing(callgrind, perf), ["a", "b", "vaes", "ghash"]);
    }

    #[test]
    fn idle_code_goes_first_then_loaded_then_sampled() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // `accept` ran at startup in the loaded profile too: it stays in
        // the idle block, where an idle proxy needs it.
        let order = tiers(
            names(&["main", "probe", "accept"]),
            names(&["main", "accept", "encrypt", "route"]),
            names(&["vaes", "encrypt", "probe"]),
        );
        assert_eq!(
            order,
            ["main", "probe", "accept", "encrypt", "route", "vaes"]
        );
    }

    #[test]
    fn idle_functions_an_earlier_order_found_stay_idle_while_they_run() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (idle now, idle in the earlier order, run by any profile now, expected)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 4] = [
            // `tick` shared a block with `probe` this time: no fault of its own.
            (
                &["main", "probe"],
                &["main", "tick"],
                &["main", "probe", "tick"],
                &["main", "probe", "tick"],
            ),
            // Removed from the code since: not kept.
            (&["main"], &["main", "gone"], &["main", "route"], &["main"]),
            // No earlier order: what ran now.
            (&["main"], &[], &["main"], &["main"]),
            // Found again now: listed once, where it is found now.
            (
                &["tick", "main"],
                &["main", "tick"],
                &["main", "tick"],
                &["tick", "main"],
            ),
        ];
        for (idle, previous, still_run, expected) in cases {
            assert_eq!(
                keep_idle(names(idle), names(previous), &names(still_run)),
                expected,
                "{idle:?} {previous:?}"
            );
        }
    }

    #[test]
    fn resolve_places_exact_names_and_falls_back_to_keys() {
        let order: Vec<String> = [
            // In this link as it is (with an LTO suffix): only that instance.
            "_ZN1a3hot17h00000000000000aaE",
            "missing",
            // From another build: every instance with the key.
            "_ZN1a4cold17h0000000000000000E",
            // Listed twice: placed once.
            "_ZN1a3hot17h00000000000000aaE",
        ]
        .map(String::from)
        .to_vec();
        let symbols = [
            symbol("_ZN1a4cold17h0000000000000009E", 30),
            symbol("_ZN1a4cold17h0000000000000008E", 5),
            symbol("_ZN1a3hot17h00000000000000bbE", 10),
            symbol("_ZN1a3hot17h00000000000000aaE.llvm.7", 20),
            symbol("_ZN1a5other17h0000000000000001E", 999),
        ];
        let resolution = resolve(&order, &symbols);
        assert_eq!(
            resolution.names,
            [
                "_ZN1a3hot17h00000000000000aaE.llvm.7",
                "_ZN1a4cold17h0000000000000008E",
                "_ZN1a4cold17h0000000000000009E",
            ]
        );
        assert_eq!(
            (resolution.exact, resolution.by_key, resolution.total),
            (2, 1, 4)
        );
        assert_eq!(resolution.bytes, 55);
    }

    #[test]
    fn an_order_file_reads_back_what_was_written() {
        let keys: Vec<String> = ["_ZN1a3hotE", "memcpy"].map(String::from).to_vec();
        let text = render(&keys, 1);
        assert!(text.starts_with("# "));
        assert_eq!(parse(&text), keys);
        assert_eq!(previous_idle(&text), ["_ZN1a3hotE"]);
        assert!(previous_idle(&render(&keys, 0)).is_empty());
        assert_eq!(previous_idle(&render(&keys, 2)), keys);
        assert!(
            previous_idle("a\nb\n").is_empty(),
            "no marker: no idle tier"
        );
        assert_eq!(parse("\n  # note\n x \n\n"), ["x"]);
    }
}
