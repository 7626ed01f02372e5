//! SMI resources: every served version converts to one internal form.
//!
//! | kind | versions read |
//! |---|---|
//! | TrafficTarget (`access.smi-spec.io`) | v1alpha2, v1alpha3 |
//! | HTTPRouteGroup (`specs.smi-spec.io`) | v1alpha1 .. v1alpha4 |
//! | TCPRoute (`specs.smi-spec.io`) | v1alpha1 .. v1alpha4 |
//! | UDPRoute (`specs.smi-spec.io`) | v1alpha4 |
//! | TrafficSplit (`split.smi-spec.io`) | v1alpha1 .. v1alpha4 |

pub mod access;
pub mod specs;
pub mod split;

/// A ServiceAccount (or, in drafts, another identity kind) named by a
/// TrafficTarget.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A TrafficTarget: `sources` may send the traffic `rules` describe to the
/// pods running as `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficTarget {
    pub destination: Subject,
    /// v1alpha2 only: the destination port (None: all ports).
    pub destination_port: Option<u16>,
    pub sources: Vec<Subject>,
    pub rules: Vec<Rule>,
}

/// A reference from a TrafficTarget to a route in its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: String,
    pub name: String,
    /// Names of HTTPRouteGroup matches; None (omitted) means all of them.
    pub matches: Option<Vec<String>>,
}

/// An HTTPRouteGroup: named HTTP matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRouteGroup {
    pub matches: Vec<HttpRouteMatch>,
}

/// One named HTTP match: path regex, methods and header regexes, ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRouteMatch {
    pub name: String,
    pub path_regex: Option<String>,
    pub methods: Vec<String>,
    /// Header name -> value regex, in the order written.
    pub headers: Vec<(String, String)>,
}

/// A TCPRoute or UDPRoute: ports (empty: every port of the destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRoute {
    pub ports: Vec<u16>,
}

/// A TrafficSplit of a root service over backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSplit {
    /// The root service, as written (a name, or `name.namespace...`).
    pub service: String,
    pub backends: Vec<Backend>,
    /// A/B: HTTPRouteGroups whose matching requests follow the split.
    pub matches: Vec<SplitMatch>,
}

/// A split backend and its relative weight. v1alpha1 quantity weights are
/// scaled to thousandths ("500m" -> 500, "1" -> 1000) so ratios hold; later
/// versions' integers are kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub service: String,
    pub weight: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitMatch {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub api_group: Option<String>,
}
