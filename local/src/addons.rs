//! Add-ons `osm local up --with NAME[,NAME]` runs beside the control plane
//! (on the host, at the gateway address, as the controller): which are
//! asked for, kept in the state directory so the daemon and `status` know.

use std::str::FromStr;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::state::{StateDir, write_atomic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addon {
    /// Prometheus scraping every sidecar and the controller
    /// ([`super::prometheus`]).
    Prometheus,
}

impl Addon {
    pub const ALL: [Addon; 1] = [Addon::Prometheus];

    pub fn name(self) -> &'static str {
        match self {
            Addon::Prometheus => "prometheus",
        }
    }

    /// The program it runs and the Debian package that has it.
    fn program(self) -> (&'static str, &'static str) {
        match self {
            Addon::Prometheus => ("prometheus", "prometheus"),
        }
    }
}

impl FromStr for Addon {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Addon::ALL
            .into_iter()
            .find(|a| a.name() == s.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = Addon::ALL.iter().map(|a| a.name()).collect();
                format!("unknown add-on {s:?}: the add-ons are {}", known.join(", "))
            })
    }
}

fn file(state: &StateDir) -> std::path::PathBuf {
    state.root.join("addons.json")
}

/// The add-ons of this instance (none when never asked for).
pub fn load(state: &StateDir) -> anyhow::Result<Vec<Addon>> {
    let path = file(state);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn save(state: &StateDir, addons: &[Addon]) -> anyhow::Result<()> {
    write_atomic(&file(state), &serde_json::to_vec(addons)?)
}

/// The add-ons to run: those asked for now, or, when none are, those
/// the instance already has; an error when a running instance would have
/// to change (the daemon starts add-ons once).
pub fn settle(
    existing: Vec<Addon>,
    asked: Vec<Addon>,
    running: bool,
) -> Result<Vec<Addon>, String> {
    let mut asked = asked;
    asked.sort();
    asked.dedup();
    if asked.is_empty() || asked == existing {
        return Ok(existing);
    }
    if running {
        let names = |a: &[Addon]| {
            if a.is_empty() {
                "none".to_string()
            } else {
                a.iter().map(|a| a.name()).collect::<Vec<_>>().join(",")
            }
        };
        return Err(format!(
            "local mode is already running with add-ons {}: run `osm local down` first to start it with {}",
            names(&existing),
            names(&asked)
        ));
    }
    Ok(asked)
}

/// Programs the add-ons need that are not installed, as one message.
pub fn missing_programs(addons: &[Addon], installed: impl Fn(&str) -> bool) -> Option<String> {
    let missing: Vec<&str> = addons
        .iter()
        .map(|a| a.program())
        .filter(|(program, _)| !installed(program))
        .map(|(_, package)| package)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "--with needs {}: install it with `apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_named() {
        assert_eq!("prometheus".parse::<Addon>(), Ok(Addon::Prometheus));
        assert_eq!(
            "grafana".parse::<Addon>(),
            Err("unknown add-on \"grafana\": the add-ons are prometheus".into())
        );
    }

    #[test]
    fn a_running_instance_keeps_its_addons_unless_restarted() {
        let p = vec![Addon::Prometheus];
        assert_eq!(settle(p.clone(), vec![], true), Ok(p.clone()));
        assert_eq!(settle(vec![], p.clone(), false), Ok(p.clone()));
        assert_eq!(
            settle(vec![], vec![Addon::Prometheus, Addon::Prometheus], true),
            Err("local mode is already running with add-ons none: run `osm local down` first to start it with prometheus".into())
        );
        assert_eq!(settle(p.clone(), p.clone(), true), Ok(p));
    }

    #[test]
    fn a_missing_program_names_its_package() {
        assert_eq!(
            missing_programs(&[Addon::Prometheus], |_| false).as_deref(),
            Some("--with needs prometheus: install it with `apt-get install prometheus`")
        );
        assert_eq!(missing_programs(&[Addon::Prometheus], |_| true), None);
    }
}
