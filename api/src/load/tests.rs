use super::*;
use crate::resources::smi::{
    Backend, HttpRouteGroup, HttpRouteMatch, PortRoute, Rule, SplitMatch, Subject, TrafficSplit,
    TrafficTarget,
};

fn one(yaml: &str) -> Object {
    let out = load_str("t.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.objects.len(), 1);
    out.objects
        .into_iter()
        .next()
        .map(|l| l.object)
        .expect("one object")
}

fn error(yaml: &str) -> String {
    let out = load_str("t.yaml", yaml);
    assert_eq!(out.errors.len(), 1, "objects: {:?}", out.objects);
    out.errors[0].to_string()
}

fn sa(name: &str, ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(ns.into()),
    }
}

#[test]
fn traffic_target_v1alpha3() {
    let object = one("apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: bookstore, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules:
  - {kind: HTTPRouteGroup, name: bookstore-service-routes, matches: [buy-a-book, books-bought]}
  - {kind: TCPRoute, name: tcp}
  sources:
  - {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
");
    let Object::TrafficTarget(tt) = object else {
        panic!("{object:?}")
    };
    assert_eq!(tt.api_version, "access.smi-spec.io/v1alpha3");
    assert_eq!(tt.metadata.namespace.as_deref(), Some("bookstore"));
    assert_eq!(
        tt.spec,
        TrafficTarget {
            destination: sa("bookstore", "bookstore"),
            destination_port: None,
            sources: vec![sa("bookbuyer", "bookbuyer")],
            rules: vec![
                Rule {
                    kind: "HTTPRouteGroup".into(),
                    name: "bookstore-service-routes".into(),
                    matches: Some(vec!["buy-a-book".into(), "books-bought".into()]),
                },
                Rule {
                    kind: "TCPRoute".into(),
                    name: "tcp".into(),
                    matches: None
                },
            ],
        }
    );
}

#[test]
fn traffic_target_v1alpha2_keeps_the_destination_port() {
    let object = one("apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata: {name: t}
spec:
  destination: {kind: ServiceAccount, name: api, port: 8080}
");
    let Object::TrafficTarget(tt) = object else {
        panic!("{object:?}")
    };
    assert_eq!(
        tt.metadata.namespace.as_deref(),
        Some("default"),
        "namespace defaults"
    );
    assert_eq!(tt.spec.destination_port, Some(8080));
    assert!(tt.spec.rules.is_empty() && tt.spec.sources.is_empty());
}

fn route_match(
    name: &str,
    path: Option<&str>,
    methods: &[&str],
    headers: &[(&str, &str)],
) -> HttpRouteMatch {
    HttpRouteMatch {
        name: name.into(),
        path_regex: path.map(str::to_string),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn http_route_group_every_version() {
    let v1 = one("apiVersion: specs.smi-spec.io/v1alpha1
kind: HTTPRouteGroup
metadata: {name: g, namespace: ns}
matches:
- {name: metrics, pathRegex: /metrics, methods: [GET]}
");
    let v2 = one("apiVersion: specs.smi-spec.io/v1alpha2
kind: HTTPRouteGroup
metadata: {name: g, namespace: ns}
matches:
- name: firefox
  headers: [{user-agent: '.*Firefox.*'}, {cookie: 'type=insider'}]
");
    let v3 = one("apiVersion: specs.smi-spec.io/v1alpha3
kind: HTTPRouteGroup
metadata: {name: g, namespace: ns}
spec:
  matches:
  - name: firefox
    headers: {user-agent: '.*Firefox.*'}
");
    let v4 = one(
        r#"{"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": {"matches": [{"name": "api", "pathRegex": "/api/.*", "methods": ["GET", "HEAD"],
                                  "headers": [{"user-agent": ".*iPhone.*"}]}]}}"#,
    );
    let group = |o: Object| match o {
        Object::HttpRouteGroup(g) => g.spec,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        group(v1),
        HttpRouteGroup {
            matches: vec![route_match("metrics", Some("/metrics"), &["GET"], &[])]
        }
    );
    assert_eq!(
        group(v2),
        HttpRouteGroup {
            matches: vec![route_match(
                "firefox",
                None,
                &[],
                &[("user-agent", ".*Firefox.*"), ("cookie", "type=insider")]
            )]
        }
    );
    assert_eq!(
        group(v3),
        HttpRouteGroup {
            matches: vec![route_match(
                "firefox",
                None,
                &[],
                &[("user-agent", ".*Firefox.*")]
            )]
        }
    );
    assert_eq!(
        group(v4),
        HttpRouteGroup {
            matches: vec![route_match(
                "api",
                Some("/api/.*"),
                &["GET", "HEAD"],
                &[("user-agent", ".*iPhone.*")]
            )]
        }
    );
}

#[test]
fn tcp_and_udp_routes_every_version() {
    let ports = |o: Object| match o {
        Object::TcpRoute(r) | Object::UdpRoute(r) => r.spec,
        other => panic!("{other:?}"),
    };
    for version in ["v1alpha1", "v1alpha2"] {
        let yaml = format!(
            "apiVersion: specs.smi-spec.io/{version}\nkind: TCPRoute\nmetadata: {{name: r}}\n"
        );
        assert_eq!(ports(one(&yaml)), PortRoute { ports: vec![] });
    }
    let v3 = one(
        "apiVersion: specs.smi-spec.io/v1alpha3\nkind: TCPRoute\nmetadata: {name: r}\nspec: {}\n",
    );
    assert_eq!(ports(v3), PortRoute { ports: vec![] });
    let v4 = one(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: r}\nspec: {matches: {ports: [3306, 33060]}}\n",
    );
    assert_eq!(
        ports(v4),
        PortRoute {
            ports: vec![3306, 33060]
        }
    );
    let all = one(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: r}\nspec: {matches: {ports: []}}\n",
    );
    assert_eq!(ports(all), PortRoute { ports: vec![] });
    let udp = one(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: UDPRoute\nmetadata: {name: r}\nspec: {matches: {ports: [53]}}\n",
    );
    assert!(matches!(&udp, Object::UdpRoute(_)));
    assert_eq!(ports(udp), PortRoute { ports: vec![53] });
}

#[test]
fn traffic_split_every_version() {
    let split = |o: Object| match o {
        Object::TrafficSplit(s) => s.spec,
        other => panic!("{other:?}"),
    };
    let backend = |s: &str, w| Backend {
        service: s.into(),
        weight: w,
    };
    let v1 = one(
        "apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec:
  service: foobar
  backends: [{service: foobar-v1, weight: '1'}, {service: foobar-v2, weight: 500m}, {service: foobar-v3, weight: 2}]
",
    );
    assert_eq!(
        split(v1),
        TrafficSplit {
            service: "foobar".into(),
            backends: vec![
                backend("foobar-v1", 1000),
                backend("foobar-v2", 500),
                backend("foobar-v3", 2000)
            ],
            matches: vec![],
        }
    );
    let v2 = one(
        "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s}\n\
         spec: {service: bookstore, backends: [{service: bookstore-v1, weight: 90}, {service: bookstore-v2, weight: 10}]}\n",
    );
    assert_eq!(
        split(v2),
        TrafficSplit {
            service: "bookstore".into(),
            backends: vec![backend("bookstore-v1", 90), backend("bookstore-v2", 10)],
            matches: vec![],
        }
    );
    for version in ["v1alpha3", "v1alpha4"] {
        let yaml = format!(
            "apiVersion: split.smi-spec.io/{version}\nkind: TrafficSplit\nmetadata: {{name: s}}\n\
             spec:\n  service: website\n  backends: [{{service: website-v1, weight: 0}}, {{service: website-v2, weight: 100}}]\n  \
             matches: [{{kind: HTTPRouteGroup, name: ab-test, apiGroup: specs.smi-spec.io}}]\n"
        );
        assert_eq!(
            split(one(&yaml)),
            TrafficSplit {
                service: "website".into(),
                backends: vec![backend("website-v1", 0), backend("website-v2", 100)],
                matches: vec![SplitMatch {
                    kind: "HTTPRouteGroup".into(),
                    name: "ab-test".into(),
                    api_group: Some("specs.smi-spec.io".into()),
                }],
            }
        );
    }
}

#[test]
fn kubernetes_objects_lists_and_several_documents() {
    let out = load_str(
        "app.yaml",
        "apiVersion: v1
kind: Namespace
metadata: {name: bookstore, labels: {openservicemesh.io/monitored-by: osm}}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: bookstore, namespace: bookstore}}
- apiVersion: v1
  kind: Service
  metadata: {name: bookstore, namespace: bookstore}
  spec: {ports: [{port: 14001, name: http-bookstore}], selector: {app: bookstore}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bookstore-v1, namespace: bookstore}
spec:
  replicas: 2
  selector: {matchLabels: {app: bookstore}}
  template:
    metadata: {labels: {app: bookstore, version: v1}}
    spec: {serviceAccountName: bookstore, containers: [{name: bookstore, image: bookstore:v1, command: [bookstore]}]}
",
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let keys: Vec<String> = out
        .objects
        .iter()
        .map(|l| l.object.key().to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "Namespace bookstore",
            "ServiceAccount bookstore/bookstore",
            "Service bookstore/bookstore",
            "Deployment bookstore/bookstore-v1"
        ]
    );
    let origins: Vec<String> = out.objects.iter().map(|l| l.origin.to_string()).collect();
    assert_eq!(
        origins,
        [
            "app.yaml: document 1",
            "app.yaml: document 3, items[0]",
            "app.yaml: document 3, items[1]",
            "app.yaml: document 4"
        ]
    );
}

#[test]
fn a_bad_document_is_reported_and_the_others_load() {
    let out = load_str(
        "mix.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\n\
         apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: tt, namespace: ns}\n\
         spec: {destination: {kind: ServiceAccount, name: a}, rule: []}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n",
    );
    assert_eq!(out.objects.len(), 2);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(
        out.errors[0].to_string(),
        "mix.yaml: document 2 (TrafficTarget ns/tt): spec.rule: unknown field `rule`, expected one of `destination`, `rules`, `sources`"
    );
}

#[test]
fn events_are_passed_over_and_other_unknown_kinds_reported() {
    let out = load_str(
        "dump.yaml",
        "apiVersion: v1\nkind: Event\nmetadata: {name: web.1, namespace: shop}\nreason: Started\n---\n\
         apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: web.2, namespace: shop}\n---\n\
         apiVersion: example.com/v1\nkind: Event\nmetadata: {name: other, namespace: shop}\n---\n\
         apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: shop}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: shop}\n",
    );
    assert_eq!(out.objects.len(), 1, "{:?}", out.objects);
    let errors: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "dump.yaml: document 3 (Event shop/other): kind Event in apiVersion example.com/v1 is not supported by the mesh",
            "dump.yaml: document 4 (ReplicaSet shop/web): kind ReplicaSet in apiVersion apps/v1 is not supported by the mesh",
        ]
    );
}

#[test]
fn malformed_inputs_have_exact_errors() {
    let cases = [
        (
            "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s, namespace: n}\n\
             spec: {service: a, backends: [{service: b, weight: heavy}]}\n",
            "t.yaml: document 1 (TrafficSplit n/s): spec.backends[0].weight: invalid type: string \"heavy\", expected u64",
        ),
        (
            "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: s, namespace: n}\n\
             spec: {service: a, backends: [{service: b, weight: 1}, {service: c, weight: lots}]}\n",
            "t.yaml: document 1 (TrafficSplit n/s): spec.backends[1].weight: \"lots\" is not a non-negative quantity (e.g. 1, 500m, 1.5)",
        ),
        (
            "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: n}\n\
             spec: {matches: [{name: m, headers: [{a: x, b: y}]}]}\n",
            "t.yaml: document 1 (HTTPRouteGroup n/g): spec.matches[0].headers: headers[0] must be a map with exactly one header name",
        ),
        (
            "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: r, namespace: n}\n\
             spec: {matches: {ports: [70000]}}\n",
            "t.yaml: document 1 (TCPRoute n/r): spec.matches.ports[0]: invalid value: integer `70000`, expected u16",
        ),
        (
            "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: n}\nspec: {rules: []}\n",
            "t.yaml: document 1 (TrafficTarget n/t): spec: missing field `destination`",
        ),
        // Fields the storage versions' schemas name only to keep objects
        // written at older versions: refused when written at the new one.
        (
            "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: n}\n\
             spec: {destination: {kind: ServiceAccount, name: a, port: 80}}\n",
            "t.yaml: document 1 (TrafficTarget n/t): spec.destination.port: unknown field `port`, expected one of `kind`, `name`, `namespace`",
        ),
        (
            "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: n}\n\
             matches: [{name: m}]\n",
            "t.yaml: document 1 (HTTPRouteGroup n/g): matches: unknown field `matches`, expected one of `apiVersion`, `kind`, `metadata`, `spec`, `status`",
        ),
        (
            "apiVersion: access.smi-spec.io/v1alpha9\nkind: TrafficTarget\nmetadata: {name: t}\n",
            "t.yaml: document 1 (TrafficTarget t): kind TrafficTarget in apiVersion access.smi-spec.io/v1alpha9 is not supported by the mesh",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\n",
            "t.yaml: document 1 (Pod p): apiVersion: is required",
        ),
        (
            "- just\n- a list\n",
            "t.yaml: document 1: a manifest must be a mapping with apiVersion and kind",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(error(yaml), want, "{yaml}");
    }
}

#[test]
fn yaml_syntax_errors_stop_the_file() {
    let out = load_str(
        "broken.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a\n",
    );
    assert!(out.objects.is_empty());
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0]
            .to_string()
            .starts_with("broken.yaml: document 1: not valid YAML: "),
        "{}",
        out.errors[0]
    );
}

#[test]
fn mesh_config_fills_osm_defaults_for_absent_fields() {
    let object = one("apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {name: osm-mesh-config, namespace: osm-system}
spec:
  traffic: {enablePermissiveTrafficPolicyMode: false, outboundPortExclusionList: [6379]}
  certificate: {serviceCertValidityDuration: 1h}
");
    let Object::MeshConfig(mc) = object else {
        panic!("{object:?}")
    };
    let s = &mc.spec;
    assert!(!s.traffic.enable_permissive_traffic_policy_mode);
    assert!(s.traffic.enable_egress, "absent: OSM v1.2's install value");
    assert_eq!(s.traffic.outbound_port_exclusion_list, [6379]);
    assert_eq!(s.certificate.service_cert_validity_duration, "1h");
    assert_eq!(s.certificate.cert_key_bit_size, 2048);
    assert_eq!(s.sidecar.log_level, "error");
    assert_eq!(s.sidecar.tls_min_protocol_version, "TLSv1_2");
    assert_eq!(s.sidecar.local_proxy_mode, "Localhost");
    assert_eq!(s.observability.tracing.endpoint, "/api/v2/spans");
    assert!(s.feature_flags.enable_ingress_backend_policy && !s.feature_flags.enable_retry_policy);

    let v1 = one(
        "apiVersion: config.openservicemesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: osm-mesh-config}\n",
    );
    let Object::MeshConfig(v1) = v1 else { panic!() };
    assert_eq!(
        v1.spec,
        crate::resources::mesh_config::MeshConfigSpec::default(),
        "no spec: every default"
    );
    assert!(v1.spec.traffic.enable_permissive_traffic_policy_mode);
}

#[test]
fn policy_kinds() {
    let out = load_str(
        "policy.yaml",
        "apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: httpbin, namespace: bookbuyer}
spec:
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  hosts: [httpbin.org]
  ports: [{number: 80, protocol: http}]
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: bookstore, namespace: bookstore}
spec:
  backends: [{name: bookstore-v1, port: {number: 14001, protocol: http}}]
  sources: [{kind: IPRange, name: 10.0.0.0/8}, {kind: Service, name: ingress-nginx, namespace: ingress}]
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {name: retry, namespace: bookbuyer}
spec:
  source: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
  destinations: [{kind: Service, name: bookstore, namespace: bookstore}]
  retryPolicy: {retryOn: 5xx, perTryTimeout: 1s, numRetries: 5}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: UpstreamTrafficSetting
metadata: {name: limits, namespace: bookstore}
spec:
  host: bookstore.bookstore.svc.cluster.local
  connectionSettings: {tcp: {maxConnections: 100, connectTimeout: 2s}, http: {maxRequests: 50}}
  rateLimit: {local: {http: {requests: 10, unit: second, burst: 5}}}
  httpRoutes: [{path: /books.*, rateLimit: {local: {requests: 1, unit: minute}}}]
",
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let kinds: Vec<&str> = out.objects.iter().map(|l| l.object.kind()).collect();
    assert_eq!(
        kinds,
        [
            "Egress",
            "IngressBackend",
            "Retry",
            "UpstreamTrafficSetting"
        ]
    );
    let Object::Retry(r) = &out.objects[2].object else {
        panic!()
    };
    assert_eq!(r.spec.retry_policy.num_retries, 5);
    assert_eq!(
        r.spec.retry_policy.retry_backoff_base_interval, "25ms",
        "OSM's default"
    );
    let Object::UpstreamTrafficSetting(u) = &out.objects[3].object else {
        panic!()
    };
    let http = u
        .spec
        .rate_limit
        .as_ref()
        .and_then(|r| r.local.as_ref())
        .and_then(|l| l.http.as_ref())
        .expect("http");
    assert_eq!(
        (http.requests, http.unit.as_str(), http.burst),
        (10, "second", 5)
    );
    for o in &out.objects {
        assert!(
            crate::validate::validate(&o.object).is_empty(),
            "{:?}",
            crate::validate::validate(&o.object)
        );
    }
}
