//! Fields local mode reads past without enforcing them, named in a
//! warning at apply (pure): the object is still applied, as a cluster
//! would take it, and the user knows what will not hold here.

use serde_json::Value;

/// Job fields the local Job controller does not act on.
const JOB_FIELDS: &[&str] = &[
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "suspend",
    "completionMode",
    "podFailurePolicy",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "successPolicy",
];

/// The warnings for an object of `kind`.
pub fn warnings(kind: &str, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod_spec = match kind {
        "Pod" => value.get("spec"),
        "Deployment" | "StatefulSet" | "Job" => value.pointer("/spec/template/spec"),
        _ => None,
    };
    let at = if kind == "Pod" {
        "spec"
    } else {
        "spec.template.spec"
    };
    if kind == "StatefulSet" {
        // Pods are made and removed by ordinal; these are not.
        for field in [
            "volumeClaimTemplates",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "ordinals",
            "minReadySeconds",
        ] {
            if value.pointer(&format!("/spec/{field}")).is_some() {
                out.push(format!("spec.{field}: not enforced in local mode"));
            }
        }
    }
    if kind == "Job" {
        for field in JOB_FIELDS {
            if value.pointer(&format!("/spec/{field}")).is_some() {
                out.push(format!("spec.{field}: not enforced in local mode"));
            }
        }
    }
    let volumes = pod_spec
        .and_then(|s| s.get("volumes"))
        .and_then(Value::as_array);
    for (i, v) in volumes.into_iter().flatten().enumerate() {
        for source in ["configMap", "secret"] {
            for field in ["items", "defaultMode"] {
                if v.pointer(&format!("/{source}/{field}")).is_some() {
                    out.push(format!(
                        "{at}.volumes[{i}].{source}.{field}: not enforced in local mode (every key is a file of its own name)"
                    ));
                }
            }
        }
    }
    if let Some(spec) = pod_spec {
        pod_spec_warnings(at, spec, &mut out);
    }
    if kind == "Secret" && value.get("immutable").is_some() {
        out.push("immutable: not enforced in local mode".into());
    }
    out
}

/// Pod fields the local kubelet does not honour.
const POD_FIELDS: &[&str] = &["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"];
/// Pod securityContext fields it does not apply (runAsUser, runAsGroup
/// and runAsNonRoot are).
const POD_SECURITY_FIELDS: &[&str] =
    &["fsGroup", "supplementalGroups", "sysctls", "seccompProfile"];
/// Container securityContext fields it does not apply (runAsUser,
/// runAsGroup and runAsNonRoot are; privileged and added capabilities only
/// make the container run as root).
const CONTAINER_SECURITY_FIELDS: &[&str] = &[
    "allowPrivilegeEscalation",
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "procMount",
];

/// What a pod spec (at `at`) asks that local mode does not do: host
/// namespaces, security settings beyond the user, resource requests (no
/// scheduler) and limits other than memory and CPU.
fn pod_spec_warnings(at: &str, spec: &Value, out: &mut Vec<String>) {
    for field in POD_FIELDS {
        if spec.get(*field).is_some_and(|v| v != &Value::Bool(false)) {
            out.push(format!("{at}.{field}: not enforced in local mode"));
        }
    }
    for field in POD_SECURITY_FIELDS {
        if spec.pointer(&format!("/securityContext/{field}")).is_some() {
            out.push(format!(
                "{at}.securityContext.{field}: not enforced in local mode"
            ));
        }
    }
    for list in ["initContainers", "containers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let here = format!("{at}.{list}[{i}]");
            for field in CONTAINER_SECURITY_FIELDS {
                if c.pointer(&format!("/securityContext/{field}")).is_some() {
                    out.push(format!(
                        "{here}.securityContext.{field}: not enforced in local mode"
                    ));
                }
            }
            if c.pointer("/securityContext/capabilities/drop").is_some() {
                out.push(format!(
                    "{here}.securityContext.capabilities.drop: not enforced in local mode (a container runs unprivileged unless it asks for root)"
                ));
            }
            if c.pointer("/resources/requests").is_some() {
                out.push(format!(
                    "{here}.resources.requests: not enforced in local mode (one node, no scheduler; limits.memory and limits.cpu are)"
                ));
            }
            let limits = c.pointer("/resources/limits").and_then(Value::as_object);
            for name in limits.into_iter().flatten().map(|(k, _)| k) {
                if name != "memory" && name != "cpu" {
                    out.push(format!(
                        "{here}.resources.limits.{name}: not enforced in local mode (memory and cpu are)"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_read_past_are_named() {
        let cases = [
            (
                "Job",
                json!({"spec": {"completions": 2, "template": {"spec": {}}}}),
                vec![],
            ),
            (
                "Job",
                json!({"spec": {"ttlSecondsAfterFinished": 60, "completionMode": "Indexed", "template": {"spec": {}}}}),
                vec![
                    "spec.ttlSecondsAfterFinished: not enforced in local mode",
                    "spec.completionMode: not enforced in local mode",
                ],
            ),
            (
                "Pod",
                json!({"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "db", "items": []}}]}}),
                vec![
                    "spec.volumes[1].secret.items: not enforced in local mode (every key is a file of its own name)",
                ],
            ),
            (
                "Deployment",
                json!({"spec": {"template": {"spec": {"volumes": [{"name": "c", "configMap": {"name": "x", "defaultMode": 256}}]}}}}),
                vec![
                    "spec.template.spec.volumes[0].configMap.defaultMode: not enforced in local mode (every key is a file of its own name)",
                ],
            ),
            (
                "Secret",
                json!({"immutable": true}),
                vec!["immutable: not enforced in local mode"],
            ),
            ("Service", json!({"spec": {}}), vec![]),
            (
                "Pod",
                json!({"spec": {"hostNetwork": false, "hostIPC": true, "securityContext": {"runAsUser": 7, "fsGroup": 2},
                    "containers": [{"name": "a",
                        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                        "resources": {"limits": {"memory": "64Mi", "cpu": 1, "ephemeral-storage": "1Gi"}, "requests": {"cpu": "100m"}}}]}}),
                vec![
                    "spec.hostIPC: not enforced in local mode",
                    "spec.securityContext.fsGroup: not enforced in local mode",
                    "spec.containers[0].securityContext.allowPrivilegeEscalation: not enforced in local mode",
                    "spec.containers[0].securityContext.capabilities.drop: not enforced in local mode (a container runs unprivileged unless it asks for root)",
                    "spec.containers[0].resources.requests: not enforced in local mode (one node, no scheduler; limits.memory and limits.cpu are)",
                    "spec.containers[0].resources.limits.ephemeral-storage: not enforced in local mode (memory and cpu are)",
                ],
            ),
        ];
        for (kind, value, want) in cases {
            assert_eq!(warnings(kind, &value), want, "{kind} {value}");
        }
    }
}
