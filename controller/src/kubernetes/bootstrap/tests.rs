use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;
use crate::{ca::LocalCa, kubernetes::fake::FakeApi};

const NS: &str = "osm-system";

fn webhook(kind: &str, name: &str, hook: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{
            "name": hook, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"service": {"name": "osm-injector", "namespace": NS, "path": "/x", "port": 9090}},
        }],
    })
}

fn cluster(preset: &str) -> FakeApi {
    let fake = FakeApi::new();
    fake.put(webhook(
        "MutatingWebhookConfiguration",
        "osm-webhook-osm",
        "osm-inject.k8s.io",
    ));
    fake.put(webhook(
        "ValidatingWebhookConfiguration",
        "osm-validator-mesh-osm",
        "osm-validator.k8s.io",
    ));
    fake.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PRESET_CONFIG_MAP, "namespace": NS},
        "data": {PRESET_KEY: preset}}));
    fake.put(
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": TRAFFIC_METRICS_API_SERVICE},
        "spec": {"group": "metrics.smi-spec.io", "version": "v1alpha1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"name": "osm-controller", "namespace": NS, "port": 9094}}}),
    );
    fake
}

fn bootstrap(fake: &FakeApi, ca: &Arc<LocalCa>) -> Bootstrap {
    Bootstrap {
        client: fake.client(),
        namespace: NS.into(),
        mesh_name: "osm".into(),
        ca: Arc::new(crate::ca::authority::Authority::fixed(ca.clone())),
    }
}

fn b64(text: &str) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(text))
}

/// The MeshConfig the bootstrap created, as stored.
fn stored_mesh_config(fake: &FakeApi) -> Value {
    fake.get(
        "config.openservicemesh.io",
        "meshconfigs",
        NS,
        "osm-mesh-config",
    )
    .unwrap()
}

fn writes(fake: &FakeApi) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.starts_with("POST") || r.starts_with("PUT"))
        .collect()
}

#[tokio::test]
async fn a_new_cluster_gets_the_injector_certificate_ca_bundles_and_the_mesh_config() {
    let ca = Arc::new(LocalCa::generate(Duration::from_secs(3600 * 24 * 3650)).unwrap());
    let fake = cluster(
        r#"{"traffic": {"enablePermissiveTrafficPolicyMode": false, "enableEgress": true}}"#,
    );
    let report = bootstrap(&fake, &ca).run_once().await.unwrap();
    assert!(report.injector_secret_written);
    assert_eq!(report.webhooks_patched.len(), 3, "{report:?}");
    assert!(report.webhooks_missing.is_empty());
    assert!(report.mesh_config_created);

    // The injector's certificate names its Service and chains to the CA.
    let secret = fake.get("", "secrets", NS, INJECTOR_SECRET).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["data"]["ca.crt"], b64(ca.root_pem()));
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let leaf_pem = decode(&secret["data"]["tls.crt"]);
    let (_, leaf) = x509_parser::pem::parse_x509_pem(&leaf_pem).unwrap();
    let leaf = leaf.parse_x509().unwrap();
    let (_, root) = x509_parser::pem::parse_x509_pem(ca.root_pem().as_bytes()).unwrap();
    let root = root.parse_x509().unwrap();
    leaf.verify_signature(Some(root.public_key())).unwrap();
    let sans = format!(
        "{:?}",
        leaf.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(sans.contains("osm-injector.osm-system.svc"), "{sans}");

    // Both webhooks carry the CA; the rest of each is kept.
    for (plural, name) in [
        ("mutatingwebhookconfigurations", "osm-webhook-osm"),
        ("validatingwebhookconfigurations", "osm-validator-mesh-osm"),
    ] {
        let config = fake
            .get("admissionregistration.k8s.io", plural, "", name)
            .unwrap();
        assert_eq!(
            config["webhooks"][0]["clientConfig"]["caBundle"],
            b64(ca.root_pem()),
            "{name}"
        );
        assert_eq!(
            config["webhooks"][0]["clientConfig"]["service"]["path"],
            "/x"
        );
    }
    // The APIService too, its service kept.
    let api = fake
        .get(
            "apiregistration.k8s.io",
            "apiservices",
            "",
            TRAFFIC_METRICS_API_SERVICE,
        )
        .unwrap();
    assert_eq!(api["spec"]["caBundle"], b64(ca.root_pem()));
    assert_eq!(api["spec"]["service"]["port"], 9094);
    let mesh = stored_mesh_config(&fake);
    assert_eq!(
        mesh["spec"]["traffic"]["enablePermissiveTrafficPolicyMode"],
        false
    );

    // A second pass has nothing to do.
    let before = writes(&fake).len();
    let again = bootstrap(&fake, &ca).run_once().await.unwrap();
    assert_eq!(again, Report::default());
    assert_eq!(writes(&fake).len(), before, "{:?}", writes(&fake));
}

#[tokio::test]
async fn an_edited_mesh_config_is_kept_and_a_reset_ca_bundle_is_restored() {
    let ca = Arc::new(LocalCa::generate(Duration::from_secs(3600 * 24 * 3650)).unwrap());
    let fake = cluster(r#"{"traffic": {"enableEgress": true}}"#);
    let b = bootstrap(&fake, &ca);
    b.run_once().await.unwrap();
    // The operator turns egress off; a helm upgrade resets a caBundle.
    let mut mesh = stored_mesh_config(&fake);
    mesh["spec"]["traffic"]["enableEgress"] = json!(false);
    fake.put(mesh);
    fake.put(webhook(
        "MutatingWebhookConfiguration",
        "osm-webhook-osm",
        "osm-inject.k8s.io",
    ));
    let report = b.run_once().await.unwrap();
    assert_eq!(
        report.webhooks_patched,
        ["MutatingWebhookConfiguration osm-webhook-osm"]
    );
    assert!(!report.mesh_config_created && !report.injector_secret_written);
    let mesh = stored_mesh_config(&fake);
    assert_eq!(mesh["spec"]["traffic"]["enableEgress"], false);

    // A new CA (the Secret was replaced) gets a new injector certificate.
    let other = Arc::new(LocalCa::generate(Duration::from_secs(3600 * 24 * 3650)).unwrap());
    let report = bootstrap(&fake, &other).run_once().await.unwrap();
    assert!(report.injector_secret_written);
    assert_eq!(report.webhooks_patched.len(), 3);
    let secret = fake.get("", "secrets", NS, INJECTOR_SECRET).unwrap();
    assert_eq!(secret["data"]["ca.crt"], b64(other.root_pem()));
}

#[tokio::test]
async fn a_bad_preset_is_refused_with_its_reason_and_missing_webhooks_are_reported() {
    let ca = Arc::new(LocalCa::generate(Duration::from_secs(3600 * 24 * 3650)).unwrap());
    let fake = FakeApi::new();
    fake.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PRESET_CONFIG_MAP, "namespace": NS},
        "data": {PRESET_KEY: r#"{"traffic": {"enableEgres": true}}"#}}));
    let err = bootstrap(&fake, &ca)
        .run_once()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("preset-mesh-config") && err.contains("enableEgres"),
        "{err}"
    );
    assert!(
        fake.get(
            "config.openservicemesh.io",
            "meshconfigs",
            NS,
            "osm-mesh-config"
        )
        .is_none()
    );

    let fake = FakeApi::new();
    let report = bootstrap(&fake, &ca).run_once().await.unwrap();
    assert_eq!(
        report.webhooks_missing,
        [
            "MutatingWebhookConfiguration osm-webhook-osm",
            "ValidatingWebhookConfiguration osm-validator-mesh-osm",
            "APIService v1alpha1.metrics.smi-spec.io"
        ]
    );
    assert!(!report.mesh_config_created, "no preset, no MeshConfig");
}

#[test]
fn a_retired_root_stays_in_the_webhooks_bundle_for_a_grace_period() {
    let start = std::time::Instant::now();
    let mut retired = Retired::default();
    let (old, new) = ("OLD-ROOT\n", "NEW-ROOT\n");
    let pem =
        |body: &str| format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n");
    assert!(retired.follow(&pem(old), start).is_empty());
    assert!(retired.follow(&(pem(old) + &pem(new)), start).is_empty());
    // The old root leaves the bundle: it lingers, then goes.
    let later = start + Duration::from_secs(10);
    assert_eq!(retired.follow(&pem(new), later), [pem(old)]);
    assert_eq!(
        retired.follow(&pem(new), later + RETIRED_GRACE - Duration::from_secs(1)),
        [pem(old)]
    );
    assert!(retired.follow(&pem(new), later + RETIRED_GRACE).is_empty());
}
