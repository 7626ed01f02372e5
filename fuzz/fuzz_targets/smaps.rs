//! What the proxy reads of its own `/proc/self/smaps` before giving back
//! the pages only starting used: never a panic, and only whole, non-empty
//! mappings of the binary named, each one a header of the text that was
//! read (anything else would unmap memory the proxy needs). The same text
//! read as `/proc/self/status` (whether to give pages back again): a count
//! only when some line says exactly that count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_proxy::memory::{releasable, resident_file_kib};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The binary's path: the first line's last field, so that the fuzzer
    // can match it.
    let binary = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().last())
        .unwrap_or("/osm/bin/osm-proxy");
    for chosen in releasable(&text, binary) {
        assert!(chosen.addresses.start < chosen.addresses.end);
        let header = format!("{:x}-{:x} ", chosen.addresses.start, chosen.addresses.end);
        assert!(
            text.lines().any(|line| {
                let lower = line.to_ascii_lowercase();
                lower.starts_with(&header) || trimmed_zeros(&lower).starts_with(&header)
            }),
            "{header} is no mapping's header"
        );
    }
    if let Some(kib) = resident_file_kib(&text) {
        assert!(
            text.lines().any(|line| line
                .strip_prefix("RssFile:")
                .and_then(|rest| rest.trim().strip_suffix(" kB"))
                .is_some_and(|n| without_leading_zeros(n.trim_start()) == kib.to_string())),
            "{kib} kB is no RssFile line's count"
        );
    }
});

/// `000a-0b r-xp` as `a-b r-xp`: the addresses a header spells with
/// leading zeros.
fn trimmed_zeros(line: &str) -> String {
    let Some((range, rest)) = line.split_once(' ') else {
        return line.to_owned();
    };
    let Some((start, end)) = range.split_once('-') else {
        return line.to_owned();
    };
    let trim = |n: &str| {
        let t = n.trim_start_matches('0');
        if t.is_empty() {
            "0".to_owned()
        } else {
            t.to_owned()
        }
    };
    format!("{}-{} {rest}", trim(start), trim(end))
}

/// `007` as `7`, `000` as `0`.
fn without_leading_zeros(digits: &str) -> &str {
    match digits.trim_start_matches('0') {
        "" if !digits.is_empty() => "0",
        trimmed => trimmed,
    }
}
