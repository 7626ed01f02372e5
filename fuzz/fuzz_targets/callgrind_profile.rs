//! The link-order tool's readers (callgrind profiles, perf scripts, order
//! files, names through stable keys, the dumps after a marker) never panic,
//! and what they produce holds: every key is at most as long as its name,
//! an order reads back as written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_link_order::{callgrind, key, order, perf, steady};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let costs = callgrind::self_costs(&text, "osm-proxy");
    for name in costs.keys() {
        assert!(key::stable_key(name).len() <= key::entry_name(name).len());
        assert!(key::entry_name(name).len() <= name.len());
    }
    let part = callgrind::part(&text);
    // The dumps after a marker are never the marked one, nor of another
    // process.
    let dump = steady::Dump {
        process: callgrind::pid(&text),
        part,
        costs: costs.clone(),
    };
    let dumps = [
        dump.clone(),
        steady::Dump {
            part: part.saturating_add(1),
            ..dump
        },
    ];
    for name in costs.keys() {
        let after = steady::after_marker(&dumps, &key::stable_key(name)).unwrap();
        assert!(after.iter().all(|d| d.part > part));
    }
    // Whatever the path, its key is a well-formed legacy name.
    for line in text.lines() {
        let key = key::key_of_path(line);
        assert!(key.starts_with("_ZN") && key.ends_with('E'), "{key}");
    }
    let entries = order::entries_by_first_use(costs.iter().map(|(name, cost)| order::Seen {
        name,
        part,
        cost: *cost,
    }));
    // An entry is one line of the file: what reads back is every entry that is
    // not blank or a comment once trimmed, in order.
    let expected: Vec<String> = entries
        .iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .collect();
    // Wherever the idle tier ends, the file reads back whole, and its idle
    // tier is read without a panic.
    let idle = data.first().map_or(0, |b| usize::from(*b)) % (entries.len() + 1);
    let rendered = order::render(&entries, idle);
    assert_eq!(order::parse(&rendered), expected);
    let previous = order::previous_idle(&rendered);
    assert!(previous.len() <= idle);
    let _ = order::previous_idle(&text);
    let kept = order::keep_idle(Vec::new(), previous, &entries);
    assert!(kept.len() <= idle);
    let samples = perf::sample_counts(&text, "osm-proxy");
    let sampled = order::entries_by_first_use(samples.iter().map(|(name, cost)| order::Seen {
        name,
        part: 0,
        cost: *cost,
    }));
    let merged = order::append_missing(entries.clone(), sampled.clone());
    assert!(merged.len() <= entries.len() + sampled.len());
    for line in text.lines() {
        let key = key::stable_key(line);
        assert!(key.len() <= line.len());
    }
});
