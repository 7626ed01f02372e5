use super::*;

fn deploy(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// deploy/rendered/osm*.yaml are what Helm renders from the chart for each
/// value set of deploy/rendered/value-sets.yaml (CI checks that with Helm's
/// own SDK, parsing the `--set` assignments with Helm's parser): this
/// renderer, given the same assignments, must produce the same objects and
/// the same text.
#[test]
fn the_rendering_matches_helms_for_every_value_set() {
    let sets: std::collections::BTreeMap<String, Vec<String>> =
        serde_yaml_ng::from_str(&deploy("rendered/value-sets.yaml")).unwrap();
    assert!(sets.len() >= 3, "{sets:?}");
    for (name, assignments) in sets {
        let mut values = default_values().unwrap();
        for a in &assignments {
            crate::cluster::values::set(&mut values, a).unwrap();
        }
        let ours = render(&values, "osm-system").unwrap();
        let file = if name == "defaults" {
            "rendered/osm.yaml".to_string()
        } else {
            format!("rendered/osm-{name}.yaml")
        };
        let helm = deploy(&file);
        let (a, b) = (documents(&ours), documents(&helm));
        assert_eq!(a.len(), b.len(), "{name}");
        // `osm install` can apply every object of every value set.
        for doc in &a {
            let (api_version, kind) = (doc["apiVersion"].as_str(), doc["kind"].as_str());
            assert!(
                crate::cluster::kinds::lookup(api_version.unwrap(), kind.unwrap()).is_some(),
                "{name}: {kind:?} {api_version:?} is not in CHART_KINDS"
            );
        }
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                x, y,
                "{name}: {} {} differs",
                y["kind"], y["metadata"]["name"]
            );
        }
        if ours != helm {
            let line = ours
                .lines()
                .zip(helm.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            panic!(
                "{name}: same objects, different text at line {}:\nours: {:?}\nhelm: {:?}",
                line + 1,
                ours.lines().nth(line),
                helm.lines().nth(line)
            );
        }
    }
}

#[test]
fn values_change_what_is_rendered() {
    let mut values = default_values().unwrap();
    crate::cluster::values::set(&mut values, "osm.controller.replicas=2").unwrap();
    crate::cluster::values::set(&mut values, "osm.meshName=blue").unwrap();
    crate::cluster::values::set(&mut values, "grafana.dashboards=false").unwrap();
    let docs = documents(&render(&values, "mesh-blue").unwrap());
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    };
    assert!(find("PodDisruptionBudget", "osm-controller").is_some());
    assert!(find("PodDisruptionBudget", "osm-injector").is_none());
    assert!(find("MutatingWebhookConfiguration", "osm-webhook-blue").is_some());
    assert!(find("ConfigMap", "osm-grafana-dashboards").is_none());
    let controller = find("Deployment", "osm-controller").unwrap();
    assert_eq!(controller["metadata"]["namespace"], "mesh-blue");
    assert_eq!(controller["spec"]["replicas"], 2);
    let args = controller["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--mesh-name=blue"),
        "{args}"
    );
}

#[test]
fn a_wrong_value_type_is_an_error_naming_the_template() {
    let mut values = default_values().unwrap();
    values["osm"]["controller"] = serde_json::json!("not a map");
    let err = render(&values, "osm-system").unwrap_err();
    assert!(err.starts_with("templates/controller.yaml"), "{err}");
}

/// The chart refuses a certificate provider it cannot configure, naming
/// the value (Helm's `fail`, and the same in the CLI's renderer).
#[test]
fn an_unknown_certificate_provider_or_a_vault_without_a_host_is_refused() {
    let render = |set: &[&str]| {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        manifests("osm", "osm-system", &set).map_err(|e| format!("{e:#}"))
    };
    let unknown = render(&["osm.certificateProvider.kind=acme"]).unwrap_err();
    assert!(
        unknown.contains("osm.certificateProvider.kind must be tresor, vault or cert-manager"),
        "{unknown}"
    );
    let hostless = render(&["osm.certificateProvider.kind=vault"]).unwrap_err();
    assert!(hostless.contains("needs osm.vault.host"), "{hostless}");
    let vault = render(&[
        "osm.certificateProvider.kind=vault",
        "osm.vault.host=vault.vault.svc",
    ])
    .unwrap();
    assert!(vault.contains("--vault-addr=http://vault.vault.svc:8200"));
}
