//! The mesh for real on this machine: `osm local` with pods as network
//! namespaces, iptables interception by osm-init, sidecars injected by the
//! injector and configured by the controller, the bookstore demo's apps
//! and Redis. Runs as root (CI does); without root it fails.
//!
//! One test walks every scenario in turn on one local mesh, since bringing
//! a mesh up takes seconds; each step waits on what the apps count.

use std::time::Duration;

use osm_tests::local::{LocalMesh, entries_named, poll_until, ready, wait_for};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

#[path = "local_mode/adoption.rs"]
mod adoption;
#[path = "local_mode/isolation.rs"]
mod isolation;

fn n(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

struct Demo<'a>(&'a LocalMesh);

impl Demo<'_> {
    fn buyer(&self) -> Value {
        wait_for("bookbuyer's counters", PATIENCE, || {
            self.0.counters("bookbuyer", "bookbuyer", 8080)
        })
    }
    fn thief(&self) -> Value {
        wait_for("bookthief's counters", PATIENCE, || {
            self.0.counters("bookthief", "bookthief", 8080)
        })
    }
    fn sold(&self, version: &str) -> u64 {
        let c = wait_for("a bookstore's counters", PATIENCE, || {
            self.0
                .counters("bookstore", &format!("bookstore-{version}"), 14001)
        });
        n(&c, "/sold")
    }
    fn warehouse(&self) -> Value {
        wait_for("bookwarehouse's counters", PATIENCE, || {
            self.0.counters("bookwarehouse", "bookwarehouse", 14001)
        })
    }
    /// Waits until bookbuyer has bought `more` books from now on.
    fn buyer_buys(&self, more: u64) {
        let start = n(&self.buyer(), "/ok");
        wait_for(
            &format!("bookbuyer to buy {more} more books"),
            PATIENCE,
            || (n(&self.buyer(), "/ok") >= start + more).then_some(()),
        );
    }
    /// Waits until bookthief has been refused `more` times from now on;
    /// returns its purchases then.
    fn thief_refused(&self, more: u64, within: Duration) -> u64 {
        let start = n(&self.thief(), "/byStatus/403");
        wait_for(
            &format!("bookthief to get {more} more 403s"),
            within,
            || {
                let t = self.thief();
                (n(&t, "/byStatus/403") >= start + more).then(|| n(&t, "/ok"))
            },
        )
    }
}

fn mesh_config(permissive: bool, egress: bool) -> String {
    format!(
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
         metadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
         spec: {{traffic: {{enablePermissiveTrafficPolicyMode: {permissive}, enableEgress: {egress}}}}}\n"
    )
}

const REDIS_POLICY: &str = "
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: redis, namespace: bookwarehouse}
spec:
  destination: {kind: ServiceAccount, name: redis, namespace: bookwarehouse}
  rules:
  - {kind: TCPRoute, name: redis}
  sources:
  - {kind: ServiceAccount, name: bookwarehouse, namespace: bookwarehouse}
";

/// A server outside the mesh (unmonitored namespace) under two Services,
/// a meshed pod whose outbound port 14001 bypasses its proxy, and a pod of
/// a monitored namespace that opts out of injection.
const OUTSIDE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: outside}
---
apiVersion: v1
kind: Service
metadata: {name: outside, namespace: outside}
spec: {selector: {app: outside}, ports: [{name: http, port: 14001}]}
---
apiVersion: v1
kind: Service
metadata: {name: outside-alt, namespace: outside}
spec: {selector: {app: outside}, ports: [{name: http, port: 8080, targetPort: 14001}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: outside, namespace: outside}
spec:
  replicas: 2
  selector: {matchLabels: {app: outside}}
  template:
    metadata: {labels: {app: outside}}
    spec:
      containers:
      - {name: outside, image: x, command: [bookstore], env: [{name: IDENTITY, value: outside}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: excluded, namespace: bookbuyer}
spec:
  selector: {matchLabels: {app: excluded}}
  template:
    metadata:
      labels: {app: excluded}
      annotations: {openservicemesh.io/outbound-port-exclusion-list: "14001"}
    spec:
      serviceAccountName: bookbuyer
      containers:
      - {name: sleeper, image: x, command: [sleep, infinity]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: uninjected, namespace: bookbuyer}
spec:
  selector: {matchLabels: {app: uninjected}}
  template:
    metadata:
      labels: {app: uninjected}
      annotations: {openservicemesh.io/sidecar-injection: disabled}
    spec:
      containers:
      - {name: sleeper, image: x, command: [sleep, infinity]}
"#;

/// A StatefulSet of echo apps behind a headless Service.
const LEDGER: &str = "
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: bookstore}
spec: {clusterIP: None, selector: {app: ledger}, ports: [{name: http, port: 8080}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger, namespace: bookstore}
spec:
  serviceName: ledger
  replicas: 2
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      serviceAccountName: bookstore
      containers:
      - name: ledger
        image: x
        command: [osm-echo]
        ports: [{containerPort: 8080}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
";

/// An app that listens on its pod IP only (`BIND` from the downward API),
/// on a port it declares.
const PODIP_APP: &str = "
apiVersion: v1
kind: Service
metadata: {name: podip, namespace: bookstore}
spec: {selector: {app: podip}, ports: [{name: http, port: 14001}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: podip, namespace: bookstore}
spec:
  selector: {matchLabels: {app: podip}}
  template:
    metadata: {labels: {app: podip}}
    spec:
      serviceAccountName: bookstore
      containers:
      - name: podip
        image: x
        command: [bookstore]
        # Declared: Localhost mode delivers it on loopback, as OSM did.
        ports: [{containerPort: 14001}]
        env:
        - {name: IDENTITY, value: podip}
        - {name: BIND, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
";

const EGRESS_POLICY: &str = "
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: outside-only, namespace: bookbuyer}
spec:
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  hosts: [outside.outside]
  ports: [{number: 14001, protocol: http}]
";

fn containers(pod: &Value) -> Vec<String> {
    ["/spec/initContainers", "/spec/containers"]
        .iter()
        .flat_map(|p| {
            pod.pointer(p)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[test]
fn the_bookstore_demo_and_the_smi_scenarios_in_network_namespaces() {
    let mesh = LocalMesh::up("osmt", "10.223.0.0/16", "10.224.0.0/16");
    // A second mesh whose pod range overlaps this one's is refused before
    // it starts anything, naming the running mesh and how to stop it.
    let other = tempfile::tempdir().expect("a temporary directory");
    let clash = std::process::Command::new(osm_tests::local::bin_dir().join("osm"))
        .args([
            "local",
            "up",
            "--name",
            "osmt2",
            "--pod-cidr",
            "10.223.128.0/17",
        ])
        .args(["--service-cidr", "10.230.0.0/16"])
        .env("OSM_LOCAL_STATE_DIR", other.path())
        .output()
        .expect("osm runs");
    let said = String::from_utf8_lossy(&clash.stderr);
    assert!(!clash.status.success(), "a clashing mesh started: {said}");
    assert!(
        said.contains("another local mesh is running from")
            && said.contains("overlaps this mesh's pod range 10.223.128.0/17")
            && said.contains(&format!(
                "osm local down --state-dir {}",
                mesh.state_dir().display()
            )),
        "{said}"
    );
    let demo = Demo(&mesh);
    let out = mesh.ok(&["local", "demo", "--for", "0s"]);
    assert!(out.contains("bookbuyer"), "{out}");

    // SMI mode: bookbuyer buys; bookthief is refused with 403.
    demo.buyer_buys(5);
    let stolen = demo.thief_refused(5, PATIENCE);
    assert_eq!(
        stolen,
        0,
        "bookthief bought books in SMI mode: {}",
        demo.thief()
    );
    let table = mesh.ok(&["local", "get", "pods", "-n", "bookstore"]);
    assert!(
        table.starts_with("NAME") && table.contains("2/2") && table.contains("Running"),
        "{table}"
    );

    // The cluster verbs work against local mode too.
    let buyer_pod = mesh.pods_of("bookbuyer", "bookbuyer")[0].clone();
    let store_pod = mesh.pods_of("bookstore", "bookstore-v1")[0].clone();
    let thief_pod = mesh.pods_of("bookthief", "bookthief")[0].clone();
    let check = |src: &str, dst: &str| mesh.osm(&["policy", "check-pods", "--local", src, dst]);
    let allowed = check(
        &format!("bookbuyer/{buyer_pod}"),
        &format!("bookstore/{store_pod}"),
    );
    let text = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        allowed.status.success() && text.contains("TrafficTarget bookstore/bookstore"),
        "{text}"
    );
    let denied = check(
        &format!("bookthief/{thief_pod}"),
        &format!("bookstore/{store_pod}"),
    );
    assert_eq!(
        denied.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&denied.stdout)
    );
    let dump = mesh.ok(&[
        "proxy",
        "get",
        "--local",
        "config_dump",
        &buyer_pod,
        "-n",
        "bookbuyer",
    ]);
    let dump: Value = serde_json::from_str(&dump).expect("config_dump is JSON");
    assert!(dump["version"].as_u64().unwrap_or(0) > 0, "{dump}");

    // Adding bookthief as a source lets it buy.
    mesh.apply_file("demo/manifests/access/traffic-access-v1-allow-bookthief.yaml");
    wait_for("bookthief to buy once allowed", PATIENCE, || {
        (n(&demo.thief(), "/ok") > 0).then_some(())
    });
    // Deleting the policy denies again within 5 s.
    mesh.delete_file("demo/manifests/access/traffic-access-v1-allow-bookthief.yaml");
    demo.thief_refused(1, Duration::from_secs(5));
    let after = demo.thief_refused(1, PATIENCE);
    assert_eq!(
        demo.thief_refused(4, PATIENCE),
        after,
        "bookthief still buys"
    );
    mesh.apply_file("demo/manifests/access/traffic-access-v1.yaml");
    demo.buyer_buys(3);

    // Split 100/0: only v1 sells.
    let v2 = demo.sold("v2");
    let v1 = demo.sold("v1");
    demo.buyer_buys(6);
    assert_eq!(demo.sold("v2"), v2, "v2 sold under a 100/0 split");
    assert!(demo.sold("v1") >= v1 + 6);
    // 50/50: both sell.
    mesh.apply_file("demo/manifests/split/traffic-split-50-50.yaml");
    let (v1, v2) = (demo.sold("v1"), demo.sold("v2"));
    wait_for("both versions to sell under 50/50", PATIENCE, || {
        (demo.sold("v1") >= v1 + 3 && demo.sold("v2") >= v2 + 3).then_some(())
    });
    // 0/100: only v2 sells (once the split has landed: the buyer waits for
    // each answer, so nothing is in flight to v1 after v2 answered twice).
    mesh.apply_file("demo/manifests/split/traffic-split-v2.yaml");
    let v2 = demo.sold("v2");
    wait_for("v2 to sell under 0/100", PATIENCE, || {
        (demo.sold("v2") >= v2 + 2).then_some(())
    });
    let v1 = demo.sold("v1");
    let v2 = demo.sold("v2");
    demo.buyer_buys(6);
    assert_eq!(demo.sold("v1"), v1, "v1 sold under a 0/100 split");
    assert!(demo.sold("v2") >= v2 + 6);
    mesh.apply_file("demo/manifests/split/traffic-split-v1.yaml");

    // bookwarehouse -> Redis over a TCPRoute works; without the
    // TrafficTarget the database cannot be reached (the open connection
    // is cut too).
    let w = demo.warehouse();
    wait_for("restocks to reach the database", PATIENCE, || {
        (n(&demo.warehouse(), "/restocked") >= n(&w, "/restocked") + 3).then_some(())
    });
    assert_eq!(
        n(&demo.warehouse(), "/dbErrors"),
        n(&w, "/dbErrors"),
        "{}",
        demo.warehouse()
    );
    mesh.delete(REDIS_POLICY);
    let errors = n(&demo.warehouse(), "/dbErrors");
    wait_for(
        "the database to be refused without its TrafficTarget",
        PATIENCE,
        || (n(&demo.warehouse(), "/dbErrors") >= errors + 2).then_some(()),
    );
    mesh.apply(REDIS_POLICY);
    let restocked = n(&demo.warehouse(), "/restocked");
    wait_for("restocks to reach the database again", PATIENCE, || {
        (n(&demo.warehouse(), "/restocked") >= restocked + 3).then_some(())
    });

    // Permissive mode on: bookthief buys; off: refused again.
    mesh.apply(&mesh_config(true, true));
    let stolen = n(&demo.thief(), "/ok");
    wait_for("bookthief to buy in permissive mode", PATIENCE, || {
        (n(&demo.thief(), "/ok") >= stolen + 3).then_some(())
    });
    mesh.apply(&mesh_config(false, true));
    let after = demo.thief_refused(1, PATIENCE);
    assert_eq!(
        demo.thief_refused(4, PATIENCE),
        after,
        "bookthief buys after permissive mode went off"
    );

    // A server outside the mesh, reached from a meshed pod.
    mesh.apply(OUTSIDE);
    wait_for("the outside pods to be ready", PATIENCE, || {
        let pods: Vec<Value> = mesh
            .pods("outside")
            .into_iter()
            .chain(mesh.pods("bookbuyer"))
            .collect();
        (pods.len() >= 5 && pods.iter().all(ready)).then_some(())
    });
    // An unmonitored namespace's pod and an opted-out pod have no sidecar.
    let outside = mesh.pod_of("outside", "outside").expect("the outside pod");
    assert_eq!(containers(&outside), ["outside"]);
    let uninjected = mesh
        .pod_of("bookbuyer", "uninjected")
        .expect("the uninjected pod");
    assert_eq!(containers(&uninjected), ["sleeper"]);
    let excluded = mesh
        .pod_of("bookbuyer", "excluded")
        .expect("the excluded pod");
    assert_eq!(containers(&excluded), ["osm-init", "osm-proxy", "sleeper"]);

    let get = |target: &str, url: &str| mesh.exec("bookbuyer", target, &["httpget", url]);
    // From a pod without a sidecar, the VIP is balanced over both
    // endpoints by the host's rules, as kube-proxy would.
    for _ in 0..20 {
        let (code, out, err) = get(
            "deploy/uninjected",
            "http://outside.outside:14001/buy-a-book/new",
        );
        assert_eq!(code, 0, "{out} {err}");
    }
    let replicas = mesh.pods_of("outside", "outside");
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    for pod in &replicas {
        let counters: Value = serde_json::from_str(
            &mesh
                .named_pod_get("outside", pod, 14001, "/counters")
                .expect("counters"),
        )
        .unwrap();
        assert!(
            n(&counters, "/sold") > 0,
            "{pod} got none of 20 requests: {counters}"
        );
    }
    let url = "http://outside.outside:14001/counters";
    // Egress on: the meshed pod reaches it.
    let (code, out, err) = get("deploy/bookbuyer", url);
    assert_eq!(code, 0, "egress on: {out} {err}");
    // Egress off: refused by its proxy.
    mesh.apply(&mesh_config(false, false));
    let (code, out, _) = wait_for("egress off to refuse", PATIENCE, || {
        let r = get("deploy/bookbuyer", url);
        (r.0 != 0).then_some(r)
    });
    assert_eq!(code, 22, "{out}");
    assert!(
        out.starts_with("403") && out.contains("egress is disabled"),
        "{out}"
    );
    // An Egress resource admits that host and port, and nothing else.
    mesh.apply(EGRESS_POLICY);
    wait_for(
        "the Egress policy to admit outside.outside:14001",
        PATIENCE,
        || (get("deploy/bookbuyer", url).0 == 0).then_some(()),
    );
    let (code, out, _) = get(
        "deploy/bookbuyer",
        "http://outside-alt.outside:8080/counters",
    );
    assert_eq!(code, 22, "another host and port passed: {out}");
    assert!(out.starts_with("403"), "{out}");
    mesh.delete(EGRESS_POLICY);
    wait_for("the Egress policy to go", PATIENCE, || {
        (get("deploy/bookbuyer", url).0 != 0).then_some(())
    });

    // The port-exclusion annotation: the excluded pod reaches port 14001
    // directly with egress off, and its proxy never sees the traffic;
    // bookbuyer's proxy refuses the same request and counts it.
    let (code, out, err) = get("deploy/excluded", url);
    assert_eq!(
        code, 0,
        "the excluded port went through the proxy: {out} {err}"
    );
    let metrics = |d: &str| {
        mesh.pod_get("bookbuyer", d, 15010, "/stats/prometheus")
            .expect("proxy metrics")
    };
    let excluded_metrics = metrics("excluded");
    assert!(
        !excluded_metrics.contains("osm_outbound_refused_total")
            && !excluded_metrics.contains("direction=\"egress\"")
            && !excluded_metrics.contains("direction=\"outbound\""),
        "{excluded_metrics}"
    );
    assert!(
        metrics("bookbuyer")
            .contains("osm_outbound_refused_total{kind=\"http\",reason=\"no-route\"}")
    );

    // A meshed Job finishes: its app calls the bookstore through its
    // proxy and exits 0, the proxy (a native sidecar) is stopped, the pod
    // shows Completed and the Job 1/1.
    mesh.apply(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: audit, namespace: bookbuyer}\nspec:\n  template:\n    spec:\n      serviceAccountName: bookbuyer\n      restartPolicy: Never\n      containers:\n      - {name: audit, image: httpget, command: [httpget, 'http://bookstore.bookstore:14001/books-bought', 'user-agent: audit-http-client/1.0', 'client-app: bookbuyer']}\n",
    );
    let completed = poll_until(PATIENCE, || {
        let jobs = mesh.ok(&["local", "get", "jobs", "-n", "bookbuyer"]);
        jobs.lines()
            .any(|l| l.starts_with("audit") && l.contains("Complete") && l.contains("1/1"))
            .then_some(())
    });
    if completed.is_none() {
        let pods = mesh.ok(&["local", "get", "pods", "-n", "bookbuyer"]);
        let described: Vec<String> = pods
            .lines()
            .filter(|l| l.starts_with("audit-"))
            .filter_map(|l| l.split_whitespace().next())
            .take(1)
            .map(|p| {
                format!(
                    "{}\n{}",
                    mesh.ok(&["local", "describe", "pod", p, "-n", "bookbuyer"]),
                    String::from_utf8_lossy(
                        &mesh
                            .osm(&["local", "logs", "-n", "bookbuyer", p, "-c", "audit"])
                            .stdout
                    )
                )
            })
            .collect();
        panic!(
            "the job did not complete:\n{}\n{pods}\n{}",
            mesh.ok(&["local", "get", "jobs", "-n", "bookbuyer", "-o", "yaml"]),
            described.join("\n")
        );
    }
    let pods = mesh.ok(&["local", "get", "pods", "-n", "bookbuyer"]);
    let job_pod = pods
        .lines()
        .find(|l| l.starts_with("audit-"))
        .unwrap_or_else(|| panic!("no pod of the job: {pods}"));
    assert!(job_pod.contains("Completed"), "{pods}");
    let name = job_pod.split_whitespace().next().unwrap_or_default();
    let described = mesh.ok(&["local", "describe", "pod", name, "-n", "bookbuyer"]);
    assert!(
        described.contains("osm-proxy:") && !described.contains("    State:          Running"),
        "the proxy stopped with the app: {described}"
    );
    mesh.delete("apiVersion: batch/v1\nkind: Job\nmetadata: {name: audit, namespace: bookbuyer}\n");
    wait_for("the job's pod to go with it", PATIENCE, || {
        (!mesh
            .ok(&["local", "get", "pods", "-n", "bookbuyer"])
            .contains("audit-"))
        .then_some(())
    });

    // Secrets reach a pod as files (its volume) and as environment; their
    // values are shown nowhere else.
    mesh.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\ndata: {password: czNjcmV0}\nstringData: {user: admin}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {mode: fast, level: '1'}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: reader, namespace: default}\nspec:\n  containers:\n  - name: reader\n    image: sleep\n    command: [sleep, '3600']\n    env: [{name: DB_USER, valueFrom: {secretKeyRef: {name: db, key: user}}}]\n    volumeMounts: [{name: creds, mountPath: /etc/creds}, {name: settings, mountPath: /etc/settings}]\n  volumes: [{name: creds, secret: {secretName: db}}, {name: settings, configMap: {name: settings}}]\n",
    );
    wait_for("the secret reader to run", PATIENCE, || {
        mesh.pods("default")
            .iter()
            .any(|p| p["metadata"]["name"] == "reader" && ready(p))
            .then_some(())
    });
    let (code, password, err) = mesh.exec("default", "reader", &["cat", "/etc/creds/password"]);
    assert_eq!((code, password.as_str()), (0, "s3cret"), "{err}");
    let (code, user, err) = mesh.exec("default", "reader", &["printenv", "DB_USER"]);
    assert_eq!((code, user.trim()), (0, "admin"), "{err}");
    let (code, mode, err) = mesh.exec("default", "reader", &["cat", "/etc/settings/mode"]);
    assert_eq!((code, mode.as_str()), (0, "fast"), "{err}");
    isolation::a_container_is_isolated_like_a_kubelets(&mesh, "reader");
    isolation::a_memory_limit_is_enforced(&mesh);
    isolation::host_paths_need_the_flag(&mesh);
    // A ConfigMap and a Secret changed under the running pod: its mounted
    // files follow (a key gone is removed); its environment, set at
    // start, does not.
    mesh.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\ndata: {password: bmV3cGFzcw==}\nstringData: {user: admin}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {mode: slow}\n",
    );
    wait_for(
        "the mounted ConfigMap to follow its change",
        PATIENCE,
        || {
            let (_, mode, _) = mesh.exec("default", "reader", &["cat", "/etc/settings/mode"]);
            (mode == "slow").then_some(())
        },
    );
    let (code, _, _) = mesh.exec("default", "reader", &["cat", "/etc/settings/level"]);
    assert_ne!(code, 0, "the key removed from the ConfigMap is gone");
    wait_for("the mounted Secret to follow its change", PATIENCE, || {
        let (_, password, _) = mesh.exec("default", "reader", &["cat", "/etc/creds/password"]);
        (password == "newpass").then_some(())
    });
    let (code, user, err) = mesh.exec("default", "reader", &["printenv", "DB_USER"]);
    assert_eq!((code, user.trim()), (0, "admin"), "{err}");
    let secrets = mesh.ok(&["local", "get", "secrets"]);
    assert!(
        secrets
            .lines()
            .any(|l| l.starts_with("db") && l.contains("Opaque") && l.contains(" 2 ")),
        "{secrets}"
    );
    mesh.delete("apiVersion: v1\nkind: Pod\nmetadata: {name: reader, namespace: default}\n");

    // A pod that does not get ready says why: a container that exits 3
    // is in back-off with its exit code as the last state; one whose
    // readiness probe fails shows the probe's failure as an event.
    mesh.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: broken, namespace: default}\nspec:\n  containers:\n  - {name: crasher, image: sh, command: [sh, -c, 'exit 3']}\n  - name: unready\n    image: sleep\n    command: [sleep, '3600']\n    readinessProbe: {exec: {command: ['false']}, periodSeconds: 1}\n",
    );
    // Waited for whole: between a run's exit and its back-off the pod is
    // briefly `Error` (as on a cluster).
    let wanted = [
        "Status:       CrashLoopBackOff",
        "    Last State:     Terminated",
        "      Exit Code:    3",
        "Back-off restarting failed container crasher (exit code 3)",
        "Readiness probe failed: exec probe exited with",
        "Started container unready",
    ];
    let mut described = String::new();
    poll_until(PATIENCE, || {
        described = mesh.ok(&["local", "describe", "pod", "broken"]);
        wanted.iter().all(|w| described.contains(w)).then_some(())
    })
    .unwrap_or_else(|| {
        let missing: Vec<&&str> = wanted.iter().filter(|w| !described.contains(**w)).collect();
        panic!("describe pod broken lacks {missing:?}:\n{described}")
    });
    wait_for("get pods to show the back-off", PATIENCE, || {
        let pods = mesh.ok(&["local", "get", "pods"]);
        pods.lines()
            .any(|l| l.starts_with("broken") && l.contains("0/2") && l.contains("CrashLoopBackOff"))
            .then_some(())
    });
    let events = mesh.ok(&["local", "get", "events"]);
    assert!(
        events.starts_with("LAST SEEN")
            && events.contains("Warning")
            && events.contains("pod/broken"),
        "{events}"
    );
    let missing = mesh.osm(&["local", "describe", "pod", "nowhere"]);
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("\"nowhere\" not found"),
        "{missing:?}"
    );
    mesh.delete("apiVersion: v1\nkind: Pod\nmetadata: {name: broken, namespace: default}\n");
    wait_for("the broken pod's events to go with it", PATIENCE, || {
        (!mesh.ok(&["local", "get", "events"]).contains("pod/broken")).then_some(())
    });

    // sidecar.localProxyMode PodIP: an app bound to its pod IP only is
    // reached by its proxy (Localhost mode dials 127.0.0.1 and fails),
    // and apps bound to every address keep working.
    mesh.apply(&format!("{}---\n{PODIP_APP}", mesh_config(true, true)));
    wait_for("the pod-IP-bound app to run", PATIENCE, || {
        mesh.pods("bookstore")
            .iter()
            .any(|p| p["metadata"]["labels"]["app"] == "podip" && ready(p))
            .then_some(())
    });
    let podip = || get("deploy/bookbuyer", "http://podip.bookstore:14001/counters");
    let (code, out, _) = podip();
    assert_ne!(
        code, 0,
        "Localhost mode cannot reach an app on its pod IP: {out}"
    );
    mesh.apply(
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
         metadata: {name: osm-mesh-config, namespace: osm-system}\n\
         spec: {traffic: {enablePermissiveTrafficPolicyMode: true, enableEgress: true}, sidecar: {localProxyMode: PodIP}}\n",
    );
    wait_for("PodIP mode to reach the pod-IP-bound app", PATIENCE, || {
        let (code, out, _) = podip();
        (code == 0 && out.contains("podip")).then_some(())
    });
    let (code, out, err) = get(
        "deploy/bookbuyer",
        "http://bookstore.bookstore:14001/counters",
    );
    assert_eq!(
        code, 0,
        "an app on every address works in PodIP mode too: {out} {err}"
    );

    // A StatefulSet of 2 behind a headless Service, meshed: its pods come
    // in order with stable names, and each is reached by its own name
    // through the proxies (the answering pod sees the caller's identity,
    // which only the mTLS hop can give).
    mesh.apply(LEDGER);
    wait_for("ledger-0 and ledger-1 ready", PATIENCE, || {
        let pods = mesh.pods("bookstore");
        let ready_named = |name: &str| {
            pods.iter()
                .any(|p| p["metadata"]["name"] == name && ready(p))
        };
        (ready_named("ledger-0") && ready_named("ledger-1")).then_some(())
    });
    let created = |name: &str| {
        mesh.pods("bookstore")
            .iter()
            .find(|p| p["metadata"]["name"] == name)
            .and_then(|p| {
                p["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    assert!(created("ledger-0") <= created("ledger-1"), "in order");
    for pod in ["ledger-0", "ledger-1"] {
        let url = format!("http://{pod}.ledger.bookstore.svc.cluster.local:8080/who");
        let answered = wait_for(&format!("{pod} by its own name"), PATIENCE, || {
            let (code, out, _) = get("deploy/bookbuyer", &url);
            (code == 0).then_some(out)
        });
        let body = answered.split_once('\n').map_or("", |(_, body)| body);
        let described: Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(described["pod"], pod, "{answered}");
        assert!(
            answered.contains("spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"),
            "the caller's identity, from its certificate: {answered}"
        );
    }
    wait_for("get statefulsets to show 2/2", PATIENCE, || {
        let sets = mesh.ok(&["local", "get", "statefulsets", "-n", "bookstore"]);
        sets.lines()
            .any(|l| l.starts_with("ledger") && l.contains("2/2"))
            .then_some(())
    });

    adoption::daemon_restarts_keep_pods(&mesh, || n(&demo.buyer(), "/ok"));

    // Down: nothing of the run is left.
    let pids = mesh.container_pids();
    assert!(pids.len() >= 10, "{pids:?}");
    let state = mesh.state_dir().to_path_buf();
    let out = mesh.down();
    assert!(out.contains("is down"), "{out}");
    let netns = entries_named("/run/netns", "osmt.");
    assert!(netns.is_empty(), "{netns:?}");
    let etc = entries_named("/etc/netns", "osmt.");
    assert!(etc.is_empty(), "{etc:?}");
    for table in ["nat", "filter"] {
        let rules = std::process::Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(!rules.contains("OSMT-"), "{rules}");
    }
    let link = std::process::Command::new("ip")
        .args(["link", "show", "osmt-br"])
        .output()
        .unwrap();
    assert!(!link.status.success(), "the bridge is left");
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"));
        assert!(!alive, "process {pid} is left");
    }
    assert!(!state.exists(), "{} is left", state.display());
}
