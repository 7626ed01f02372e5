//! When the pages that came back are given back again.
//!
//! Giving back the binary's start pages once is not enough: a config
//! change runs code the idle sidecar had not run since it started, and a
//! burst of requests the whole request path, and a page once touched stays
//! resident (an idle sidecar measured 2.0 MB before and 5.0 MB after one
//! changed TrafficTarget, 5.9 MB after ten seconds at 1,000 requests/s:
//! bench/README.md, "Given back again when quiet"). The process's own
//! counters say both things that matter, with no hook on any path: its
//! resident file pages (the binary's pages that came back; the kernel keeps
//! the count, no page walk) and its CPU time (whether it is still at work).
//! Page faults would not do: the kernel maps up to 16 pages of the page
//! cache around each one. The decision is here, pure; `mod.rs` samples and
//! releases.

use std::time::Duration;

/// How often the proxy looks: a release comes one to two looks after the
/// work that brought pages back has stopped.
pub const LOOK_EVERY: Duration = Duration::from_secs(10);

/// CPU time in one look's window under which the proxy is idle: half a
/// percent of a core. An idle sidecar with a probe every second uses about
/// 2 ms per window (bench/README.md); one request costs about 0.1 ms, so a
/// window of more than a few hundred requests is busy.
pub const QUIET_CPU: Duration = Duration::from_millis(50);

/// Resident file pages above the floor that make a release worth its
/// cost: eight of the 64 KB blocks the kernel maps back at a time. What an
/// idle sidecar touches again right after a release is in the floor, so it
/// never triggers another; work that ran once (a config change, parked
/// connections closing after a burst) does.
pub const RETURNED_KIB: u64 = 512;

/// What the process has used so far (`getrusage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Duration,
    /// Resident pages mapped from files: the proxy is one static binary, so
    /// these are its own.
    pub file_kib: u64,
}

/// What a look decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    Wait,
    Release,
}

/// The watch between looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    last: Usage,
    /// Resident file pages when the pages were last given back, counted at
    /// the look that followed; `None` until that look.
    floor: Option<u64>,
}

impl Watch {
    /// A watch that starts right after a release, at `now`.
    pub fn after_release(now: Usage) -> Self {
        Self {
            last: now,
            floor: None,
        }
    }

    /// One look at `now`: `Release` when the last window was quiet and
    /// enough pages came back since the floor. The look after a release
    /// sets the floor: quiet, at what the proxy has touched again by then
    /// (what its idle work keeps using: releasing it again would only fault
    /// it back); busy, at the release, so that what the work brought back
    /// goes once it stops.
    pub fn look(&mut self, now: Usage) -> Look {
        let quiet = now.cpu.saturating_sub(self.last.cpu) < QUIET_CPU;
        let at_release = self.last.file_kib;
        self.last = now;
        let Some(floor) = self.floor else {
            self.floor = Some(if quiet { now.file_kib } else { at_release });
            return Look::Wait;
        };
        if !quiet || now.file_kib.saturating_sub(floor) < RETURNED_KIB {
            return Look::Wait;
        }
        // The caller releases and starts a new watch after it.
        Look::Release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cpu_ms: u64, file_kib: u64) -> Usage {
        Usage {
            cpu: Duration::from_millis(cpu_ms),
            file_kib,
        }
    }

    /// One look: (CPU ms, resident file KiB) and what it decides.
    type Step = ((u64, u64), Look);

    /// Each case: the looks in order, (cpu ms, resident file KiB) and what
    /// each decides.
    #[test]
    fn looks_release_in_quiet_windows_after_pages_came_back() {
        use Look::{Release as R, Wait as W};
        let quiet_ms = QUIET_CPU.as_millis() as u64;
        // Each watch starts right after a release, at (0 ms, 100 KiB); its
        // first look sets the floor. An idle sidecar touches about 1,200
        // KiB again; the request path is about 4,000.
        let cases: &[(&str, &[Step])] = &[
            (
                "idle: what comes back in the first window is the floor",
                &[
                    ((2, 1200), W),
                    ((4, 1300), W),
                    ((6, 1300), W),
                    ((8, 1600), W),
                ],
            ),
            (
                "a config change after the floor: given back when quiet again",
                &[
                    ((2, 1200), W),
                    ((10, 3900), R),
                    ((12, 1200), W),
                    ((14, 1200), W),
                ],
            ),
            (
                "a burst: nothing while busy, given back in the first quiet window",
                &[
                    ((2, 1200), W),
                    ((900, 4500), W),
                    ((1800, 4600), W),
                    ((1810, 4600), R),
                    ((1812, 1250), W),
                    ((1814, 1250), W),
                ],
            ),
            (
                "fewer pages than the threshold above the floor: kept",
                &[
                    ((2, 1200), W),
                    ((4, 1200 + RETURNED_KIB - 1), W),
                    ((6, 1200 + RETURNED_KIB), R),
                ],
            ),
            (
                "busy right after a release: what that work brought back goes",
                &[
                    ((500, 4000), W),
                    ((900, 4100), W),
                    ((910, 4100), R),
                    ((912, 1200), W),
                ],
            ),
            (
                "busy right after a release, and little came back: kept",
                &[
                    ((500, 100 + RETURNED_KIB - 1), W),
                    ((510, 100 + RETURNED_KIB - 1), W),
                ],
            ),
            (
                "work on and off: given back in each quiet window after it",
                &[
                    ((2, 1200), W),
                    ((300, 4000), W),
                    ((302, 4000), R),
                    ((600, 4000), W),
                    ((602, 4000), R),
                    ((604, 1200), W),
                    ((606, 1200), W),
                ],
            ),
            (
                "a window of exactly the quiet CPU is busy",
                &[
                    ((0, 1200), W),
                    ((quiet_ms, 4000), W),
                    ((quiet_ms * 2 - 1, 4000), R),
                ],
            ),
            (
                "resident pages that fall (the kernel reclaims) release nothing",
                &[((2, 1200), W), ((4, 50), W), ((6, 1000), W)],
            ),
        ];
        for (name, looks) in cases {
            let mut watch = Watch::after_release(at(0, 100));
            for (i, ((cpu, kib), want)) in looks.iter().enumerate() {
                let look = watch.look(at(*cpu, *kib));
                assert_eq!(look, *want, "{name}: look {i}");
                if look == Look::Release {
                    // As the proxy does: a new watch from right after it.
                    watch = Watch::after_release(at(*cpu, 100));
                }
            }
        }
    }
}
