//! The chart's CRDs (deploy/chart/osm/crds, and the optional Gateway API
//! routes in deploy/chart/osm/gateway-api) against the mesh itself: every
//! kind and version the policy compiler accepts is served, each CRD has
//! one storage version, printer columns and short names, and what a CRD
//! serves is something the loader understands. (The schemas themselves are
//! checked against Kubernetes' and exercised with the demo's resources by
//! deploy/check.py in CI.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn crds() -> Vec<CustomResourceDefinition> {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/chart/osm");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(chart.join("crds"))
        .unwrap()
        .chain(std::fs::read_dir(chart.join("gateway-api")).unwrap());
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let crd: CustomResourceDefinition =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push(crd);
    }
    out
}

/// (apiVersion, kind) served by the chart.
fn served() -> BTreeSet<(String, String)> {
    crds()
        .iter()
        .flat_map(|crd| {
            crd.spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| {
                    (
                        format!("{}/{}", crd.spec.group, v.name),
                        crd.spec.names.kind.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_version_the_mesh_accepts_is_served() {
    let served = served();
    let expected = [
        ("access.smi-spec.io/v1alpha3", "TrafficTarget"),
        ("access.smi-spec.io/v1alpha2", "TrafficTarget"),
        ("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup"),
        ("specs.smi-spec.io/v1alpha3", "HTTPRouteGroup"),
        ("specs.smi-spec.io/v1alpha2", "HTTPRouteGroup"),
        ("specs.smi-spec.io/v1alpha1", "HTTPRouteGroup"),
        ("specs.smi-spec.io/v1alpha4", "TCPRoute"),
        ("specs.smi-spec.io/v1alpha4", "UDPRoute"),
        ("split.smi-spec.io/v1alpha4", "TrafficSplit"),
        ("split.smi-spec.io/v1alpha3", "TrafficSplit"),
        ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
        ("split.smi-spec.io/v1alpha1", "TrafficSplit"),
        ("config.openservicemesh.io/v1alpha2", "MeshConfig"),
        ("config.openservicemesh.io/v1alpha1", "MeshConfig"),
        ("policy.openservicemesh.io/v1alpha1", "Egress"),
        ("policy.openservicemesh.io/v1alpha1", "IngressBackend"),
        ("policy.openservicemesh.io/v1alpha1", "Retry"),
        (
            "policy.openservicemesh.io/v1alpha1",
            "UpstreamTrafficSetting",
        ),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ];
    for (api_version, kind) in expected {
        assert!(
            served.contains(&(api_version.to_string(), kind.to_string())),
            "{kind} {api_version} is not served by the chart"
        );
    }
}

#[test]
fn the_loader_understands_everything_the_chart_serves() {
    for (api_version, kind) in served() {
        let object = serde_json::json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "probe", "namespace": "default"},
        });
        if let Err(e) = osm_api::load::parse_object(object) {
            assert!(
                !e.message.contains("not supported"),
                "{kind} {api_version} is served but the mesh does not read it: {}",
                e.message
            );
        }
    }
}

#[test]
fn each_crd_is_well_formed_for_kubectl() {
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap();
        let names = &crd.spec.names;
        assert_eq!(name, format!("{}.{}", names.plural, crd.spec.group));
        assert_eq!(crd.spec.scope, "Namespaced", "{name}");
        // The Gateway API's kinds have no short names upstream; ours
        // must not take one a later official CRD would not have.
        let gateway = crd.spec.group == "gateway.networking.k8s.io";
        assert!(
            gateway || names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{name}: no short name"
        );
        let storage: Vec<_> = crd.spec.versions.iter().filter(|v| v.storage).collect();
        assert_eq!(storage.len(), 1, "{name}: exactly one storage version");
        for v in &crd.spec.versions {
            assert!(
                v.schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .is_some(),
                "{name} {}: no schema",
                v.name
            );
            assert!(
                v.additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| !c.is_empty()),
                "{name} {}: no printer columns",
                v.name
            );
        }
    }
}
