//! MeshConfig and the policy.openservicemesh.io kinds: permissive mode, egress, IngressBackend, UpstreamTrafficSetting and Retry.

use super::*;

#[test]
fn the_mesh_config_switches_permissive_mode_and_egress() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    let thief = || ProxyId {
        namespace: "bookthief".into(),
        pod: "bookthief-1".into(),
    };
    assert!(
        compile(&idx, &thief())
            .expect("compiles")
            .config
            .outbound
            .is_empty()
    );
    let mesh_config = |permissive: bool| {
        format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
             spec: {{traffic: {{enablePermissiveTrafficPolicyMode: {permissive}, enableEgress: false}}}}\n"
        )
    };
    apply_all(&mut idx, &mesh_config(true));
    let c = compile(&idx, &thief()).expect("compiles");
    assert_eq!(c.config.outbound.len(), 4);
    let mesh = c.config.mesh.expect("mesh");
    assert!(mesh.permissive && !mesh.egress);
    apply_all(&mut idx, &mesh_config(false));
    assert!(
        compile(&idx, &thief())
            .expect("compiles")
            .config
            .outbound
            .is_empty()
    );
    // A MeshConfig with another name changes nothing.
    apply_all(
        &mut idx,
        &mesh_config(true).replace("name: osm-mesh-config", "name: other"),
    );
    assert!(!idx.mesh.permissive);
}

#[test]
fn ingress_backends_open_ports_to_plaintext_sources() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    apply_all(
        &mut idx,
        &format!(
            "{}{}---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {{name: bookstore, namespace: bookstore}}
spec:
  backends: [{{name: bookstore-v1, port: {{number: 8080, protocol: http}}}}]
  sources: [{{kind: IPRange, name: 192.168.0.0/16}}, {{kind: Service, name: ingress-nginx, namespace: ingress}}]
",
            namespace("ingress", false),
            pod("ingress", "ingress-nginx-1", "ingress", "10.9.0.1", "app: ingress")
                + &service("ingress", "ingress-nginx", "app: ingress", "{port: 80}", "10.96.0.90")
        ),
    );
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    assert_eq!(
        v1.config.inbound[0].plaintext_sources,
        ["10.9.0.1", "192.168.0.0/16"]
    );
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    assert!(
        v2.config.inbound[0].plaintext_sources.is_empty(),
        "bookstore-v1's Service does not select v2"
    );
}

#[test]
fn upstream_settings_retries_and_egress_rules() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    apply_all(
        &mut idx,
        "apiVersion: policy.openservicemesh.io/v1alpha1
kind: UpstreamTrafficSetting
metadata: {name: limits, namespace: bookstore}
spec:
  host: bookstore-v1.bookstore.svc.cluster.local
  connectionSettings: {tcp: {maxConnections: 100, connectTimeout: 2s}, http: {maxRequests: 50, maxPendingRequests: 5}}
  rateLimit: {local: {tcp: {connections: 10, unit: minute, burst: 2}, http: {requests: 100, unit: second, responseStatusCode: 503, responseHeadersToAdd: [{name: x-limited, value: 'yes'}]}}}
  httpRoutes: [{path: '/buy.*', rateLimit: {local: {requests: 1, unit: hour}}}]
  outlierDetection: {consecutive5xx: 5, baseEjectionTime: 10s, maxEjectionPercent: 50}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {name: retry, namespace: bookbuyer}
spec:
  source: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
  destinations: [{kind: Service, name: bookstore-v1, namespace: bookstore}]
  retryPolicy: {retryOn: '5xx, reset, retriable-status-codes', perTryTimeout: 250ms, numRetries: 3, retriableStatusCodes: [429]}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: github, namespace: bookbuyer}
spec:
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  hosts: [github.com]
  ports: [{number: 443, protocol: https}]
",
    );
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    let port = &v1.config.inbound[0];
    assert_eq!(
        port.tcp_rate_limit,
        Some(v1::TokenBucket {
            tokens: 10,
            interval_ms: 60_000,
            burst: 2
        })
    );
    let http = port.http_rate_limit.as_ref().expect("http limit");
    assert_eq!(
        http.bucket,
        Some(v1::TokenBucket {
            tokens: 100,
            interval_ms: 1_000,
            burst: 0
        })
    );
    assert_eq!(http.status_code, 503);
    assert_eq!(http.response_headers["x-limited"], "yes");
    assert_eq!(port.route_rate_limits[0].path_regex, "/buy.*");
    assert_eq!(
        port.route_rate_limits[0]
            .limit
            .as_ref()
            .and_then(|l| l.bucket),
        Some(v1::TokenBucket {
            tokens: 1,
            interval_ms: 3_600_000,
            burst: 0
        })
    );
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    assert!(
        v2.config.inbound[0].tcp_rate_limit.is_none(),
        "the setting names bookstore-v1 only"
    );

    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let leaf = buyer
        .config
        .outbound
        .iter()
        .find(|s| s.name == "bookstore-v1")
        .expect("leaf");
    let limits = leaf.limits.expect("limits");
    assert_eq!(
        (
            limits.max_connections,
            limits.connect_timeout_ms,
            limits.max_requests,
            limits.max_pending_requests
        ),
        (100, 2000, 50, 5)
    );
    assert_eq!(
        leaf.outlier_detection,
        Some(v1::OutlierDetection {
            consecutive_5xx: 5,
            interval_ms: 0,
            base_ejection_time_ms: 10_000,
            max_ejection_percent: 50
        })
    );
    assert!(leaf.retry.is_none(), "enableRetryPolicy is off by default");
    assert_eq!(buyer.config.egress.len(), 1);
    let rule = &buyer.config.egress[0];
    assert_eq!(
        (rule.name.as_str(), rule.hosts.as_slice()),
        ("bookbuyer/github", &["github.com".to_string()][..])
    );
    assert_eq!(
        rule.ports,
        [v1::EgressPort {
            number: 443,
            protocol: "https".into()
        }]
    );
    let thief = compile(&idx, &proxy("bookthief", "bookthief-1")).expect("compiles");
    assert!(thief.config.egress.is_empty());

    apply_all(
        &mut idx,
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
         spec: {traffic: {enablePermissiveTrafficPolicyMode: false, requestTimeout: 15s}, featureFlags: {enableRetryPolicy: true, enableEgressPolicy: false}, \
         sidecar: {tlsMinProtocolVersion: TLSv1_3, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256], ecdhCurves: [P-256], localProxyMode: PodIP}}\n",
    );
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let mesh = buyer.config.mesh.as_ref().expect("mesh settings");
    assert_eq!(mesh.request_timeout_ms, 15_000);
    assert!(mesh.app_on_pod_ip, "localProxyMode PodIP");
    assert_eq!(
        (
            mesh.tls_min_version.as_str(),
            mesh.tls_max_version.as_str(),
            mesh.cipher_suites.as_slice(),
            mesh.ecdh_curves.as_slice()
        ),
        (
            "TLSv1_3",
            "TLSv1_3",
            &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()][..],
            &["secp256r1".to_string()][..]
        ),
        "MeshConfig's names in the proxy's (rustls) names"
    );
    let leaf = buyer
        .config
        .outbound
        .iter()
        .find(|s| s.name == "bookstore-v1")
        .expect("leaf");
    assert_eq!(
        leaf.retry,
        Some(v1::RetryPolicy {
            retry_on: vec![
                "5xx".into(),
                "reset".into(),
                "retriable-status-codes".into()
            ],
            num_retries: 3,
            per_try_timeout_ms: 250,
            backoff_base_ms: 25,
            retriable_status_codes: vec![429],
        })
    );
    assert!(buyer.config.egress.is_empty(), "enableEgressPolicy off");
    assert_eq!(mesh.tracing, None, "tracing is off by default");
}

#[test]
fn mesh_config_tracing_reaches_every_proxy_with_osms_default_collector() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    let mesh = |tracing: &str| {
        format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
             spec: {{observability: {{tracing: {tracing}}}}}\n"
        )
    };
    let tracing_of = |idx: &Index| {
        compile(idx, &proxy("bookbuyer", "bookbuyer-1"))
            .expect("compiles")
            .config
            .mesh
            .and_then(|m| m.tracing)
    };
    apply_all(&mut idx, &mesh("{enable: true}"));
    assert_eq!(
        tracing_of(&idx),
        Some(v1::Tracing {
            address: "jaeger.osm-system.svc.cluster.local".into(),
            port: 9411,
            endpoint: "/api/v2/spans".into(),
            sampled_fraction: 1.0,
        })
    );
    apply_all(
        &mut idx,
        &mesh(
            "{enable: true, address: otel.obs, port: 4318, endpoint: /v1/traces, sampledFraction: 0.01}",
        ),
    );
    assert_eq!(
        tracing_of(&idx),
        Some(v1::Tracing {
            address: "otel.obs".into(),
            port: 4318,
            endpoint: "/v1/traces".into(),
            sampled_fraction: 0.01,
        })
    );
    apply_all(&mut idx, &mesh("{enable: false, address: otel.obs}"));
    assert_eq!(tracing_of(&idx), None);
}

#[test]
fn the_access_log_follows_mesh_config_and_a_pods_annotation() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    let of = |idx: &Index, ns: &str, pod: &str| {
        let c = compile(idx, &proxy(ns, pod)).expect("compiles");
        (c.config.mesh.unwrap().access_log, c.warnings)
    };
    // No MeshConfig: the proxy's own flag.
    assert_eq!(of(&idx, "bookbuyer", "bookbuyer-1").0, "");
    apply_all(
        &mut idx,
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
         spec: {observability: {accessLog: {format: text}}}\n",
    );
    assert_eq!(of(&idx, "bookbuyer", "bookbuyer-1").0, "text");
    let annotated = |value: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: bookbuyer-1, namespace: bookbuyer, labels: {{app: bookbuyer}}, \
             annotations: {{openservicemesh.io/access-log: '{value}'}}}}\n\
             spec: {{serviceAccountName: bookbuyer, containers: [{{name: app, image: x}}]}}\nstatus: {{podIP: 10.2.0.1}}\n"
        )
    };
    apply_all(&mut idx, &annotated("off"));
    assert_eq!(of(&idx, "bookbuyer", "bookbuyer-1").0, "off");
    apply_all(&mut idx, &annotated("loud"));
    let (format, warnings) = of(&idx, "bookbuyer", "bookbuyer-1");
    assert_eq!(
        format, "text",
        "a bad annotation leaves the mesh-wide setting"
    );
    assert!(
        warnings.iter().any(|w| w
            == "pod bookbuyer/bookbuyer-1: annotation openservicemesh.io/access-log: \"loud\" is not off, json or text; the mesh-wide access log setting applies"),
        "{warnings:?}"
    );
    apply_all(
        &mut idx,
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
         spec: {observability: {accessLog: {enable: false}}}\n",
    );
    assert_eq!(of(&idx, "bookstore", "bookstore-v1-abc").0, "off");
}
