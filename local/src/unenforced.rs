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
    if kind == "Secret" && value.get("immutable").is_some() {
        out.push("immutable: not enforced in local mode".into());
    }
    out
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
        ];
        for (kind, value, want) in cases {
            assert_eq!(warnings(kind, &value), want, "{kind} {value}");
        }
    }
}
