use serde_json::{Value, json};

use super::*;

fn settings() -> InjectorSettings {
    InjectorSettings {
        mesh_name: "osm".into(),
        osm_namespace: "osm-system".into(),
        proxy_image: "osm-proxy:test".into(),
        init_image: "osm-init:test".into(),
        controller: "osm-controller.osm-system.svc:15128".into(),
        trust_bundle_pem: "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n".into(),
        trust_domain: "cluster.local".into(),
    }
}

fn namespace(annotations: Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {
        "name": "bookstore",
        "labels": {"openservicemesh.io/monitored-by": "osm"},
        "annotations": annotations,
    }}))
    .unwrap()
}

fn pod_json(annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "bookstore-v1-5d7c9-abcde", "namespace": "bookstore", "annotations": annotations,
            // As a Deployment's ReplicaSet labels its pods.
            "labels": {"pod-template-hash": "5d7c9"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "bookstore-v1-5d7c9", "uid": "u", "controller": true}],
        },
        "spec": {
            "serviceAccountName": "bookstore",
            "containers": [{
                "name": "bookstore", "image": "bookstore",
                "ports": [{"name": "http", "containerPort": 14001}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                "readinessProbe": {"tcpSocket": {"port": 14001}},
            }],
        },
    })
}

/// Mutates and applies the patch the way the API server does.
fn meshed(pod: Value, ns: &Namespace, mesh: &MeshConfigSpec) -> Option<Value> {
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let patch = mutate(&typed, ns, mesh, &settings()).unwrap()?;
    let mut doc = pod;
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(patch)).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    Some(doc)
}

fn env(container: &Value, name: &str) -> Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_meshed_pod_gets_init_proxy_token_and_probes() {
    let mut mesh = MeshConfigSpec::default();
    mesh.traffic.outbound_port_exclusion_list = vec![6379];
    mesh.sidecar.resources = json!({"limits": {"memory": "64Mi"}});
    let pod = meshed(
        pod_json(json!({"openservicemesh.io/outbound-port-exclusion-list": "5432, 3306"})),
        &namespace(json!({})),
        &mesh,
    )
    .expect("injected");
    let inits = pod["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    let init = &inits[0];
    assert_eq!(init["name"], "osm-init");
    assert_eq!(init["image"], "osm-init:test", "the injector's default");
    assert_eq!(
        init["args"],
        json!(["--exclude-outbound-ports", "6379,5432,3306"])
    );
    assert_eq!(
        init["securityContext"]["capabilities"]["add"],
        json!(["NET_ADMIN"])
    );

    let proxy = &inits[1];
    assert_eq!(proxy["name"], "osm-proxy");
    assert_eq!(proxy["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(proxy["securityContext"]["runAsUser"], 1500);
    assert_eq!(proxy["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(proxy["resources"], json!({"limits": {"memory": "64Mi"}}));
    assert_eq!(
        env(proxy, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env(proxy, "SERVICE_ACCOUNT")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.serviceAccountName"
    );
    assert_eq!(
        env(proxy, "OSM_CONTROLLER")["value"],
        "osm-controller.osm-system.svc:15128"
    );
    assert!(
        env(proxy, "OSM_CONTROLLER_CA")["value"]
            .as_str()
            .unwrap()
            .contains("ROOT")
    );
    assert_eq!(env(proxy, "OSM_TRUST_DOMAIN")["value"], "cluster.local");
    assert_eq!(env(proxy, "OSM_WORKLOAD_KIND")["value"], "Deployment");
    // The declared ports reach the app on loopback; others go to the pod IP.
    assert_eq!(env(proxy, "OSM_APP_PORTS")["value"], "14001");
    assert_eq!(env(proxy, "OSM_WORKLOAD_NAME")["value"], "bookstore-v1");
    let probes: Value =
        serde_json::from_str(env(proxy, "OSM_PROXY_PROBES")["value"].as_str().unwrap()).unwrap();
    assert_eq!(probes[0]["targetPort"], 14001);
    assert_eq!(probes[0]["targetPath"], "/healthz");
    let ports: Vec<i64> = proxy["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [15000, 15003, 15010, 15901, 15904]);
    assert_eq!(proxy["volumeMounts"][0]["mountPath"], TOKEN_DIR);

    let volume = &pod["spec"]["volumes"][0];
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "osm-controller"
    );

    let app = &pod["spec"]["containers"][0];
    assert_eq!(
        app["livenessProbe"]["httpGet"],
        json!({"path": "/osm-liveness-probe", "port": 15901})
    );
    assert_eq!(app["readinessProbe"]["httpGet"]["port"], 15904);
    assert!(app["readinessProbe"]["tcpSocket"].is_null());
    assert!(
        pod["metadata"]["annotations"]
            .get("prometheus.io/scrape")
            .is_none(),
        "metrics off"
    );
}

#[test]
fn existing_init_containers_and_volumes_are_kept_and_metrics_annotated() {
    let mut p = pod_json(Value::Null);
    p["metadata"].as_object_mut().unwrap().remove("annotations");
    p["spec"]["initContainers"] = json!([{"name": "migrate", "image": "m"}]);
    p["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    let pod = meshed(
        p,
        &namespace(json!({"openservicemesh.io/metrics": "enabled"})),
        &MeshConfigSpec::default(),
    )
    .unwrap();
    let names: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["migrate", "osm-init", "osm-proxy"]);
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["data", "osm-controller-token"]);
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        "15010"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/path"],
        "/stats/prometheus"
    );
}

#[test]
fn bad_annotations_are_denied_and_skipped_pods_untouched() {
    let typed: Pod = serde_json::from_value(pod_json(json!({
        "openservicemesh.io/inbound-port-exclusion-list": "80,http"
    })))
    .unwrap();
    let err = mutate(
        &typed,
        &namespace(json!({})),
        &MeshConfigSpec::default(),
        &settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "annotation openservicemesh.io/inbound-port-exclusion-list: \"http\" is not a port (1-65535)"
    );
    let typed: Pod = serde_json::from_value(pod_json(json!({
        "openservicemesh.io/outbound-ip-range-exclusion-list": "10.0.0.0/33"
    })))
    .unwrap();
    assert!(
        mutate(
            &typed,
            &namespace(json!({})),
            &MeshConfigSpec::default(),
            &settings()
        )
        .is_err()
    );

    let access_log = |value: &str| -> Pod {
        serde_json::from_value(pod_json(json!({"openservicemesh.io/access-log": value}))).unwrap()
    };
    let inject = |pod: &Pod| {
        mutate(
            pod,
            &namespace(json!({})),
            &MeshConfigSpec::default(),
            &settings(),
        )
    };
    assert_eq!(
        inject(&access_log("loud")).unwrap_err().to_string(),
        "annotation openservicemesh.io/access-log is \"loud\": use off, json or text (or remove it for the mesh-wide setting)"
    );
    for ok in ["off", "json", "text"] {
        assert!(inject(&access_log(ok)).unwrap().is_some(), "{ok}");
    }

    let disabled: Pod = serde_json::from_value(pod_json(json!({
        "openservicemesh.io/sidecar-injection": "disabled"
    })))
    .unwrap();
    assert_eq!(
        mutate(
            &disabled,
            &namespace(json!({})),
            &MeshConfigSpec::default(),
            &settings()
        ),
        Ok(None)
    );
}

#[test]
fn the_mesh_config_can_name_the_init_image() {
    let mut mesh = MeshConfigSpec::default();
    mesh.sidecar.init_container_image = "registry.local/osm-init:v2".into();
    let pod = meshed(pod_json(json!({})), &namespace(json!({})), &mesh).expect("injected");
    assert_eq!(
        pod["spec"]["initContainers"][0]["image"],
        "registry.local/osm-init:v2"
    );
}
