//! `osm local get`: kubectl's tables (or YAML/JSON) for what the store
//! holds.

use std::time::SystemTime;

use serde_json::Value;

use osm_local::{
    runtime::status::ready_and_status,
    store::{Store, Stored},
};

/// A resource name as typed (plural, singular or short) -> its kind.
pub fn kind_of(resource: &str) -> Option<&'static str> {
    let r = resource.to_ascii_lowercase();
    let r = r.split('.').next().unwrap_or_default();
    Some(match r {
        "pod" | "pods" | "po" => "Pod",
        "service" | "services" | "svc" => "Service",
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "job" | "jobs" | "job.batch" => "Job",
        "namespace" | "namespaces" | "ns" => "Namespace",
        "serviceaccount" | "serviceaccounts" | "sa" => "ServiceAccount",
        "configmap" | "configmaps" | "cm" => "ConfigMap",
        "secret" | "secrets" => "Secret",
        "traffictarget" | "traffictargets" | "tt" => "TrafficTarget",
        "trafficsplit" | "trafficsplits" | "ts" => "TrafficSplit",
        "httproutegroup" | "httproutegroups" | "htr" => "HTTPRouteGroup",
        "tcproute" | "tcproutes" => "TCPRoute",
        "udproute" | "udproutes" => "UDPRoute",
        "meshconfig" | "meshconfigs" | "meshconfig.config" => "MeshConfig",
        "egress" | "egresses" => "Egress",
        "ingressbackend" | "ingressbackends" => "IngressBackend",
        "retry" | "retries" => "Retry",
        "upstreamtrafficsetting" | "upstreamtrafficsettings" | "uts" => "UpstreamTrafficSetting",
        "httproute" | "httproutes" => "HTTPRoute",
        "grpcroute" | "grpcroutes" => "GRPCRoute",
        "event" | "events" | "ev" => "Event",
        _ => return None,
    })
}

/// kubectl's age: `45s`, `12m`, `5h`, `3d`.
pub fn age(created: &str, now: SystemTime) -> String {
    let Ok(then) = humantime::parse_rfc3339_weak(created) else {
        return "<unknown>".into();
    };
    let secs = now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn ports(service: &Value) -> String {
    let list: Vec<String> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}",
                p.get("port").and_then(Value::as_u64).unwrap_or(0),
                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
            )
        })
        .collect();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(",")
    }
}

/// The table for objects of one kind (pure).
pub fn table(
    kind: &str,
    objects: &[&Stored],
    all: &[Stored],
    wide: bool,
    with_namespace: bool,
    now: SystemTime,
) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let header: Vec<&str> = match kind {
        "Pod" if wide => vec![
            "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "LIMITS",
        ],
        "Pod" => vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "Service" => vec![
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        "Deployment" => vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "StatefulSet" => vec!["NAME", "READY", "AGE"],
        "Namespace" => vec!["NAME", "STATUS", "AGE"],
        "Job" => vec!["NAME", "STATUS", "COMPLETIONS", "AGE"],
        "Secret" => vec!["NAME", "TYPE", "DATA", "AGE"],
        "HTTPRoute" | "GRPCRoute" => vec!["NAME", "PARENTS", "ACCEPTED", "RESOLVEDREFS", "AGE"],
        "Event" => vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        _ => vec!["NAME", "AGE"],
    };
    for s in objects {
        let v = &s.value;
        let name = s.key.name.clone();
        let created = age(str_at(v, "/metadata/creationTimestamp"), now);
        let mut row = match kind {
            "Pod" => {
                let (ready, status, restarts) = ready_and_status(v);
                let mut r = vec![name, ready, status, restarts.to_string(), created];
                if wide {
                    let ip = str_at(v, "/status/podIP");
                    r.push(if ip.is_empty() {
                        "<none>".into()
                    } else {
                        ip.into()
                    });
                    r.push(str_at(v, "/spec/nodeName").to_string());
                    r.push(osm_local::runtime::status::limits_column(v));
                }
                r
            }
            "Service" => vec![
                name,
                str_at(v, "/spec/type").to_string(),
                str_at(v, "/spec/clusterIP").to_string(),
                "<none>".into(),
                ports(v),
                created,
            ],
            "Deployment" => {
                let replicas = v
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                let owned: Vec<&Stored> = all
                    .iter()
                    .filter(|p| {
                        p.key.kind == "Pod"
                            && p.key.namespace == s.key.namespace
                            && osm_local::runtime::deployments::owned_by(&p.value, &s.key.name)
                    })
                    .collect();
                let ready = owned
                    .iter()
                    .filter(|p| {
                        let (r, _, _) = ready_and_status(&p.value);
                        r.split_once('/').is_some_and(|(a, b)| a == b)
                    })
                    .count();
                let hash = osm_local::runtime::deployments::template_hash(
                    v.pointer("/spec/template").unwrap_or(&Value::Null),
                );
                let current = owned
                    .iter()
                    .filter(|p| str_at(&p.value, "/metadata/labels/pod-template-hash") == hash)
                    .count();
                vec![
                    name,
                    format!("{ready}/{replicas}"),
                    current.to_string(),
                    ready.to_string(),
                    created,
                ]
            }
            "StatefulSet" => {
                let replicas = v
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                let ready = v
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                vec![name, format!("{ready}/{replicas}"), created]
            }
            "Namespace" => vec![name, "Active".into(), created],
            "Job" => {
                let (status, completions) = osm_local::runtime::jobs::job_columns(v);
                vec![name, status, completions, created]
            }
            "Secret" => {
                let keys = |field: &str| {
                    v.get(field)
                        .and_then(Value::as_object)
                        .into_iter()
                        .flat_map(|m| m.keys().cloned())
                        .collect::<std::collections::BTreeSet<String>>()
                };
                let mut all = keys("data");
                all.extend(keys("stringData"));
                let kind = str_at(v, "/type");
                vec![
                    name,
                    if kind.is_empty() { "Opaque" } else { kind }.to_string(),
                    all.len().to_string(),
                    created,
                ]
            }
            "HTTPRoute" | "GRPCRoute" => {
                let (parents, accepted, resolved) = route_columns(v);
                vec![name, parents, accepted, resolved, created]
            }
            "Event" => vec![
                age(str_at(v, "/lastTimestamp"), now),
                str_at(v, "/type").to_string(),
                str_at(v, "/reason").to_string(),
                format!(
                    "{}/{}",
                    str_at(v, "/involvedObject/kind").to_ascii_lowercase(),
                    str_at(v, "/involvedObject/name")
                ),
                str_at(v, "/message").to_string(),
            ],
            _ => vec![name, created],
        };
        if with_namespace {
            row.insert(0, s.key.namespace.clone());
        }
        rows.push(row);
    }
    let mut header = header;
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    crate::table::render(&header, &rows)
}

/// A route's parents (`service[:port]`, namespaced when not the route's)
/// and, per parent, its Accepted and ResolvedRefs conditions.
fn route_columns(route: &Value) -> (String, String, String) {
    let parents = route
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let condition = |p: &Value, kind: &str| {
        p["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind)
            .map(|c| {
                let status = c["status"].as_str().unwrap_or("Unknown");
                match c["reason"].as_str() {
                    Some(reason) if status != "True" => format!("{status}({reason})"),
                    _ => status.to_string(),
                }
            })
            .unwrap_or_else(|| "Unknown".into())
    };
    if parents.is_empty() {
        return ("<none>".into(), "<none>".into(), "<none>".into());
    }
    let names: Vec<String> = parents
        .iter()
        .map(|p| {
            let r = &p["parentRef"];
            let mut name = r["name"].as_str().unwrap_or("").to_string();
            if let Some(ns) = r["namespace"].as_str() {
                name = format!("{ns}/{name}");
            }
            match r["port"].as_u64() {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let column = |kind: &str| {
        parents
            .iter()
            .map(|p| condition(p, kind))
            .collect::<Vec<_>>()
            .join(",")
    };
    (names.join(","), column("Accepted"), column("ResolvedRefs"))
}

/// What to show.
#[derive(Debug, Clone)]
pub struct Query {
    pub resource: String,
    pub name: Option<String>,
    pub namespace: String,
    pub all_namespaces: bool,
    pub output: Option<String>,
}

/// Runs a query; the text to print, or an error kubectl-like.
pub fn get(store: &Store, q: &Query) -> anyhow::Result<String> {
    let kind = kind_of(&q.resource).ok_or_else(|| {
        anyhow::anyhow!(
            "error: the server doesn't have a resource type {:?} (try pods, services, deployments, namespaces, serviceaccounts, configmaps, traffictargets, trafficsplits, httproutegroups, tcproutes, meshconfigs, egresses, ingressbackends, httproutes, grpcroutes, events, jobs, secrets)",
            q.resource
        )
    })?;
    let mut all = store.list()?;
    osm_local::route_status::fill(&mut all, &osm_local::apiserver::now_rfc3339());
    let namespaced = kind != "Namespace";
    let selected: Vec<&Stored> = all
        .iter()
        .filter(|s| s.key.kind == kind)
        .filter(|s| !namespaced || q.all_namespaces || s.key.namespace == q.namespace)
        .filter(|s| q.name.as_ref().is_none_or(|n| &s.key.name == n))
        .collect();
    if let Some(name) = &q.name
        && selected.is_empty()
    {
        anyhow::bail!(
            "Error from server (NotFound): {} \"{name}\" not found",
            q.resource.to_ascii_lowercase()
        );
    }
    match q.output.as_deref() {
        Some("yaml") | Some("json") => {
            let values: Vec<&Value> = selected.iter().map(|s| &s.value).collect();
            let doc = if q.name.is_some() && values.len() == 1 {
                values[0].clone()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values})
            };
            Ok(if q.output.as_deref() == Some("json") {
                serde_json::to_string_pretty(&doc)? + "\n"
            } else {
                serde_yaml_ng::to_string(&doc)?
            })
        }
        Some("wide") | None => {
            if selected.is_empty() {
                return Ok(if namespaced && !q.all_namespaces {
                    format!("No resources found in {} namespace.\n", q.namespace)
                } else {
                    "No resources found\n".into()
                });
            }
            Ok(table(
                kind,
                &selected,
                &all,
                q.output.as_deref() == Some("wide"),
                namespaced && q.all_namespaces,
                SystemTime::now(),
            ))
        }
        Some(other) => anyhow::bail!(
            "error: unable to match a printer for output format {other:?} (use wide, yaml or json)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use osm_local::store::Key;

    #[test]
    fn ages_read_like_kubectl() {
        let now = humantime::parse_rfc3339("2026-01-03T00:00:00Z").unwrap();
        let at = |secs: u64| {
            humantime::format_rfc3339_seconds(now - Duration::from_secs(secs)).to_string()
        };
        assert_eq!(age(&at(45), now), "45s");
        assert_eq!(age(&at(600), now), "10m");
        assert_eq!(age(&at(5 * 3600), now), "5h");
        assert_eq!(age(&at(3 * 86400), now), "3d");
    }

    #[test]
    fn services_and_pods_print_as_tables() {
        let now = humantime::parse_rfc3339("2026-01-03T00:00:00Z").unwrap();
        let svc = Stored {
            key: Key::new("Service", "shop", "web"),
            value: json!({"metadata": {"creationTimestamp": "2026-01-02T23:59:00Z"},
                "spec": {"type": "ClusterIP", "clusterIP": "10.214.0.1", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}),
        };
        let text = table("Service", &[&svc], &[], false, false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)         AGE"
        );
        assert_eq!(
            lines[1],
            "web    ClusterIP   10.214.0.1   <none>        80/TCP,53/UDP   60s"
        );
        assert_eq!(kind_of("svc"), Some("Service"));
        assert_eq!(
            kind_of("trafficsplits.split.smi-spec.io"),
            Some("TrafficSplit")
        );
        assert_eq!(kind_of("widgets"), None);
    }
}
