//! What a callgrind profile says each function of one object cost.
//!
//! The format (valgrind's `callgrind_format`): `ob=`, `fl=` and `fn=` lines
//! set the object, file and function that the cost lines after them belong
//! to; a name is given once with an id, `fn=(12) name`, and later by the id
//! alone, `fn=(12)`. A cost line is a position and the events' counts
//! (`15 2000`; positions may be relative, `+3`, `-2` or `*`). A `calls=`
//! line says the cost line after it is a call's inclusive cost, which
//! belongs to the callee and is not counted here.

use std::collections::HashMap;

/// Which dump of its process a profile is (`part: N`; callgrind numbers a
/// process's periodic dumps from 1): the order of first use. 0 when unsaid.
pub fn part(profile: &str) -> u32 {
    profile
        .lines()
        .take_while(|line| !line.starts_with("fn="))
        .find_map(|line| line.strip_prefix("part:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The process a profile is of (`pid: N` in its header); None when unsaid.
pub fn pid(profile: &str) -> Option<u32> {
    profile
        .lines()
        .take_while(|line| !line.starts_with("fn="))
        .find_map(|line| line.strip_prefix("pid:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Self cost (the first event, instructions by default) of every function
/// whose object's path ends with `object`, by the name the profile gives it.
pub fn self_costs(profile: &str, object: &str) -> HashMap<String, u64> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut objects: HashMap<String, String> = HashMap::new();
    let mut costs: HashMap<String, u64> = HashMap::new();
    let mut current_object_matches = false;
    let mut current_function: Option<String> = None;
    let mut next_is_call_cost = false;
    for line in profile.lines() {
        if let Some(spec) = line.strip_prefix("ob=") {
            let path = compressed_name(spec, &mut objects);
            current_object_matches = path.ends_with(object);
            continue;
        }
        if let Some(spec) = line.strip_prefix("fn=") {
            current_function = Some(compressed_name(spec, &mut names));
            continue;
        }
        if let Some(spec) = line.strip_prefix("cfn=") {
            // Only defines the name (callees share fn's ids).
            compressed_name(spec, &mut names);
            continue;
        }
        if let Some(spec) = line.strip_prefix("cob=") {
            compressed_name(spec, &mut objects);
            continue;
        }
        if line.starts_with("calls=") {
            next_is_call_cost = true;
            continue;
        }
        let Some(cost) = cost_line(line) else {
            continue;
        };
        if std::mem::take(&mut next_is_call_cost) {
            continue;
        }
        if let (true, Some(function)) = (current_object_matches, &current_function) {
            *costs.entry(function.clone()).or_default() += cost;
        }
    }
    costs
}

/// `(12) name` defines id 12 and answers `name`; `(12)` answers what 12 was
/// defined as; a bare `name` (no compression) answers itself. An id never
/// defined answers itself, so a cut profile still parses.
fn compressed_name(spec: &str, table: &mut HashMap<String, String>) -> String {
    let Some(rest) = spec.strip_prefix('(') else {
        return spec.to_owned();
    };
    let Some((id, name)) = rest.split_once(')') else {
        return spec.to_owned();
    };
    let name = name.trim_start();
    if name.is_empty() {
        table.get(id).cloned().unwrap_or_else(|| spec.to_owned())
    } else {
        table.insert(id.to_owned(), name.to_owned());
        name.to_owned()
    }
}

/// The first event's count on a cost line (`<position> <count> ...`), if
/// `line` is one. A line with a position only costs nothing.
fn cost_line(line: &str) -> Option<u64> {
    let first = line.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*')) {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    fields.next()?;
    Some(
        fields
            .next()
            .and_then(|count| count.parse().ok())
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::{pid, self_costs};

    const PROFILE: &str = "\
version: 1
creator: callgrind-3.19.0
events: Ir
ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(1) ???
fn=(1) memcpy
0 500
ob=(2) /work/target/ship/osm-proxy
fl=(2) ???
fn=(2) _ZN9osm_proxy4main17h0123456789abcdefE
0 10
+2 5
cob=(1)
cfn=(1)
calls=3 0
0 1500
cfn=(3) _ZN5tokio4park17h0123456789abcdefE
calls=1 0
* 70
fn=(3)
0 40
fn=(2)
-1 7
ob=(1)
fn=(1)
0 100
summary: 2177
totals: 2177
";

    #[test]
    fn self_costs_of_one_object_with_calls_left_to_their_callees() {
        let costs = self_costs(PROFILE, "osm-proxy");
        let mut found: Vec<(&str, u64)> = costs.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("_ZN5tokio4park17h0123456789abcdefE", 40),
                ("_ZN9osm_proxy4main17h0123456789abcdefE", 22),
            ]
        );
        let libc = self_costs(PROFILE, "libc.so.6");
        assert_eq!(libc.get("memcpy"), Some(&600));
        assert_eq!(libc.len(), 1);
    }

    #[test]
    fn the_process_comes_from_the_header() {
        assert_eq!(
            pid("version: 1\npid: 4242\npart: 3\nfn=(1) main\n"),
            Some(4242)
        );
        assert_eq!(
            pid("version: 1\nfn=(1) main\npid: 7\n"),
            None,
            "only the header says"
        );
        assert_eq!(pid("pid: many\n"), None);
    }

    #[test]
    fn the_part_comes_from_the_header() {
        assert_eq!(
            super::part("version: 1\npart: 12\nevents: Ir\nfn=(1) f\n0 1\n"),
            12
        );
        assert_eq!(super::part(PROFILE), 0);
        assert_eq!(super::part("part: x\n"), 0);
        // A `part:` after the first function is not the header's.
        assert_eq!(super::part("fn=(1) f\npart: 3\n"), 0);
    }

    #[test]
    fn broken_lines_are_skipped_not_fatal() {
        let cut = "ob=(9)\nfn=(4\nfn=(5)\n12 x\n+1\nob=(2) osm-proxy\nfn=(6) f\n3 9 4\n";
        let costs = self_costs(cut, "osm-proxy");
        assert_eq!(costs.get("f"), Some(&9));
        assert_eq!(costs.len(), 1);
    }
}
