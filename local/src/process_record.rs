//! A process as local mode records it in a pid file: its pid and its
//! kernel start time, so a later daemon never mistakes a reused pid for
//! it.

use std::path::Path;

/// A process as recorded in its pid file: pid and start time (clock
/// ticks after boot, /proc/PID/stat field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub pid: i32,
    pub start: u64,
}

impl Record {
    /// `PID START` (a file of an older daemon holds only `PID`: never
    /// adopted, since its start time cannot be checked).
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok().filter(|p| *p > 1)?;
        let start = words.next()?.parse().ok()?;
        Some(Self { pid, start })
    }

    pub fn read(file: &Path) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(file).ok()?)
    }

    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, start) = stat_state_and_start(&stat)?;
        Some(Self { pid, start })
    }

    /// The recorded process still runs (not exited, not a reused pid).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| stat_state_and_start(&s))
            .is_some_and(|(state, start)| start == self.start && state != 'Z' && state != 'X')
    }

    pub fn text(&self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }
}

/// A process's state letter and start time from /proc/PID/stat (pure).
/// The command name (field 2) may hold spaces and parentheses: fields are
/// counted after its last `)`.
pub fn stat_state_and_start(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_state_and_start_time_whatever_the_command_name() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        for name in ["sleep", "a b", "x) (y", ")"] {
            let line = format!("42 ({name}) {tail}");
            assert_eq!(stat_state_and_start(&line), Some(('S', 987_654)), "{line}");
        }
        assert_eq!(stat_state_and_start("42 (short) S 1 2"), None);
        assert_eq!(stat_state_and_start("no parenthesis"), None);
    }

    #[test]
    fn records_read_back_and_old_pid_files_are_never_adopted() {
        let r = Record {
            pid: 4242,
            start: 99,
        };
        assert_eq!(Record::parse(&r.text()), Some(r));
        assert_eq!(Record::parse("4242\n"), None);
        assert_eq!(Record::parse("1 5"), None);
        assert_eq!(Record::parse("x 5"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Record::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(
            !Record {
                start: me.start + 1,
                ..me
            }
            .alive()
        );
    }
}
