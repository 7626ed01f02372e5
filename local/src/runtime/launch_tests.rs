use serde_json::json;

use super::*;

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
        "spec": spec,
    }))
    .unwrap()
}

/// A context with nothing but the pod and its volumes.
fn bare<'a>(pod: &'a Pod, volumes: &'a BTreeMap<String, PathBuf>) -> PodContext<'a> {
    PodContext {
        pod,
        netns: "n",
        pod_ip: Ipv4Addr::LOCALHOST,
        host_ip: Ipv4Addr::LOCALHOST,
        volumes,
        config_maps: &[],
        secrets: &[],
        bin_dir: Path::new("/b"),
        hidden: &[],
    }
}

#[test]
fn references_expand_like_kubernetes() {
    let vars = BTreeMap::from([("A".to_string(), "1".to_string())]);
    assert_eq!(expand("x$(A)y", &vars), "x1y");
    assert_eq!(expand("$(B)", &vars), "$(B)");
    assert_eq!(expand("$$(A)", &vars), "$(A)");
    assert_eq!(expand("cost $5", &vars), "cost $5");
    assert_eq!(expand("$(A", &vars), "$(A");
}

#[test]
fn a_container_runs_in_its_netns_as_its_user_with_its_env() {
    let pod = pod(json!({
        "serviceAccountName": "web",
        "securityContext": {"runAsUser": 1000},
        "containers": [{
            "name": "web", "image": "x", "command": ["web"], "args": ["--port=$(PORT)", "--token=/var/run/t/token"],
            "env": [
                {"name": "PORT", "value": "8080"},
                {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
            ],
            "volumeMounts": [{"name": "tok", "mountPath": "/var/run/t"}],
        }],
    }));
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg", "namespace": "shop"}, "data": {"color": "blue"}}))
    .unwrap();
    let volumes = BTreeMap::from([(
        "tok".to_string(),
        PathBuf::from("/state/pods/shop/web-1/volumes/tok"),
    )]);
    let ctx = PodContext {
        pod: &pod,
        netns: "osm.shop.web-1",
        pod_ip: "10.213.0.7".parse().unwrap(),
        host_ip: "10.213.0.1".parse().unwrap(),
        volumes: &volumes,
        config_maps: std::slice::from_ref(&cm),
        secrets: &[],
        bin_dir: Path::new("/opt/osm"),
        hidden: &[PathBuf::from("/state")],
    };
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let l = launch(container, &ctx).unwrap();
    assert_eq!(l.program, "setpriv");
    assert_eq!(
        l.args,
        [
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--",
            "web",
            "--port=8080",
            "--token=/var/run/t/token"
        ]
    );
    // Its volume where it asked, the pod's names, the mesh's
    // binaries; the state directory hidden.
    let mount = |source: &str, target: &str, read_only| Mount {
        source: source.into(),
        target: target.into(),
        read_only,
    };
    assert_eq!(
        l.sandbox,
        Sandbox {
            netns: "osm.shop.web-1".into(),
            hostname: "web-1".into(),
            mounts: vec![
                mount("/etc/netns/osm.shop.web-1/hosts", "/etc/hosts", true),
                mount("/opt/osm", BIN_MOUNT, true),
                mount("/state/pods/shop/web-1/volumes/tok", "/var/run/t", false),
            ],
            hidden: vec!["/state".into()],
            cwd: "/".into(),
            cgroups: vec![],
        }
    );
    let env: BTreeMap<_, _> = l.env.into_iter().collect();
    assert_eq!(env["ME"], "web-1");
    assert_eq!(env["IP"], "10.213.0.7");
    assert_eq!(env["SA"], "web");
    assert_eq!(env["APP"], "web");
    assert_eq!(env["COLOR"], "blue");
    assert!(env["PATH"].starts_with("/osm/bin:"));
    assert_eq!(l.uid, 1000);
}

#[test]
fn containers_run_unprivileged_unless_they_ask_for_root() {
    let cases = [
        (json!({"name": "a"}), json!(null), DEFAULT_UID),
        (json!({"name": "a"}), json!({"runAsUser": 7}), 7),
        (
            json!({"name": "a", "securityContext": {"runAsUser": 0}}),
            json!({"runAsUser": 7}),
            0,
        ),
        (
            json!({"name": "a", "securityContext": {"privileged": true}}),
            json!(null),
            0,
        ),
        (
            json!({"name": "a", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}),
            json!(null),
            0,
        ),
        (
            json!({"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"]}}}),
            json!(null),
            DEFAULT_UID,
        ),
    ];
    for (container, pod_ctx, uid) in cases {
        let p = pod(json!({"securityContext": pod_ctx, "containers": [container.clone()]}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_eq!(run_as(c, &p).0, uid, "{container} in {pod_ctx}");
    }
    // runAsNonRoot holds: a container that would run as root does not start.
    let p = pod(json!({"securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "a", "command": ["a"], "securityContext": {"runAsUser": 0}}]}));
    let volumes = BTreeMap::new();
    let err = launch(&p.spec.as_ref().unwrap().containers[0], &bare(&p, &volumes)).unwrap_err();
    assert!(err.contains("runAsNonRoot"), "{err}");
}

#[test]
fn configmap_and_secret_volumes_are_read_only_and_sub_paths_stay_inside() {
    let p = pod(json!({
        "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "data", "emptyDir": {}}],
        "containers": [{"name": "a", "command": ["a"], "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "data", "mountPath": "/data", "subPath": "x/y"},
            {"name": "data", "mountPath": "/ro", "readOnly": true},
        ]}],
    }));
    let volumes = BTreeMap::from([
        ("cfg".to_string(), PathBuf::from("/v/cfg")),
        ("data".to_string(), PathBuf::from("/v/data")),
    ]);
    let ctx = bare(&p, &volumes);
    let c = p.spec.as_ref().unwrap().containers[0].clone();
    let mounts = launch(&c, &ctx).unwrap().sandbox.mounts;
    let got: Vec<(&str, &str, bool)> = mounts[2..]
        .iter()
        .map(|m| {
            (
                m.source.to_str().unwrap(),
                m.target.to_str().unwrap(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/v/cfg", "/etc/cfg", true),
            ("/v/data/x/y", "/data", false),
            ("/v/data", "/ro", true)
        ]
    );
    for (sub, path) in [("../../etc", "/x"), ("/etc", "/x"), ("a", "relative")] {
        let mut bad = c.clone();
        bad.volume_mounts = Some(vec![
            serde_json::from_value(json!({"name": "data", "mountPath": path, "subPath": sub}))
                .unwrap(),
        ]);
        assert!(launch(&bad, &ctx).is_err(), "{sub} at {path}");
    }
}

#[test]
fn a_container_without_command_is_explained() {
    let pod = pod(json!({"containers": [{"name": "db", "image": "mysql:8"}]}));
    let volumes = BTreeMap::new();
    let ctx = bare(&pod, &volumes);
    let err = launch(&pod.spec.as_ref().unwrap().containers[0], &ctx).unwrap_err();
    assert!(
        err.contains("has no command") && err.contains("mysql:8"),
        "{err}"
    );
}
