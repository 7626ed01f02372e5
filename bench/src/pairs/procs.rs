//! CPU time and peak memory of a process and its descendants, read from
//! /proc (nginx forks its worker from the master: the pair's cost is the
//! tree's), and the machine's busy time, to tell a quiet run from a noisy one.

use std::{collections::HashMap, fs};

use anyhow::{Context, Result};

/// One process as /proc/PID/stat describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine {
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses /proc/PID/stat. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<StatLine> {
    let field = stat_fields(text)?;
    // state(3) ppid(4) ... utime(14) stime(15).
    Some(StatLine {
        ppid: u32::try_from(field(4)?).ok()?,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// The CPU ticks of the waited-for children in /proc/PID/stat: cutime(16)
/// + cstime(17).
pub fn parse_children_ticks(text: &str) -> Option<u64> {
    let field = stat_fields(text)?;
    Some(field(16)? + field(17)?)
}

/// Field N (1-based, as proc(5) numbers them) of a /proc/PID/stat line,
/// counted after the name's last `)`.
fn stat_fields(text: &str) -> Option<impl Fn(usize) -> Option<u64> + '_> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(move |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()))
}

/// A `kB` field of /proc/PID/status (`VmHWM`: peak resident set;
/// `RssAnon`: resident private memory now, not the shared binary's pages).
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Busy and total ticks of all CPUs from the first line of /proc/stat
/// (idle and iowait are not busy).
pub fn parse_machine_ticks(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The pids of `root` and all its descendants, given each pid's parent.
pub fn tree(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut members = vec![root];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        let mut children: Vec<u32> = parents
            .iter()
            .filter(|&(_, &p)| p == parent)
            .map(|(&pid, _)| pid)
            .collect();
        children.sort_unstable();
        members.extend(children);
        i += 1;
    }
    members
}

fn all_stats() -> HashMap<u32, StatLine> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&text)?))
        })
        .collect()
}

/// What a process tree has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ticks: u64,
    /// Sum of each member's peak resident set.
    pub peak_rss_kib: u64,
    /// Sum of each member's anonymous (private) resident memory now.
    pub anon_rss_kib: u64,
}

/// The usage of `root` and its descendants now.
pub fn usage(root: u32) -> Usage {
    let stats = all_stats();
    let parents = stats.iter().map(|(&pid, s)| (pid, s.ppid)).collect();
    tree(root, &parents)
        .into_iter()
        .fold(Usage::default(), |acc, pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kib = |field| parse_status_kib(&status, field).unwrap_or(0);
            Usage {
                cpu_ticks: acc.cpu_ticks + stats.get(&pid).map_or(0, |s| s.cpu_ticks),
                peak_rss_kib: acc.peak_rss_kib + kib("VmHWM"),
                anon_rss_kib: acc.anon_rss_kib + kib("RssAnon"),
            }
        })
}

/// Busy and total CPU ticks of the machine so far.
pub fn machine_ticks() -> Result<(u64, u64)> {
    let text = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_ticks(&text).context("/proc/stat has no cpu line")
}

/// Clock ticks per second (the unit of /proc's CPU times).
pub fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (nginx: worker (x) y) S 4241 4241 1 0 -1 4194624 \
                    500 0 0 0 730 270 0 0 20 0 1 0 100 1000 200";
        assert_eq!(
            parse_stat(text),
            Some(StatLine {
                ppid: 4241,
                cpu_ticks: 1000
            })
        );
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn memory_fields_are_read_in_kib() {
        let status = "Name:\tosm-proxy\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n\
                      RssAnon:\t  1200 kB\nRssAnonX:\t 9 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kib(status, "RssAnon"), Some(1200));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn machine_busy_excludes_idle_and_iowait() {
        let text = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_ticks(text), Some((160, 1180)));
        assert_eq!(parse_machine_ticks("intr 1 2 3"), None);
    }

    #[test]
    fn a_tree_holds_children_and_grandchildren_only() {
        let parents = HashMap::from([(10, 1), (11, 10), (12, 11), (20, 1), (13, 10)]);
        assert_eq!(tree(10, &parents), vec![10, 11, 13, 12]);
        assert_eq!(tree(99, &parents), vec![99]);
    }
}
