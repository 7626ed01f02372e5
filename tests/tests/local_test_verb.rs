//! `osm local test`: mesh policies tested in one command. Two runs over
//! the same small mesh in SMI mode (a server allowing one client, not
//! another; local mode starts permissive, so the manifests say so): a
//! table of expectations that holds (exit 0) and one that does not (exit 1,
//! the row that failed named with what it got). Each run brings its own
//! mesh up and takes it down. Runs as root (CI does).

use std::process::Command;

use osm_tests::local::{bin_dir, entries_named};

const MANIFESTS: &str = r#"
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {name: osm-mesh-config, namespace: osm-system}
spec: {traffic: {enablePermissiveTrafficPolicyMode: false}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: client, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: thief, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: osm-echo
        command: [osm-echo]
        env: [{name: PORT, value: "8080"}, {name: SERVICE, value: web}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      serviceAccountName: client
      containers: [{name: client, image: sleep, command: [sleep, "3600"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: thief, namespace: shop}
spec:
  selector: {matchLabels: {app: thief}}
  template:
    metadata: {labels: {app: thief}}
    spec:
      serviceAccountName: thief
      containers: [{name: thief, image: sleep, command: [sleep, "3600"]}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: all, namespace: shop}
spec: {matches: [{name: any, pathRegex: '.*', methods: ['*']}]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-web, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: shop}
  rules: [{kind: HTTPRouteGroup, name: all, matches: [any]}]
  sources: [{kind: ServiceAccount, name: client, namespace: shop}]
"#;

fn osm_local_test(dir: &std::path::Path, expectations: &str) -> (Option<i32>, String) {
    let expect = dir.join("expect.yaml");
    std::fs::write(&expect, expectations).expect("the expectations file is written");
    let out = Command::new(bin_dir().join("osm"))
        .args(["local", "test", "-f"])
        .arg(dir.join("manifests.yaml"))
        .arg("--expect")
        .arg(&expect)
        .args(["--settle", "5s", "--timeout", "90s"])
        .output()
        .expect("osm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn osm_local_test_passes_a_table_that_holds_and_names_the_row_that_does_not() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("manifests.yaml"), MANIFESTS).expect("manifests written");

    let (code, text) = osm_local_test(
        dir.path(),
        "- {from: shop/client, to: 'http://web.shop/', expect: allowed}\n\
         - {from: shop/client, to: 'http://web.shop/x', method: POST, expect: 200}\n\
         - {from: shop/thief, to: 'http://web.shop/', expect: denied}\n",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("3 of 3 expectations met\n"), "{text}");

    let (code, text) = osm_local_test(
        dir.path(),
        "- {from: shop/client, to: 'http://web.shop/', expect: allowed}\n\
         - {from: shop/thief, to: 'http://web.shop/', expect: allowed}\n",
    );
    assert_eq!(code, Some(1), "{text}");
    let failed = text
        .lines()
        .find(|l| l.ends_with("FAIL"))
        .unwrap_or_else(|| panic!("no failed row: {text}"));
    assert!(
        failed.starts_with("shop/thief") && failed.contains("allowed") && failed.contains("403"),
        "{failed}"
    );
    assert!(text.contains("1 of 2 expectations met: FAILED"), "{text}");

    // Each run took its mesh down.
    let left = entries_named("/run/netns", "osmci.");
    assert!(left.is_empty(), "{left:?}");
}
