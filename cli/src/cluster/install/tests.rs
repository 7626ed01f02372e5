use osm_controller::kubernetes::fake::FakeApi;
use serde_json::json;

use super::*;
use crate::cluster::chart;

fn manifests() -> String {
    chart::render(&chart::default_values().unwrap(), "osm-system").unwrap()
}

fn mark_ready(fake: &FakeApi, name: &str) {
    let mut d = fake.get("apps", "deployments", "osm-system", name).unwrap();
    d["status"] = json!({"readyReplicas": d["spec"]["replicas"].clone()});
    fake.put(d);
}

#[tokio::test]
async fn install_applies_every_object_server_side_and_waits_for_the_control_plane() {
    let fake = FakeApi::new();
    let client = fake.client();
    let mut out = Vec::new();
    apply(&client, &mut out, &manifests(), "osm-system")
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("namespace/osm-system applied\n"), "{text}");
    assert!(text.contains("customresourcedefinition/traffictargets.access.smi-spec.io applied"));
    assert!(text.contains("mutatingwebhookconfiguration/osm-webhook-osm applied"));

    // Server-side apply, our field manager, forced (the chart owns its fields).
    let patches = fake.patches();
    assert_eq!(patches.len(), documents(&manifests()).unwrap().len() + 1);
    for (path, content_type, _) in &patches {
        assert_eq!(content_type, "application/apply-patch+yaml", "{path}");
        assert!(
            path.contains("fieldManager=osm") && path.contains("force=true"),
            "{path}"
        );
    }
    assert!(
        fake.get(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "meshconfigs.config.openservicemesh.io"
        )
        .is_some()
    );
    assert!(
        fake.get(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "osm-controller-osm"
        )
        .is_some()
    );
    assert_eq!(installed(&client, "osm").await.unwrap(), ["osm-system"]);
    assert!(installed(&client, "blue").await.unwrap().is_empty());

    // Readiness: progress is printed until both Deployments are ready.
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let r = wait_ready(
                &client,
                &mut out,
                "osm-system",
                Duration::from_secs(20),
                Duration::from_millis(20),
            )
            .await;
            (r, String::from_utf8(out).unwrap())
        })
    };
    // The controller becomes ready first, then the injector.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !fake
        .requests()
        .iter()
        .any(|r| r.starts_with("GET") && r.contains("/deployments/osm-injector"))
    {
        assert!(tokio::time::Instant::now() < deadline, "never polled");
        tokio::task::yield_now().await;
    }
    mark_ready(&fake, "osm-controller");
    mark_ready(&fake, "osm-injector");
    let (result, progress) = waiter.await.unwrap();
    result.unwrap();
    assert!(
        progress.starts_with("ready: osm-controller 0/1, osm-injector "),
        "{progress}"
    );
    assert!(
        progress.ends_with("ready: osm-controller 1/1, osm-injector 1/1\n"),
        "{progress}"
    );

    let mut out = Vec::new();
    list(&client, &mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "MESH NAME   NAMESPACE    VERSION   CONTROLLER READY\nosm         osm-system   0.1.0     1/1\n"
    );
}

#[tokio::test]
async fn a_control_plane_that_never_gets_ready_is_named_with_what_to_look_at() {
    let fake = FakeApi::new();
    let client = fake.client();
    apply(&client, &mut Vec::new(), &manifests(), "osm-system")
        .await
        .unwrap();
    mark_ready(&fake, "osm-controller");
    let mut out = Vec::new();
    let err = wait_ready(
        &client,
        &mut out,
        "osm-system",
        Duration::from_millis(100),
        Duration::from_millis(20),
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("osm-injector not ready after 0s"), "{err}");
    assert!(
        err.contains("kubectl -n osm-system describe deployment osm-injector"),
        "{err}"
    );
}

#[tokio::test]
async fn uninstall_keeps_crds_and_the_ca_unless_asked() {
    let fake = FakeApi::new();
    let client = fake.client();
    apply(&client, &mut Vec::new(), &manifests(), "osm-system")
        .await
        .unwrap();
    fake.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "osm-ca-bundle", "namespace": "osm-system"}}));
    let mut out = Vec::new();
    uninstall(&client, &mut out, &manifests(), "osm-system", false, false)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("deployment/osm-controller deleted"), "{text}");
    assert!(!text.contains("customresourcedefinition"), "{text}");
    assert!(
        fake.get("apps", "deployments", "osm-system", "osm-controller")
            .is_none()
    );
    assert!(
        fake.get(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "traffictargets.access.smi-spec.io"
        )
        .is_some()
    );
    assert!(
        fake.get("", "secrets", "osm-system", "osm-ca-bundle")
            .is_some()
    );
    assert!(fake.get("", "namespaces", "", "osm-system").is_some());

    let mut out = Vec::new();
    uninstall(&client, &mut out, &manifests(), "osm-system", true, true)
        .await
        .unwrap();
    assert!(
        fake.get(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "traffictargets.access.smi-spec.io"
        )
        .is_none()
    );
    assert!(
        fake.get("", "secrets", "osm-system", "osm-ca-bundle")
            .is_none()
    );
    assert!(fake.get("", "namespaces", "", "osm-system").is_none());
}

#[tokio::test]
async fn upgrade_needs_an_installed_mesh_and_applies_the_new_values() {
    let fake = FakeApi::new();
    let client = fake.client();
    let err = upgrade(
        &client,
        &mut Vec::new(),
        &manifests(),
        "osm",
        "osm-system",
        Duration::from_secs(1),
        Duration::from_millis(10),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("no mesh [osm] in namespace [osm-system] to upgrade"),
        "{err}"
    );

    apply(&client, &mut Vec::new(), &manifests(), "osm-system")
        .await
        .unwrap();
    mark_ready(&fake, "osm-controller");
    mark_ready(&fake, "osm-injector");
    let mut values = chart::default_values().unwrap();
    crate::cluster::values::set(&mut values, "osm.controller.replicas=2").unwrap();
    let two = chart::render(&values, "osm-system").unwrap();
    let upgrading = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let r = upgrade(
                &client,
                &mut out,
                &two,
                "osm",
                "osm-system",
                Duration::from_secs(20),
                Duration::from_millis(20),
            )
            .await;
            (r, String::from_utf8(out).unwrap())
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake
        .get(
            "policy",
            "poddisruptionbudgets",
            "osm-system",
            "osm-controller",
        )
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upgrade never applied the PDB"
        );
        tokio::task::yield_now().await;
    }
    mark_ready(&fake, "osm-controller");
    let (result, out) = upgrading.await.unwrap();
    result.unwrap();
    assert!(
        out.contains("poddisruptionbudget/osm-controller applied"),
        "{out}"
    );
    let d = fake
        .get("apps", "deployments", "osm-system", "osm-controller")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(
        out.ends_with("ready: osm-controller 2/2, osm-injector 1/1\n"),
        "{out}"
    );
}
