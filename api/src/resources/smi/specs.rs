//! `specs.smi-spec.io`: HTTPRouteGroup (v1alpha1..4), TCPRoute (v1alpha1..4),
//! UDPRoute (v1alpha4).

use serde::{Deserialize, Deserializer, de::Error as _};

use super::{HttpRouteGroup, HttpRouteMatch, PortRoute};

/// A match as v1alpha1 wrote it: no headers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchV1alpha1 {
    name: String,
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
}

/// A match from v1alpha2 on: headers as a map, or as a list of one-key maps.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    name: String,
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default, deserialize_with = "headers")]
    headers: Vec<(String, String)>,
}

/// Accepts `{user-agent: re, cookie: re}` (the spec's map form) and
/// `[{user-agent: re}, {cookie: re}]` (the form smi-sdk-go and OSM use).
fn headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let pair = |k: &String, v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
        other => Err(D::Error::custom(format!(
            "header {k:?} must map to a regex string, not {other}"
        ))),
    };
    match &value {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| pair(k, v)).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                serde_json::Value::Object(map) if map.len() == 1 => {
                    let (k, v) = map
                        .iter()
                        .next()
                        .ok_or_else(|| D::Error::custom("empty item"))?;
                    pair(k, v)
                }
                _ => Err(D::Error::custom(format!(
                    "headers[{i}] must be a map with exactly one header name"
                ))),
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "headers must be a map or a list of one-key maps, not {other}"
        ))),
    }
}

impl From<MatchV1alpha1> for HttpRouteMatch {
    fn from(m: MatchV1alpha1) -> Self {
        HttpRouteMatch {
            name: m.name,
            path_regex: m.path_regex,
            methods: m.methods,
            headers: Vec::new(),
        }
    }
}

impl From<Match> for HttpRouteMatch {
    fn from(m: Match) -> Self {
        HttpRouteMatch {
            name: m.name,
            path_regex: m.path_regex,
            methods: m.methods,
            headers: m.headers,
        }
    }
}

/// `matches` of HTTPRouteGroup v1alpha1 (top level).
pub fn group_v1alpha1(matches: Vec<MatchV1alpha1>) -> HttpRouteGroup {
    HttpRouteGroup {
        matches: matches.into_iter().map(HttpRouteMatch::from).collect(),
    }
}

/// `matches` of v1alpha2 (top level) and of `spec` in v1alpha3 and v1alpha4.
pub fn group(matches: Vec<Match>) -> HttpRouteGroup {
    HttpRouteGroup {
        matches: matches.into_iter().map(HttpRouteMatch::from).collect(),
    }
}

/// `spec` of HTTPRouteGroup v1alpha3 and v1alpha4.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub matches: Vec<Match>,
}

/// `spec` of TCPRoute v1alpha4 and UDPRoute v1alpha4.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRouteSpec {
    #[serde(default)]
    matches: Option<PortMatches>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortMatches {
    #[serde(default)]
    ports: Vec<u16>,
    /// In smi-sdk-go's type, not in the CRD schema; accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
}

impl From<PortRouteSpec> for PortRoute {
    fn from(s: PortRouteSpec) -> Self {
        PortRoute {
            ports: s.matches.map(|m| m.ports).unwrap_or_default(),
        }
    }
}

/// `spec` of TCPRoute v1alpha3: empty.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptySpec {}
