//! Whether a pod gets a sidecar (DESIGN sections 3 and 7; OSM's rules).

use k8s_openapi::api::core::v1::{Namespace, Pod};

pub use osm_api::compat::{IGNORE, MONITORED_BY, PROXY_CONTAINER, SIDECAR_INJECTION};

/// What to do with a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Inject,
    /// Left as it is, and why.
    Skip(String),
}

/// Input the webhook denies, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    #[error(
        "annotation {annotation} on {on} is {value:?}: use enabled/yes/true or disabled/no/false"
    )]
    InjectionAnnotation {
        annotation: &'static str,
        on: String,
        value: String,
    },
    #[error("annotation {annotation}: {message}")]
    Exclusion {
        annotation: &'static str,
        message: String,
    },
    #[error(
        "annotation openservicemesh.io/access-log is {0:?}: use off, json or text (or remove it for the mesh-wide setting)"
    )]
    AccessLogAnnotation(String),
}

fn injection_setting(value: &str, on: String) -> Result<bool, InjectError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "enabled" | "yes" | "true" => Ok(true),
        "disabled" | "no" | "false" => Ok(false),
        _ => Err(InjectError::InjectionAnnotation {
            annotation: SIDECAR_INJECTION,
            on,
            value: value.to_string(),
        }),
    }
}

/// Decides for `pod` in `namespace` of mesh `mesh_name` whose control
/// plane runs in `osm_namespace`.
pub fn decide(
    pod: &Pod,
    namespace: &Namespace,
    mesh_name: &str,
    osm_namespace: &str,
) -> Result<Decision, InjectError> {
    let ns = namespace.metadata.name.as_deref().unwrap_or("");
    let skip = |why: String| Ok(Decision::Skip(why));
    if ["kube-system", "kube-public", osm_namespace].contains(&ns) {
        return skip(format!("namespace {ns} is never injected"));
    }
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    if labels.get(MONITORED_BY).map(String::as_str) != Some(mesh_name) {
        return skip(format!(
            "namespace {ns} is not monitored by mesh {mesh_name}"
        ));
    }
    if labels.contains_key(IGNORE) {
        return skip(format!("namespace {ns} is labelled {IGNORE}"));
    }
    if labels.get("name").map(String::as_str) == Some(osm_namespace)
        || labels.contains_key("control-plane")
    {
        return skip(format!("namespace {ns} belongs to the control plane"));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.host_network == Some(true) {
        return skip("the pod uses the host network".into());
    }
    if spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == PROXY_CONTAINER)
    {
        return skip("the pod already has a proxy".into());
    }
    let pod_name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone())
        .unwrap_or_default();
    let annotation = |a: &Option<std::collections::BTreeMap<String, String>>| {
        a.as_ref().and_then(|a| a.get(SIDECAR_INJECTION)).cloned()
    };
    // The pod's annotation wins over the namespace's.
    let enabled = match (
        annotation(&pod.metadata.annotations),
        annotation(&namespace.metadata.annotations),
    ) {
        (Some(v), _) => injection_setting(&v, format!("pod {ns}/{pod_name}"))?,
        (None, Some(v)) => injection_setting(&v, format!("namespace {ns}"))?,
        (None, None) => true,
    };
    if !enabled {
        return skip(format!("{SIDECAR_INJECTION} is disabled"));
    }
    Ok(Decision::Inject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(labels: serde_json::Value, annotations: serde_json::Value) -> Namespace {
        serde_json::from_value(
            json!({"metadata": {"name": "shop", "labels": labels, "annotations": annotations}}),
        )
        .unwrap()
    }

    fn pod(annotations: serde_json::Value, host_network: bool, containers: &[&str]) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "annotations": annotations},
            "spec": {"hostNetwork": host_network, "containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    #[test]
    fn the_injection_table() {
        let monitored = ns(json!({MONITORED_BY: "osm"}), json!({}));
        let plain = pod(json!({}), false, &["app"]);
        let d = |p: &Pod, n: &Namespace| decide(p, n, "osm", "osm-system");
        assert_eq!(d(&plain, &monitored), Ok(Decision::Inject));
        // Namespace rules.
        assert!(matches!(
            d(&plain, &ns(json!({}), json!({}))),
            Ok(Decision::Skip(_))
        ));
        assert!(matches!(
            d(&plain, &ns(json!({MONITORED_BY: "other"}), json!({}))),
            Ok(Decision::Skip(_))
        ));
        assert!(matches!(
            d(
                &plain,
                &ns(json!({MONITORED_BY: "osm", IGNORE: "true"}), json!({}))
            ),
            Ok(Decision::Skip(_))
        ));
        assert!(matches!(
            d(
                &plain,
                &ns(
                    json!({MONITORED_BY: "osm", "control-plane": "x"}),
                    json!({})
                )
            ),
            Ok(Decision::Skip(_))
        ));
        for system in ["kube-system", "kube-public", "osm-system"] {
            let n: Namespace = serde_json::from_value(
                json!({"metadata": {"name": system, "labels": {MONITORED_BY: "osm"}}}),
            )
            .unwrap();
            assert_eq!(
                d(&plain, &n),
                Ok(Decision::Skip(format!(
                    "namespace {system} is never injected"
                )))
            );
        }
        // Pod rules.
        assert!(matches!(
            d(&pod(json!({}), true, &["app"]), &monitored),
            Ok(Decision::Skip(_))
        ));
        assert_eq!(
            d(&pod(json!({}), false, &["app", "osm-proxy"]), &monitored),
            Ok(Decision::Skip("the pod already has a proxy".into()))
        );
        for off in ["disabled", "no", "false", "False"] {
            assert!(
                matches!(
                    d(
                        &pod(json!({SIDECAR_INJECTION: off}), false, &["app"]),
                        &monitored
                    ),
                    Ok(Decision::Skip(_))
                ),
                "{off}"
            );
        }
        // The pod's annotation overrides the namespace's.
        let ns_off = ns(
            json!({MONITORED_BY: "osm"}),
            json!({SIDECAR_INJECTION: "disabled"}),
        );
        assert!(matches!(d(&plain, &ns_off), Ok(Decision::Skip(_))));
        assert_eq!(
            d(
                &pod(json!({SIDECAR_INJECTION: "enabled"}), false, &["app"]),
                &ns_off
            ),
            Ok(Decision::Inject)
        );
        // Anything else is an error that names the value.
        let err = d(
            &pod(json!({SIDECAR_INJECTION: "maybe"}), false, &["app"]),
            &monitored,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation openservicemesh.io/sidecar-injection on pod shop/web-0 is \"maybe\": use enabled/yes/true or disabled/no/false"
        );
        assert!(
            d(
                &plain,
                &ns(
                    json!({MONITORED_BY: "osm"}),
                    json!({SIDECAR_INJECTION: "on"})
                )
            )
            .is_err()
        );
    }
}
