//! `access.smi-spec.io` TrafficTarget, v1alpha2 and v1alpha3.

use serde::Deserialize;

use super::{Rule, Subject, TrafficTarget};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRule {
    kind: String,
    name: String,
    #[serde(default)]
    matches: Option<Vec<String>>,
}

impl From<WireRule> for Rule {
    fn from(r: WireRule) -> Self {
        Rule {
            kind: r.kind,
            name: r.name,
            matches: r.matches,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationV1alpha2 {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

/// `spec` of v1alpha2: `rules` and `sources` optional, destination may name a port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecV1alpha2 {
    destination: DestinationV1alpha2,
    #[serde(default)]
    rules: Vec<WireRule>,
    #[serde(default)]
    sources: Vec<Subject>,
}

/// `spec` of v1alpha3: the destination has no port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecV1alpha3 {
    destination: Subject,
    #[serde(default)]
    rules: Vec<WireRule>,
    #[serde(default)]
    sources: Vec<Subject>,
}

impl From<SpecV1alpha2> for TrafficTarget {
    fn from(s: SpecV1alpha2) -> Self {
        TrafficTarget {
            destination: Subject {
                kind: s.destination.kind,
                name: s.destination.name,
                namespace: s.destination.namespace,
            },
            destination_port: s.destination.port,
            sources: s.sources,
            rules: s.rules.into_iter().map(Rule::from).collect(),
        }
    }
}

impl From<SpecV1alpha3> for TrafficTarget {
    fn from(s: SpecV1alpha3) -> Self {
        TrafficTarget {
            destination: s.destination,
            destination_port: None,
            sources: s.sources,
            rules: s.rules.into_iter().map(Rule::from).collect(),
        }
    }
}
