//! `split.smi-spec.io` TrafficSplit, v1alpha1..v1alpha4.

use serde::Deserialize;

use super::{Backend, SplitMatch, TrafficSplit};

/// A v1alpha1 weight: a quantity written as a string or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Quantity {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendV1alpha1 {
    service: String,
    weight: Quantity,
}

/// `spec` of v1alpha1: weights are quantities.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecV1alpha1 {
    service: String,
    #[serde(default)]
    backends: Vec<BackendV1alpha1>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendV1alpha2 {
    service: String,
    weight: u64,
}

/// `spec` of v1alpha2: whole-number weights, no matches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecV1alpha2 {
    service: String,
    backends: Vec<BackendV1alpha2>,
}

/// `spec` of v1alpha3 and v1alpha4: adds A/B `matches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecV1alpha4 {
    service: String,
    backends: Vec<BackendV1alpha2>,
    #[serde(default)]
    matches: Vec<SplitMatch>,
}

impl TryFrom<SpecV1alpha1> for TrafficSplit {
    type Error = String;

    fn try_from(s: SpecV1alpha1) -> Result<Self, String> {
        let backends = s
            .backends
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let text = match &b.weight {
                    Quantity::Text(t) => t.clone(),
                    Quantity::Number(n) => n.to_string(),
                };
                let weight = crate::resources::quantity::to_milli(&text)
                    .map_err(|e| format!("spec.backends[{i}].weight: {e}"))?;
                Ok(Backend {
                    service: b.service,
                    weight,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(TrafficSplit {
            service: s.service,
            backends,
            matches: Vec::new(),
        })
    }
}

fn backends(list: Vec<BackendV1alpha2>) -> Vec<Backend> {
    list.into_iter()
        .map(|b| Backend {
            service: b.service,
            weight: b.weight,
        })
        .collect()
}

impl From<SpecV1alpha2> for TrafficSplit {
    fn from(s: SpecV1alpha2) -> Self {
        TrafficSplit {
            service: s.service,
            backends: backends(s.backends),
            matches: Vec::new(),
        }
    }
}

impl From<SpecV1alpha4> for TrafficSplit {
    fn from(s: SpecV1alpha4) -> Self {
        TrafficSplit {
            service: s.service,
            backends: backends(s.backends),
            matches: s.matches,
        }
    }
}
