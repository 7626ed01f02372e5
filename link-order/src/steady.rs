//! What idle proxies run once they have started: in each process's dumps,
//! those after the one in which it gave back the pages only starting used
//! (`osm_proxy::memory::start_pages::release`). That code is what stays
//! resident in an idle sidecar, so it goes first of all, together.

use std::collections::HashMap;

use crate::key::stable_key;

/// One callgrind dump of one process: which, and the self cost of each
/// function in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub process: Option<u32>,
    pub part: u32,
    pub costs: HashMap<String, u64>,
}

/// The dumps of each process after the first of its dumps in which a
/// function with the key `marker` ran; None when no dump ran it. (The
/// marked dump is left out: it also holds what ran before the marker.)
pub fn after_marker<'a>(dumps: &'a [Dump], marker: &str) -> Option<Vec<&'a Dump>> {
    let mut marked: HashMap<Option<u32>, u32> = HashMap::new();
    for dump in dumps {
        if dump.costs.keys().any(|name| stable_key(name) == marker) {
            let first = marked.entry(dump.process).or_insert(dump.part);
            *first = (*first).min(dump.part);
        }
    }
    if marked.is_empty() {
        return None;
    }
    Some(
        dumps
            .iter()
            .filter(|dump| marked.get(&dump.process).is_some_and(|&at| dump.part > at))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "_ZN1m7releaseE";
    const MARKER_NAME: &str = "_ZN1m7release17h0123456789abcdefE";

    fn dump(process: Option<u32>, part: u32, names: &[&str]) -> Dump {
        Dump {
            process,
            part,
            costs: names.iter().map(|n| (n.to_string(), 1)).collect(),
        }
    }

    #[test]
    fn the_dumps_after_each_process_gave_its_pages_back() {
        let dumps = [
            dump(Some(1), 1, &["main"]),
            dump(Some(1), 2, &["config", MARKER_NAME]),
            dump(Some(1), 3, &["probe"]),
            dump(Some(1), 4, &["timer", MARKER_NAME]),
            // Another process marked later: its own dumps decide.
            dump(Some(2), 2, &["probe"]),
            dump(Some(2), 3, &[MARKER_NAME]),
            dump(Some(2), 4, &["stream"]),
            // A process that never gave its pages back gives nothing.
            dump(Some(3), 9, &["anything"]),
        ];
        let parts: Vec<_> = after_marker(&dumps, MARKER)
            .unwrap()
            .iter()
            .map(|d| (d.process, d.part))
            .collect();
        assert_eq!(parts, [(Some(1), 3), (Some(1), 4), (Some(2), 4)]);
    }

    #[test]
    fn no_marker_anywhere_is_none() {
        let cases: &[(&str, Vec<Dump>)] = &[
            ("no dumps", vec![]),
            ("never ran", vec![dump(Some(1), 1, &["main"])]),
            (
                "a function whose name only contains the marker's",
                vec![dump(
                    Some(1),
                    1,
                    &["_ZN1m7release5inner17h0123456789abcdefE"],
                )],
            ),
        ];
        for (what, dumps) in cases {
            assert_eq!(after_marker(dumps, MARKER), None, "{what}");
        }
    }

    #[test]
    fn profiles_without_a_pid_are_one_process() {
        let dumps = [dump(None, 1, &[MARKER_NAME]), dump(None, 2, &["timer"])];
        assert_eq!(after_marker(&dumps, MARKER).unwrap().len(), 1);
    }
}
