//! The kinds the chart renders, with what the API needs to address them
//! (plural, scope). A fixed table rather than discovery: the chart is
//! known, and an unexpected kind is a bug to report, not to guess at.

use kube::api::{ApiResource, GroupVersionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

pub const CHART_KINDS: &[KindInfo] = &[
    KindInfo {
        api_version: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
    },
    KindInfo {
        api_version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    KindInfo {
        api_version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
    },
    KindInfo {
        api_version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    KindInfo {
        api_version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    KindInfo {
        api_version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    KindInfo {
        api_version: "apps/v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
    KindInfo {
        api_version: "policy/v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
    },
    KindInfo {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
    },
    KindInfo {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        namespaced: false,
    },
    KindInfo {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        plural: "roles",
        namespaced: true,
    },
    KindInfo {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        namespaced: true,
    },
    KindInfo {
        api_version: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfiguration",
        plural: "mutatingwebhookconfigurations",
        namespaced: false,
    },
    KindInfo {
        api_version: "admissionregistration.k8s.io/v1",
        kind: "ValidatingWebhookConfiguration",
        plural: "validatingwebhookconfigurations",
        namespaced: false,
    },
    KindInfo {
        api_version: "apiregistration.k8s.io/v1",
        kind: "APIService",
        plural: "apiservices",
        namespaced: false,
    },
];

/// How to address objects of `api_version`/`kind`.
pub fn lookup(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let info = CHART_KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Some((
        ApiResource::from_gvk_with_plural(&gvk, info.plural),
        info.namespaced,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_the_chart_renders_is_known() {
        let manifests = crate::cluster::chart::render(
            &crate::cluster::chart::default_values().unwrap(),
            "osm-system",
        )
        .unwrap();
        use serde::Deserialize as _;
        for doc in serde_yaml_ng::Deserializer::from_str(&manifests) {
            let v = serde_json::Value::deserialize(doc).unwrap();
            let (api_version, kind) = (
                v["apiVersion"].as_str().unwrap(),
                v["kind"].as_str().unwrap(),
            );
            assert!(
                lookup(api_version, kind).is_some(),
                "{kind} {api_version} is not in CHART_KINDS"
            );
        }
        let (resource, namespaced) = lookup("apps/v1", "Deployment").unwrap();
        assert_eq!(
            (
                resource.group.as_str(),
                resource.plural.as_str(),
                namespaced
            ),
            ("apps", "deployments", true)
        );
    }
}
