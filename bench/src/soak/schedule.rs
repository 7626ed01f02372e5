//! What churn happens when (pure): each kind on its own period, the first
//! one a period after the load starts, so the schedule printed at the
//! start is the one that runs.

use std::{fmt, str::FromStr, time::Duration};

/// One kind of churn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Churn {
    /// A rolling update of each server Deployment (a template change).
    Rollout,
    /// `kill -9` of the controller (local mode's daemon restarts it).
    Controller,
    /// `kill -9` of one server app process (its pod restarts it).
    App,
    /// An unrelated TrafficTarget applied, then deleted at the next event.
    Policy,
    /// A MeshConfig field that changes nothing for this traffic, toggled.
    MeshConfig,
}

impl Churn {
    pub const ALL: [Churn; 5] = [
        Churn::Rollout,
        Churn::Controller,
        Churn::App,
        Churn::Policy,
        Churn::MeshConfig,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Churn::Rollout => "rollout",
            Churn::Controller => "controller",
            Churn::App => "app",
            Churn::Policy => "policy",
            Churn::MeshConfig => "meshconfig",
        }
    }

    /// The periods: rollouts every 60 s, the controller killed
    /// every 2 minutes, an app every 3, a policy every 10 s, MeshConfig
    /// every 30 s.
    pub fn default_period(self) -> Duration {
        Duration::from_secs(match self {
            Churn::Rollout => 60,
            Churn::Controller => 120,
            Churn::App => 180,
            Churn::Policy => 10,
            Churn::MeshConfig => 30,
        })
    }
}

impl fmt::Display for Churn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Churn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Churn::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Churn::ALL.iter().map(|c| c.name()).collect();
                format!("unknown churn {s:?}: one of {}", names.join(", "))
            })
    }
}

/// The churn to apply and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub periods: Vec<(Churn, Duration)>,
}

impl Schedule {
    /// `kinds` at their default periods, each divided by `speedup` (a
    /// short soak in CI sees every kind at least twice).
    pub fn new(kinds: &[Churn], speedup: u32) -> Self {
        Self {
            periods: kinds
                .iter()
                .map(|&c| (c, c.default_period() / speedup.max(1)))
                .collect(),
        }
    }

    /// The events due after `from` up to `to` (both since the load
    /// started), in time order: (when, what).
    pub fn due(&self, from: Duration, to: Duration) -> Vec<(Duration, Churn)> {
        let mut out = Vec::new();
        for &(churn, period) in &self.periods {
            if period.is_zero() {
                continue;
            }
            let mut n = from.as_nanos() / period.as_nanos() + 1;
            loop {
                let at = period * u32::try_from(n).unwrap_or(u32::MAX);
                if at > to {
                    break;
                }
                if at > from {
                    out.push((at, churn));
                }
                n += 1;
            }
        }
        out.sort();
        out
    }

    /// The lines printed before the run.
    pub fn describe(&self, duration: Duration) -> Vec<String> {
        self.periods
            .iter()
            .map(|&(churn, period)| {
                let count = if period.is_zero() {
                    0
                } else {
                    duration.as_nanos() / period.as_nanos()
                };
                format!(
                    "{churn:<11} every {:>4} s ({count} times)",
                    period.as_secs_f64()
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn events_come_on_their_periods_once_each() {
        let schedule = Schedule::new(&Churn::ALL, 1);
        assert_eq!(schedule.due(s(0), s(9)), vec![]);
        assert_eq!(schedule.due(s(0), s(10)), vec![(s(10), Churn::Policy)]);
        assert_eq!(
            schedule.due(s(55), s(60)),
            vec![
                (s(60), Churn::Rollout),
                (s(60), Churn::Policy),
                (s(60), Churn::MeshConfig)
            ]
        );
        // Every event in 6 minutes, polled in uneven steps, once each.
        let mut seen = Vec::new();
        let mut t = s(0);
        for step in [1, 7, 3, 13, 29, 61, 2, 100, 144].iter().cycle().take(40) {
            let next = (t + s(*step)).min(s(360));
            seen.extend(schedule.due(t, next));
            t = next;
        }
        let count = |c: Churn| seen.iter().filter(|(_, x)| *x == c).count();
        assert_eq!(Churn::ALL.map(count), [6, 3, 2, 36, 12], "{seen:?}");
    }

    #[test]
    fn a_faster_schedule_and_its_description() {
        let schedule = Schedule::new(&[Churn::Rollout, Churn::Controller], 4);
        assert_eq!(
            schedule.periods,
            vec![(Churn::Rollout, s(15)), (Churn::Controller, s(30))]
        );
        assert_eq!(
            schedule.describe(s(150)),
            [
                "rollout     every   15 s (10 times)",
                "controller  every   30 s (5 times)"
            ]
        );
        assert_eq!("app".parse::<Churn>(), Ok(Churn::App));
        assert!(
            "kill"
                .parse::<Churn>()
                .unwrap_err()
                .contains("one of rollout")
        );
    }
}
