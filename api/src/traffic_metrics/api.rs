//! The aggregated API's requests: what a path under
//! `/apis/metrics.smi-spec.io/v1alpha1` asks for, and the answers that are
//! not metrics (discovery, errors), as the Kubernetes API writes them.

use serde_json::{Value, json};

use super::{API_VERSION, Kind, traffic_metrics};

pub const GROUP: &str = "metrics.smi-spec.io";
pub const VERSION: &str = "v1alpha1";

/// What a request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `/apis`: the group list.
    Groups,
    /// `/apis/metrics.smi-spec.io`: the group.
    Group,
    /// `/apis/metrics.smi-spec.io/v1alpha1`: the resources served.
    Resources,
    /// TrafficMetrics of the resources of `kind` in `namespace` (empty:
    /// every namespace), of one of them when `name` is given, by peer
    /// when `edges`.
    Metrics {
        kind: Kind,
        namespace: String,
        name: Option<String>,
        edges: bool,
    },
}

/// The plural a path names, for the kinds metrics are kept for.
fn kind_of_plural(plural: &str) -> Option<Kind> {
    match plural {
        "pods" => Some(Kind::Pod),
        "deployments" => Some(Kind::Deployment),
        "namespaces" => Some(Kind::Namespace),
        _ => None,
    }
}

fn unsupported(plural: &str) -> String {
    format!(
        "traffic metrics are kept for pods, deployments and namespaces, not {plural:?} \
         (the proxies label requests with their pod, workload and namespace)"
    )
}

/// Reads a request path (query string excluded); the error is why it was
/// not found.
pub fn parse(path: &str) -> Result<ApiRequest, String> {
    let path = path.trim_end_matches('/');
    if path == "/apis" {
        return Ok(ApiRequest::Groups);
    }
    let Some(rest) = path.strip_prefix("/apis/metrics.smi-spec.io") else {
        return Err(format!("{path}: not a path of {GROUP}"));
    };
    if rest.is_empty() {
        return Ok(ApiRequest::Group);
    }
    let Some(rest) = rest.strip_prefix("/v1alpha1") else {
        return Err(format!(
            "{path}: {GROUP} is served at version {VERSION} only"
        ));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let metrics = |kind, namespace: &str, name: Option<&str>, edges| {
        Ok(ApiRequest::Metrics {
            kind,
            namespace: namespace.to_string(),
            name: name.map(str::to_string),
            edges,
        })
    };
    match segments.as_slice() {
        [] => Ok(ApiRequest::Resources),
        ["namespaces"] => metrics(Kind::Namespace, "", None, false),
        ["namespaces", ns] => metrics(Kind::Namespace, "", Some(ns), false),
        ["namespaces", ns, "edges"] => metrics(Kind::Namespace, "", Some(ns), true),
        [plural] | ["namespaces", _, plural] | ["namespaces", _, plural, _] => {
            let Some(kind) = kind_of_plural(plural) else {
                return Err(unsupported(plural));
            };
            let namespace = match segments.as_slice() {
                ["namespaces", ns, ..] => ns,
                _ => "",
            };
            metrics(kind, namespace, segments.get(3).copied(), false)
        }
        ["namespaces", ns, plural, name, "edges"] => match kind_of_plural(plural) {
            Some(kind) => metrics(kind, ns, Some(name), true),
            None => Err(unsupported(plural)),
        },
        _ => Err(format!("{path}: no such resource")),
    }
}

/// The answer to a metrics request: a TrafficMetricsList, or for one named
/// resource without edges the TrafficMetrics itself (zero counts when it
/// had no traffic in the window).
pub fn answer(
    request: &ApiRequest,
    requests: &[super::Requests],
    timestamp: &str,
    window: &str,
) -> Value {
    let ApiRequest::Metrics {
        kind,
        namespace,
        name,
        edges,
    } = request
    else {
        return discovery(request);
    };
    let list = traffic_metrics(
        requests,
        *kind,
        namespace,
        name.as_deref(),
        *edges,
        timestamp,
        window,
    );
    let (Some(name), false) = (name, edges) else {
        return list;
    };
    if let Some(item) = list["items"].get(0) {
        return item.clone();
    }
    let mut resource = json!({"kind": list["resource"]["kind"], "name": name});
    if *kind != Kind::Namespace {
        resource["namespace"] = json!(namespace);
    }
    json!({
        "kind": "TrafficMetrics",
        "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace},
        "timestamp": timestamp,
        "window": window,
        "resource": resource,
        "edge": {"direction": "from", "side": "client", "resource": null},
        "metrics": [
            {"name": "success_count", "value": "0"},
            {"name": "failure_count", "value": "0"},
        ],
    })
}

fn discovery(request: &ApiRequest) -> Value {
    let group_version = json!({"groupVersion": API_VERSION, "version": VERSION});
    let group = json!({
        "name": GROUP,
        "versions": [group_version],
        "preferredVersion": group_version,
    });
    match request {
        ApiRequest::Groups => {
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
        }
        ApiRequest::Group => {
            let mut g = group;
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        }
        _ => {
            let resources: Vec<Value> = ["pods", "deployments", "namespaces"]
                .iter()
                .flat_map(|plural| {
                    let namespaced = *plural != "namespaces";
                    [plural.to_string(), format!("{plural}/edges")].map(|name| {
                        json!({
                            "name": name,
                            "singularName": "",
                            "namespaced": namespaced,
                            "kind": "TrafficMetrics",
                            "verbs": ["get", "list"],
                        })
                    })
                })
                .collect();
            json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": API_VERSION,
                "resources": resources,
            })
        }
    }
}

/// A Kubernetes `Status` failure, as the API server writes one.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind, namespace: &str, name: Option<&str>, edges: bool) -> ApiRequest {
        ApiRequest::Metrics {
            kind,
            namespace: namespace.into(),
            name: name.map(str::to_string),
            edges,
        }
    }

    #[test]
    fn paths_name_what_they_ask_for() {
        let base = "/apis/metrics.smi-spec.io/v1alpha1";
        let cases = [
            ("/apis", Ok(ApiRequest::Groups)),
            ("/apis/metrics.smi-spec.io", Ok(ApiRequest::Group)),
            (base, Ok(ApiRequest::Resources)),
            (
                "/apis/metrics.smi-spec.io/v1alpha1/",
                Ok(ApiRequest::Resources),
            ),
            ("/namespaces", Ok(m(Kind::Namespace, "", None, false))),
            (
                "/namespaces/bookstore",
                Ok(m(Kind::Namespace, "", Some("bookstore"), false)),
            ),
            (
                "/namespaces/bookstore/edges",
                Ok(m(Kind::Namespace, "", Some("bookstore"), true)),
            ),
            ("/pods", Ok(m(Kind::Pod, "", None, false))),
            ("/deployments", Ok(m(Kind::Deployment, "", None, false))),
            (
                "/namespaces/bookstore/deployments",
                Ok(m(Kind::Deployment, "bookstore", None, false)),
            ),
            (
                "/namespaces/bookstore/deployments/bookstore-v1",
                Ok(m(
                    Kind::Deployment,
                    "bookstore",
                    Some("bookstore-v1"),
                    false,
                )),
            ),
            (
                "/namespaces/bookstore/pods/p-1/edges",
                Ok(m(Kind::Pod, "bookstore", Some("p-1"), true)),
            ),
        ];
        for (path, want) in cases {
            let full = if path.starts_with("/apis") {
                path.to_string()
            } else {
                format!("{base}{path}")
            };
            assert_eq!(parse(&full), want, "{full}");
        }
        for refused in [
            "/api/v1/pods",
            "/apis/metrics.smi-spec.io/v1alpha2/pods",
            "/apis/metrics.smi-spec.io/v1alpha1/services",
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/ns/statefulsets/x",
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/ns/pods/x/edges/more",
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/ns/services/x/edges",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn discovery_lists_each_kind_and_its_edges() {
        let doc = answer(&ApiRequest::Resources, &[], "t", "30s");
        assert_eq!(doc["kind"], "APIResourceList");
        assert_eq!(doc["groupVersion"], API_VERSION);
        let names: Vec<&str> = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "pods",
                "pods/edges",
                "deployments",
                "deployments/edges",
                "namespaces",
                "namespaces/edges"
            ]
        );
        assert_eq!(doc["resources"][4]["namespaced"], false);
        assert_eq!(
            answer(&ApiRequest::Group, &[], "t", "30s")["kind"],
            "APIGroup"
        );
    }

    #[test]
    fn one_named_resource_is_an_object_even_without_traffic() {
        let one = answer(
            &m(Kind::Deployment, "ns", Some("quiet"), false),
            &[],
            "t",
            "30s",
        );
        assert_eq!(one["kind"], "TrafficMetrics");
        assert_eq!(one["resource"]["name"], "quiet");
        assert_eq!(one["resource"]["namespace"], "ns");
        assert_eq!(one["window"], "30s");
        assert_eq!(one["metrics"][0]["value"], "0");
        let edges = answer(
            &m(Kind::Deployment, "ns", Some("quiet"), true),
            &[],
            "t",
            "30s",
        );
        assert_eq!(edges["kind"], "TrafficMetricsList");
    }
}
