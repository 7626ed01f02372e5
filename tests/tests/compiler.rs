//! The compiler's output as the proxy enforces it.

#![allow(clippy::unwrap_used)]

use http::{HeaderMap, Method};
use osm_api::{
    compile::{Index, MeshOptions, ProxyId, compile},
    load::load_str,
};
use osm_proxy::{
    config::build_snapshot,
    identity::SpiffeId,
    policy::{Decision, HttpRequestView, authorize_http},
    upstream::EndpointRegistry,
};

/// The SMI spec's worked example: api-service-routes {api: /api any method;
/// metrics: /metrics GET}; prometheus may GET /metrics; website-service and
/// payments-service may use /api.
const SPEC_EXAMPLE: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {openservicemesh.io/monitored-by: osm}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-service-0, namespace: default, labels: {app: api-service}}
spec: {serviceAccountName: api-service, containers: [{name: api, image: api}]}
status: {podIP: 10.0.0.5}
---
apiVersion: v1
kind: Service
metadata: {name: api-service, namespace: default}
spec: {clusterIP: 10.96.0.5, selector: {app: api-service}, ports: [{name: http, port: 8080}]}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: api-service-routes, namespace: default}
spec:
  matches:
  - {name: api, pathRegex: /api, methods: ['*']}
  - {name: metrics, pathRegex: /metrics, methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: path-specific, namespace: default}
spec:
  destination: {kind: ServiceAccount, name: api-service, namespace: default}
  rules: [{kind: HTTPRouteGroup, name: api-service-routes, matches: [metrics]}]
  sources: [{kind: ServiceAccount, name: prometheus, namespace: default}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: api-service-api, namespace: default}
spec:
  destination: {kind: ServiceAccount, name: api-service, namespace: default}
  rules: [{kind: HTTPRouteGroup, name: api-service-routes, matches: [api]}]
  sources:
  - {kind: ServiceAccount, name: website-service, namespace: default}
  - {kind: ServiceAccount, name: payments-service, namespace: default}
";

#[test]
fn the_smi_worked_example_as_an_allow_deny_table() {
    let loaded = load_str("example.yaml", SPEC_EXAMPLE);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut index = Index::new(MeshOptions::default());
    for l in loaded.objects {
        index.apply(l.object);
    }
    let compiled = compile(
        &index,
        &ProxyId {
            namespace: "default".into(),
            pod: "api-service-0".into(),
        },
    )
    .unwrap();
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    let snapshot = build_snapshot(compiled.config, 1, &EndpointRegistry::default())
        .expect("the proxy accepts it");
    let policy = snapshot.inbound.get(&8080);
    assert!(policy.is_some());

    let headers = HeaderMap::new();
    let table = [
        ("website-service", "GET", "/api", true),
        ("website-service", "POST", "/api", true),
        ("payments-service", "DELETE", "/api", true),
        ("prometheus", "GET", "/metrics", true),
        ("prometheus", "POST", "/metrics", false),
        ("prometheus", "GET", "/api", false),
        ("website-service", "GET", "/metrics", false),
        ("payments-service", "GET", "/metrics", false),
        ("website-service", "GET", "/api/v2", false),
        ("stranger", "GET", "/api", false),
    ];
    for (sa, method, path, allowed) in table {
        let method: Method = method.parse().unwrap();
        let view = HttpRequestView {
            method: &method,
            path,
            query: None,
            authority: None,
            headers: &headers,
        };
        let source: SpiffeId = format!("spiffe://cluster.local/ns/default/sa/{sa}")
            .parse()
            .unwrap();
        let decision = authorize_http(false, 8080, policy, &source, &view);
        assert_eq!(
            matches!(decision, Decision::Allow(_)),
            allowed,
            "{sa} {method} {path}: {decision:?}"
        );
    }
}

#[test]
fn every_bookstore_golden_config_is_accepted_by_the_proxy() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let config = osm_proxy::config::parse_config(&path.display().to_string(), &text).unwrap();
        build_snapshot(config, 1, &EndpointRegistry::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert_eq!(checked, 6);
}
