use osm_controller::kubernetes::fake::FakeApi;

use super::*;
use osm_local::store::Key;

fn ns(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn typed(v: Value) -> Namespace {
    serde_json::from_value(v).unwrap()
}

#[test]
fn add_is_refused_for_ignored_foreign_and_control_plane_namespaces() {
    let ok = decide_add(&typed(ns("shop", json!({}))), "osm", "osm-system", false).unwrap();
    assert_eq!(
        ok,
        json!({"metadata": {"labels": {MONITORED_BY: "osm"}, "annotations": {INJECTION: "enabled"}}})
    );
    let err = decide_add(
        &typed(ns("kube-x", json!({IGNORE: "true"}))),
        "osm",
        "osm-system",
        false,
    )
    .unwrap_err();
    assert!(
        err.contains("is ignored by the mesh")
            && err.contains("kubectl label namespace kube-x openservicemesh.io/ignore-"),
        "{err}"
    );
    let err = decide_add(
        &typed(ns("shop", json!({MONITORED_BY: "blue"}))),
        "osm",
        "osm-system",
        false,
    )
    .unwrap_err();
    assert!(
        err.contains("already belongs to mesh [blue]") && err.contains("--mesh-name blue"),
        "{err}"
    );
    let err = decide_add(
        &typed(ns("osm-system", json!({}))),
        "osm",
        "osm-system",
        false,
    )
    .unwrap_err();
    assert!(err.contains("control plane"), "{err}");
    let disabled = decide_add(&typed(ns("shop", json!({}))), "osm", "osm-system", true).unwrap();
    assert_eq!(disabled["metadata"]["annotations"][INJECTION], "disabled");
}

#[tokio::test]
async fn add_patches_labels_with_our_field_manager_and_reports_each_namespace() {
    let fake = FakeApi::new();
    fake.put(ns("shop", json!({"team": "a"})));
    fake.put(ns("ignored", json!({IGNORE: "true"})));
    let mut out = Vec::new();
    let ok = add(
        fake.client(),
        &mut out,
        &["shop".into(), "ignored".into(), "missing".into()],
        "osm",
        "osm-system",
        false,
    )
    .await
    .unwrap();
    assert!(!ok);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "Namespace [shop] successfully added to mesh [osm]",
            "Namespace [ignored] is ignored by the mesh (label openservicemesh.io/ignore): remove the label first (kubectl label namespace ignored openservicemesh.io/ignore-)",
            "Namespace [missing] does not exist: create it first (kubectl create namespace missing)",
        ]
    );
    let patches = fake.patches();
    assert_eq!(
        patches.len(),
        1,
        "only the allowed namespace is patched: {patches:?}"
    );
    let (path, content_type, body) = &patches[0];
    assert!(
        path.starts_with("/api/v1/namespaces/shop?") && path.contains("fieldManager=osm"),
        "{path}"
    );
    assert_eq!(content_type, "application/merge-patch+json");
    assert_eq!(body["metadata"]["labels"][MONITORED_BY], "osm");
    let stored = fake.get("", "namespaces", "", "shop").unwrap();
    assert_eq!(
        stored["metadata"]["labels"]["team"], "a",
        "other labels are kept"
    );
    assert_eq!(stored["metadata"]["annotations"][INJECTION], "enabled");
}

#[tokio::test]
async fn list_remove_and_ignore_round_trip() {
    let fake = FakeApi::new();
    fake.put(ns("shop", json!({MONITORED_BY: "osm"})));
    fake.put(ns("bank", json!({MONITORED_BY: "blue"})));
    fake.put(ns("plain", json!({})));
    let mut out = Vec::new();
    list(fake.client(), &mut out, None).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "NAMESPACE   MESH   SIDECAR-INJECTION\nbank        blue   enabled\nshop        osm    enabled\n"
    );
    let mut out = Vec::new();
    list(fake.client(), &mut out, Some("osm")).await.unwrap();
    assert!(String::from_utf8(out).unwrap().contains("shop"));

    let mut out = Vec::new();
    assert!(
        !remove(fake.client(), &mut out, "bank", "osm")
            .await
            .unwrap()
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("belongs to mesh [blue], not [osm]")
    );
    let mut out = Vec::new();
    assert!(
        remove(fake.client(), &mut out, "shop", "osm")
            .await
            .unwrap()
    );
    let shop = fake.get("", "namespaces", "", "shop").unwrap();
    assert!(
        shop["metadata"]["labels"].get(MONITORED_BY).is_none(),
        "{shop}"
    );

    let mut out = Vec::new();
    assert!(
        ignore(fake.client(), &mut out, &["plain".into()])
            .await
            .unwrap()
    );
    let plain = fake.get("", "namespaces", "", "plain").unwrap();
    assert_eq!(plain["metadata"]["labels"][IGNORE], "true");
    let mut out = Vec::new();
    assert!(
        !add(
            fake.client(),
            &mut out,
            &["plain".into()],
            "osm",
            "osm-system",
            false
        )
        .await
        .unwrap()
    );
}

#[test]
fn namespace_verbs_change_the_stored_namespace() {
    let (_dir, target) = crate::cluster::local::fixture::local_mesh();
    let add = local_mode::NamespaceChange::Add {
        mesh: "osm",
        disable_injection: true,
    };
    assert_eq!(
        local_mode::change_namespace(&target, "plain", &add)
            .unwrap()
            .unwrap(),
        "Namespace [plain] successfully added to mesh [osm]"
    );
    let stored = target
        .store()
        .unwrap()
        .get(&Key::new("Namespace", "", "plain"))
        .unwrap()
        .unwrap();
    assert_eq!(stored["metadata"]["labels"][MONITORED_BY], "osm");
    assert_eq!(stored["metadata"]["annotations"][INJECTION], "disabled");
    let mut out = Vec::new();
    local_mode::list_namespaces(&target, &mut out, Some("osm")).unwrap();
    let table = String::from_utf8(out).unwrap();
    assert!(
        table.contains("\nplain           osm    disabled\n"),
        "{table}"
    );
    local_mode::change_namespace(
        &target,
        "plain",
        &local_mode::NamespaceChange::Remove { mesh: "osm" },
    )
    .unwrap()
    .unwrap();
    local_mode::change_namespace(&target, "plain", &local_mode::NamespaceChange::Ignore)
        .unwrap()
        .unwrap();
    let refused = local_mode::change_namespace(&target, "plain", &add)
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("is ignored by the mesh"), "{refused}");
    let missing = local_mode::change_namespace(&target, "nope", &add)
        .unwrap()
        .unwrap_err();
    assert!(missing.contains("does not exist"), "{missing}");
}
