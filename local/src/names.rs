//! Names from manifests checked as Kubernetes checks them, before they
//! reach a path or an iptables rule: container, volume and volume-mount
//! names are DNS-1123 labels, port names IANA service names, Service
//! port protocols one of TCP, UDP, SCTP. Pure; `osm local apply` refuses
//! what fails, and the runtime checks again before it uses a name.

use serde_json::Value;

/// A DNS-1123 label: 1-63 of `a-z`, `0-9`, `-`, starting and ending with
/// a letter or digit.
pub fn dns_label(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} is not a DNS label (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ))
    }
}

/// An IANA service name (a port name): 1-15 of `a-z`, `0-9`, `-`, with a
/// letter, no leading, trailing or doubled `-`.
fn port_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "port name {name:?} is not an IANA service name (1-15 lowercase letters, digits and '-', with a letter)"
        ))
    }
}

/// The protocol of a Service or container port.
pub fn protocol(value: &str) -> Result<(), String> {
    match value {
        "TCP" | "UDP" | "SCTP" => Ok(()),
        other => Err(format!("protocol {other:?} is not TCP, UDP or SCTP")),
    }
}

fn each<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn ports(at: &str, list: &Value, out: &mut Vec<String>) {
    for (i, port) in each(list, "") {
        if let Some(name) = port.get("name").and_then(Value::as_str)
            && let Err(e) = port_name(name)
        {
            out.push(format!("{at}[{i}].name: {e}"));
        }
        if let Some(p) = port.get("protocol").and_then(Value::as_str)
            && let Err(e) = protocol(p)
        {
            out.push(format!("{at}[{i}].protocol: {e}"));
        }
    }
}

/// Problems with the names of a pod spec (`at` is its field path).
pub fn pod_spec(at: &str, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in each(spec, &format!("/{list}")) {
            let here = format!("{at}.{list}[{i}]");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if let Err(e) = dns_label("container", name) {
                out.push(format!("{here}.name: {e}"));
            }
            for (j, m) in each(c, "/volumeMounts") {
                let name = m.get("name").and_then(Value::as_str).unwrap_or("");
                if let Err(e) = dns_label("volume", name) {
                    out.push(format!("{here}.volumeMounts[{j}].name: {e}"));
                }
            }
            if let Some(list) = c.get("ports") {
                ports(&format!("{here}.ports"), list, &mut out);
            }
            // Quantities, as the API server parses them (local mode
            // enforces memory and cpu limits).
            for kind in ["limits", "requests"] {
                let quantities = c
                    .pointer(&format!("/resources/{kind}"))
                    .and_then(Value::as_object);
                for (resource, q) in quantities.into_iter().flatten() {
                    let text = q
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| q.to_string());
                    if let Err(e) =
                        crate::runtime::cgroups::parse_quantity(&text, resource == "cpu")
                    {
                        out.push(format!("{here}.resources.{kind}.{resource}: {e}"));
                    }
                }
            }
        }
    }
    for (i, v) in each(spec, "/volumes") {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if let Err(e) = dns_label("volume", name) {
            out.push(format!("{at}.volumes[{i}].name: {e}"));
        }
    }
    out
}

/// Problems with the names inside an object, by kind (Pod, Deployment,
/// StatefulSet, Job, Service); none for other kinds.
pub fn object(kind: &str, value: &Value) -> Vec<String> {
    match kind {
        "Pod" => value
            .get("spec")
            .map_or_else(Vec::new, |s| pod_spec("spec", s)),
        "Deployment" | "StatefulSet" => value
            .pointer("/spec/template/spec")
            .map_or_else(Vec::new, |s| pod_spec("spec.template.spec", s)),
        "Job" => {
            let Some(spec) = value.pointer("/spec/template/spec") else {
                // A manifest naming the Job only (to delete it).
                return Vec::new();
            };
            let mut out = pod_spec("spec.template.spec", spec);
            // A Job's pods must be able to finish.
            let policy = spec.get("restartPolicy").and_then(Value::as_str);
            if !matches!(policy, Some("Never" | "OnFailure")) {
                out.push(format!(
                    "spec.template.spec.restartPolicy: {}: a Job's pods need \"Never\" or \"OnFailure\"",
                    policy.map_or("required".to_string(), |p| format!("{p:?} is not valid"))
                ));
            }
            out
        }
        "Service" => {
            let mut out = Vec::new();
            if let Some(list) = value.pointer("/spec/ports") {
                ports("spec.ports", list, &mut out);
            }
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_that_would_reach_a_path_or_a_rule_are_checked() {
        let cases = [
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "app"}], "volumes": [{"name": "token"}]}}),
                0,
            ),
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "../../etc"}]}}),
                1,
            ),
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "a", "volumeMounts": [{"name": "x/y"}]}], "volumes": [{"name": "..", "emptyDir": {}}]}}),
                2,
            ),
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "a", "ports": [{"name": "http-alt", "protocol": "TCP"}, {"name": "Web", "protocol": "tcp"}]}]}}),
                2,
            ),
            (
                "Deployment",
                json!({"spec": {"template": {"spec": {"initContainers": [{"name": "A"}], "containers": [{"name": "b"}]}}}}),
                1,
            ),
            (
                "Service",
                json!({"spec": {"ports": [{"name": "grpc", "protocol": "UDP"}, {"port": 80, "protocol": "tcp -j ACCEPT"}]}}),
                1,
            ),
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "64Mi", "cpu": "lots"}, "requests": {"memory": 12}}}]}}),
                1,
            ),
            ("ConfigMap", json!({"data": {"../x": "y"}}), 0),
            ("Job", json!({"metadata": {"name": "migrate"}}), 0),
            (
                "Job",
                json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "migrate"}]}}}}),
                0,
            ),
            (
                "Job",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "Migrate"}]}}}}),
                2,
            ),
            (
                "Job",
                json!({"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "m"}]}}}}),
                1,
            ),
        ];
        for (kind, value, problems) in cases {
            let found = object(kind, &value);
            assert_eq!(found.len(), problems, "{kind} {value}: {found:?}");
        }
        assert!(dns_label("volume", &"a".repeat(64)).is_err());
        assert!(dns_label("volume", "token-1").is_ok());
        assert!(
            port_name("a--b").is_err() && port_name("8080").is_err() && port_name("h2c").is_ok()
        );
    }
}
