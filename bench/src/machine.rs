//! What the machine under a benchmark does with an idle CPU. At 1,000 rps
//! every request wakes each proxy from idle twice, and on a VM that halts
//! idle vCPUs the wake-up, not the proxy, is most of the added latency and
//! CPU (bench/README.md "What an idle vCPU costs"): a report that leaves this
//! out cannot be compared with one from another machine, so both harness
//! reports name it.

use std::path::Path;

/// The idle-state facts of the machine, as sysfs gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleState {
    /// `/sys/devices/system/cpu/cpuidle/current_driver`.
    pub driver: Option<String>,
    /// `/sys/devices/system/cpu/cpuidle/current_governor_ro`.
    pub governor: Option<String>,
    /// KVM guests with `cpuidle-haltpoll`: how long an idle vCPU polls before
    /// it halts (`guest_halt_poll_ns`, 0 = never polls).
    pub halt_poll_ns: Option<u64>,
    /// Whether haltpoll shrinks the polling window after idle spells longer
    /// than it (`guest_halt_poll_allow_shrink`).
    pub halt_poll_shrinks: Option<bool>,
}

const CPUIDLE: &str = "/sys/devices/system/cpu/cpuidle";
const HALTPOLL: &str = "/sys/module/haltpoll/parameters";

/// Reads this machine's idle state; a fact sysfs does not give is `None`.
pub fn idle_state() -> IdleState {
    let read = |path: &str| {
        std::fs::read_to_string(Path::new(path))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    IdleState {
        driver: read(&format!("{CPUIDLE}/current_driver")),
        governor: read(&format!("{CPUIDLE}/current_governor_ro"))
            .or_else(|| read(&format!("{CPUIDLE}/current_governor"))),
        halt_poll_ns: read(&format!("{HALTPOLL}/guest_halt_poll_ns")).and_then(|s| s.parse().ok()),
        halt_poll_shrinks: read(&format!("{HALTPOLL}/guest_halt_poll_allow_shrink"))
            .map(|s| s == "Y"),
    }
}

/// What a report's header says of this machine: its CPUs and what an idle
/// one does.
pub fn summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} CPUs; {}", describe(&idle_state()))
}

/// One sentence for a report's header.
pub fn describe(state: &IdleState) -> String {
    let Some(driver) = &state.driver else {
        return "idle CPUs: no cpuidle driver reported".to_string();
    };
    let governor = state
        .governor
        .as_deref()
        .map_or(String::new(), |g| format!(", governor {g}"));
    let polling = match (driver.as_str(), state.halt_poll_ns) {
        ("haltpoll", Some(0)) => {
            "; guest halt polling off (guest_halt_poll_ns=0): an idle vCPU halts at once, \
             so every wake-up goes through the host"
                .to_string()
        }
        ("haltpoll", Some(ns)) => format!(
            "; an idle vCPU polls up to {} us before it halts{}",
            ns / 1_000,
            match state.halt_poll_shrinks {
                Some(true) => " (shrunk after longer idle spells)",
                Some(false) => " (never shrunk)",
                None => "",
            }
        ),
        _ => String::new(),
    };
    format!("idle CPUs: cpuidle driver {driver}{governor}{polling}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(driver: Option<&str>, poll: Option<u64>, shrinks: Option<bool>) -> IdleState {
        IdleState {
            driver: driver.map(str::to_string),
            governor: driver.map(|_| "haltpoll".to_string()),
            halt_poll_ns: poll,
            halt_poll_shrinks: shrinks,
        }
    }

    #[test]
    fn the_sentence_names_what_decides_the_cost_of_a_wake_up() {
        let cases = [
            (
                state(None, None, None),
                "idle CPUs: no cpuidle driver reported",
            ),
            (
                state(Some("haltpoll"), Some(0), Some(true)),
                "idle CPUs: cpuidle driver haltpoll, governor haltpoll; guest halt polling off \
                 (guest_halt_poll_ns=0): an idle vCPU halts at once, so every wake-up goes \
                 through the host",
            ),
            (
                state(Some("haltpoll"), Some(2_000_000), Some(false)),
                "idle CPUs: cpuidle driver haltpoll, governor haltpoll; an idle vCPU polls up to \
                 2000 us before it halts (never shrunk)",
            ),
            (
                state(Some("haltpoll"), Some(200_000), Some(true)),
                "idle CPUs: cpuidle driver haltpoll, governor haltpoll; an idle vCPU polls up to \
                 200 us before it halts (shrunk after longer idle spells)",
            ),
            (
                IdleState {
                    driver: Some("intel_idle".to_string()),
                    governor: Some("menu".to_string()),
                    ..IdleState::default()
                },
                "idle CPUs: cpuidle driver intel_idle, governor menu",
            ),
        ];
        for (state, expected) in cases {
            assert_eq!(describe(&state), expected, "{state:?}");
        }
    }
}
