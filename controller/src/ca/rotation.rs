//! Root rotation in phases, as decisions: what the trust bundle holds in
//! each phase, when a phase may end, and how the state is kept (in the CA
//! Secret beside OSM's `ca.crt`/`private.key`, so a controller restarted
//! mid-rotation resumes where it was).
//!
//! 1. **Distributing**: the new root joins every bundle while the old one
//!    still issues; it ends once every connected proxy has acknowledged a
//!    config carrying the new root.
//! 2. **Retiring**: the new root issues (proxies renew early) and the old
//!    one stays in the bundles until no live certificate chains to it.
//! 3. **Steady** again: one root.
//!
//! The controller's loop observes ([`Observed`]), asks [`step`], and
//! stores what it returns; nothing here does I/O.

use std::collections::BTreeMap;

/// Where a rotation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// One root, which issues.
    Steady,
    /// The next root (PEM certificate and key) is in the bundles; the
    /// current one still issues.
    Distributing { next_cert: String, next_key: String },
    /// The current root issues; the old one (PEM certificate) stays in the
    /// bundles until nothing live chains to it.
    Retiring { old_cert: String },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::Distributing { .. } => "distributing",
            Phase::Retiring { .. } => "retiring",
        }
    }
}

/// What the controller sees when it checks a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Proxies connected now.
    pub connected: usize,
    /// Of those, the ones that acknowledged a config whose bundle holds
    /// the next root.
    pub acknowledged_next: usize,
    /// Certificates issued from the old root that have not expired (by
    /// the controller's record of what it issued and of the certificates
    /// proxies connect with: a proxy that went away still counts until
    /// its certificate would have expired).
    pub live_from_old: usize,
    /// Meshed pods (`namespace/name`) with no proxy connected: right
    /// after a controller restart, every one. A phase does not end on
    /// what the connected proxies say while others may still come back,
    /// unless `patience_over`.
    pub not_connected: Vec<String>,
    /// The phase has waited long enough for missing proxies (a pod that
    /// never starts must not hold a rotation forever).
    pub patience_over: bool,
    /// The phase has not lasted its minimum yet (so every controller
    /// replica reads it from the store and its proxies follow).
    pub within_min_phase: bool,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changes; why, for `osm ca status`.
    Wait(String),
    /// Switch issuing to the next root; the old one starts retiring.
    Issue,
    /// The old root leaves the bundles: the rotation is over.
    Finish,
}

/// Why a phase waits for meshed pods whose proxies are not connected;
/// None when it need not.
fn missing(observed: &Observed) -> Option<String> {
    if observed.not_connected.is_empty() || observed.patience_over {
        return None;
    }
    let shown: Vec<&str> = observed
        .not_connected
        .iter()
        .take(3)
        .map(String::as_str)
        .collect();
    let more = observed.not_connected.len() - shown.len();
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{} meshed pods have no proxy connected ({}{more})",
        observed.not_connected.len(),
        shown.join(", ")
    ))
}

/// The next step of `phase` given what was observed.
pub fn step(phase: &Phase, observed: &Observed) -> Step {
    match phase {
        Phase::Steady => Step::Wait("no rotation in progress".into()),
        Phase::Distributing { .. } if observed.acknowledged_next < observed.connected => {
            Step::Wait(format!(
                "{} of {} connected proxies hold the new root",
                observed.acknowledged_next, observed.connected
            ))
        }
        Phase::Retiring { .. } if observed.live_from_old > 0 => Step::Wait(format!(
            "{} certificates from the old root are still live",
            observed.live_from_old
        )),
        _ => match missing(observed) {
            Some(why) => Step::Wait(why),
            None if observed.within_min_phase => Step::Wait(
                "the phase lasts its minimum (--ca-rotation-min-phase), so every controller \
                 replica follows it"
                    .into(),
            ),
            None if matches!(phase, Phase::Distributing { .. }) => Step::Issue,
            None => Step::Finish,
        },
    }
}

/// The roots proxies must trust in `phase`, the issuing one first.
pub fn bundle(issuing_cert: &str, phase: &Phase) -> Vec<String> {
    let mut roots = vec![issuing_cert.to_string()];
    match phase {
        Phase::Steady => {}
        Phase::Distributing { next_cert, .. } => roots.push(next_cert.clone()),
        Phase::Retiring { old_cert } => roots.push(old_cert.clone()),
    }
    roots
}

/// The trust bundle `stored` makes: the root of each CA certificate in
/// it (a CA certificate may be an intermediate followed by its issuers),
/// the issuing one first, each once.
pub fn trust_bundle(stored: &Stored) -> Result<String, super::CaError> {
    let mut roots: Vec<String> = Vec::new();
    for cert in bundle(&stored.cert, &stored.phase) {
        let root = super::chain::read(&cert)?.root;
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    Ok(roots.concat())
}

/// The CA Secret's keys: OSM's two for the issuing root, then the
/// rotation's.
pub const CERT_KEY: &str = "ca.crt";
pub const KEY_KEY: &str = "private.key";
const PHASE_KEY: &str = "rotation.phase";
const NEXT_CERT_KEY: &str = "rotation.next.crt";
const NEXT_KEY_KEY: &str = "rotation.next.key";
const OLD_CERT_KEY: &str = "rotation.old.crt";

/// The issuing root and the phase, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub cert: String,
    pub key: String,
    pub phase: Phase,
}

/// The Secret's data for `stored`.
pub fn encode(stored: &Stored) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (CERT_KEY.to_string(), stored.cert.clone()),
        (KEY_KEY.to_string(), stored.key.clone()),
    ]);
    match &stored.phase {
        Phase::Steady => {}
        Phase::Distributing {
            next_cert,
            next_key,
        } => {
            data.insert(PHASE_KEY.into(), "distributing".into());
            data.insert(NEXT_CERT_KEY.into(), next_cert.clone());
            data.insert(NEXT_KEY_KEY.into(), next_key.clone());
        }
        Phase::Retiring { old_cert } => {
            data.insert(PHASE_KEY.into(), "retiring".into());
            data.insert(OLD_CERT_KEY.into(), old_cert.clone());
        }
    }
    data
}

/// Reads the Secret's data back; the error names the key that is missing
/// or wrong.
pub fn decode(data: &BTreeMap<String, String>) -> Result<Stored, String> {
    let get = |key: &str| {
        data.get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .ok_or_else(|| format!("{key} is missing"))
    };
    let phase = match data.get(PHASE_KEY).map(|p| p.trim()) {
        None | Some("") | Some("steady") => Phase::Steady,
        Some("distributing") => Phase::Distributing {
            next_cert: get(NEXT_CERT_KEY)?,
            next_key: get(NEXT_KEY_KEY)?,
        },
        Some("retiring") => Phase::Retiring {
            old_cert: get(OLD_CERT_KEY)?,
        },
        Some(other) => {
            return Err(format!(
                "{PHASE_KEY} is {other:?}: one of steady, distributing, retiring"
            ));
        }
    };
    Ok(Stored {
        cert: get(CERT_KEY)?,
        key: get(KEY_KEY)?,
        phase,
    })
}

/// The state after `step` was taken (`Issue` swaps the roots; `Finish`
/// drops the old one); None when the step changes nothing.
pub fn apply(stored: &Stored, step: &Step) -> Option<Stored> {
    match (&stored.phase, step) {
        (
            Phase::Distributing {
                next_cert,
                next_key,
            },
            Step::Issue,
        ) => Some(Stored {
            cert: next_cert.clone(),
            key: next_key.clone(),
            phase: Phase::Retiring {
                old_cert: stored.cert.clone(),
            },
        }),
        (Phase::Retiring { .. }, Step::Finish) => Some(Stored {
            phase: Phase::Steady,
            ..stored.clone()
        }),
        _ => None,
    }
}

/// A rotation started: `next` (certificate, key) joins the bundles.
/// Refused while one is in progress.
pub fn start(stored: &Stored, next: (String, String)) -> Result<Stored, String> {
    match stored.phase {
        Phase::Steady => Ok(Stored {
            phase: Phase::Distributing {
                next_cert: next.0,
                next_key: next.1,
            },
            ..stored.clone()
        }),
        ref phase => Err(format!(
            "a rotation is already in progress (phase {}); it continues on its own",
            phase.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(phase: Phase) -> Stored {
        Stored {
            cert: "OLD".into(),
            key: "OLD-KEY".into(),
            phase,
        }
    }

    fn distributing() -> Phase {
        Phase::Distributing {
            next_cert: "NEW".into(),
            next_key: "NEW-KEY".into(),
        }
    }

    #[test]
    fn each_phase_ends_on_what_it_waits_for() {
        let seen = |connected, acknowledged_next, live_from_old| Observed {
            connected,
            acknowledged_next,
            live_from_old,
            ..Observed::default()
        };
        let missing = |observed: Observed, patience_over| Observed {
            not_connected: vec!["shop/web-1".into()],
            patience_over,
            ..observed
        };
        let retiring = Phase::Retiring {
            old_cert: "OLD".into(),
        };
        let cases = [
            (Phase::Steady, seen(3, 0, 0), "wait"),
            (distributing(), seen(3, 2, 3), "wait"),
            (distributing(), seen(3, 3, 3), "issue"),
            (distributing(), seen(0, 0, 0), "issue"),
            // A restarted controller: proxies not back yet.
            (distributing(), missing(seen(0, 0, 0), false), "wait"),
            (distributing(), missing(seen(2, 2, 0), false), "wait"),
            (distributing(), missing(seen(2, 2, 0), true), "issue"),
            (retiring.clone(), seen(3, 3, 1), "wait"),
            (retiring.clone(), seen(3, 3, 0), "finish"),
            (retiring.clone(), missing(seen(2, 2, 0), false), "wait"),
            (retiring.clone(), missing(seen(2, 2, 0), true), "finish"),
            (retiring.clone(), missing(seen(2, 2, 1), true), "wait"),
            // Every replica must follow before a phase ends.
            (
                retiring,
                Observed {
                    within_min_phase: true,
                    ..seen(2, 2, 0)
                },
                "wait",
            ),
            (
                distributing(),
                Observed {
                    within_min_phase: true,
                    ..seen(2, 2, 0)
                },
                "wait",
            ),
        ];
        for (phase, observed, want) in cases {
            let got = match step(&phase, &observed) {
                Step::Wait(_) => "wait",
                Step::Issue => "issue",
                Step::Finish => "finish",
            };
            assert_eq!(got, want, "{} with {observed:?}", phase.name());
        }
        assert_eq!(
            step(&distributing(), &seen(4, 1, 0)),
            Step::Wait("1 of 4 connected proxies hold the new root".into())
        );
        let many = Observed {
            not_connected: (1..=5).map(|i| format!("shop/web-{i}")).collect(),
            ..Observed::default()
        };
        assert_eq!(
            step(&distributing(), &many),
            Step::Wait(
                "5 meshed pods have no proxy connected (shop/web-1, shop/web-2, shop/web-3 and 2 more)"
                    .into()
            )
        );
    }

    #[test]
    fn a_rotation_goes_through_its_phases_and_the_bundle_follows() {
        let steady = stored(Phase::Steady);
        assert_eq!(bundle(&steady.cert, &steady.phase), ["OLD"]);
        let started = start(&steady, ("NEW".into(), "NEW-KEY".into())).unwrap();
        assert_eq!(bundle(&started.cert, &started.phase), ["OLD", "NEW"]);
        assert!(
            start(&started, ("X".into(), "Y".into())).is_err(),
            "one at a time"
        );

        let issuing = apply(&started, &Step::Issue).unwrap();
        assert_eq!(
            (issuing.cert.as_str(), issuing.key.as_str()),
            ("NEW", "NEW-KEY")
        );
        assert_eq!(bundle(&issuing.cert, &issuing.phase), ["NEW", "OLD"]);
        assert_eq!(apply(&issuing, &Step::Issue), None, "issuing happens once");

        let done = apply(&issuing, &Step::Finish).unwrap();
        assert_eq!(done.phase, Phase::Steady);
        assert_eq!(bundle(&done.cert, &done.phase), ["NEW"]);
    }

    #[test]
    fn the_state_survives_the_secret_and_bad_data_is_named() {
        for phase in [
            Phase::Steady,
            distributing(),
            Phase::Retiring {
                old_cert: "OLD".into(),
            },
        ] {
            let s = stored(phase);
            assert_eq!(decode(&encode(&s)).unwrap(), s);
        }
        // OSM's Secret: two keys, no rotation.
        let osm = BTreeMap::from([
            ("ca.crt".to_string(), "C".to_string()),
            ("private.key".to_string(), "K".to_string()),
        ]);
        assert_eq!(decode(&osm).unwrap().phase, Phase::Steady);
        let mut half = encode(&stored(distributing()));
        half.remove("rotation.next.key");
        assert_eq!(decode(&half).unwrap_err(), "rotation.next.key is missing");
        let mut odd = osm.clone();
        odd.insert("rotation.phase".into(), "sideways".into());
        assert!(decode(&odd).unwrap_err().contains("one of steady"));
    }
}
