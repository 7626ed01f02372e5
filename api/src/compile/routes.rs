//! What compiled rules are made of, shared by the inbound (TrafficTarget),
//! outbound (TrafficSplit A/B) and policy compilers: the HTTPRouteGroup
//! matches a rule selects, and the `namespace/name` objects are named by.

use crate::{
    resources::{Custom, smi},
    v1,
};

/// `namespace/name` of an object, as warnings and compiled names write it.
pub fn tt_name<T>(o: &Custom<T>) -> String {
    format!(
        "{}/{}",
        o.metadata.namespace.as_deref().unwrap_or(""),
        o.metadata.name.as_deref().unwrap_or("")
    )
}

/// The matches a rule selects: all of the group's when it names none.
pub fn selected_matches(
    group: &Custom<smi::HttpRouteGroup>,
    names: Option<&[String]>,
    by: &str,
    warnings: &mut Vec<String>,
) -> Vec<v1::HttpMatch> {
    let group_name = tt_name(group);
    if let Some(names) = names {
        for n in names {
            if !group.spec.matches.iter().any(|m| &m.name == n) {
                warnings.push(format!(
                    "{by}: HTTPRouteGroup {group_name} has no match named {n:?}"
                ));
            }
        }
    }
    group
        .spec
        .matches
        .iter()
        .filter(|m| names.is_none_or(|names| names.contains(&m.name)))
        .map(|m| wire_match(&group_name, m))
        .collect()
}

/// One HTTPRouteGroup match as the proxy receives it (`<group>/<match>`):
/// what validation compiles too, so both judge the same thing.
pub fn wire_match(group_name: &str, m: &smi::HttpRouteMatch) -> v1::HttpMatch {
    v1::HttpMatch {
        name: format!("{group_name}/{}", m.name),
        path_regex: m.path_regex.clone().unwrap_or_default(),
        methods: m.methods.clone(),
        headers: m.headers.iter().cloned().collect(),
    }
}
