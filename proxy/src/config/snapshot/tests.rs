use super::*;
use crate::config::parse_config;

fn build(yaml: &str) -> Result<Snapshot, ConfigError> {
    let config = parse_config("t.yaml", yaml).expect("parses");
    build_snapshot(config, 1, &EndpointRegistry::default())
}

const GOOD: &str = r#"
mesh: {permissive: false, egress: true}
inbound:
- port: 8080
  protocol: PROTOCOL_HTTP1
  authorizations:
  - name: bookstore/bookstore
    sources: ["spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"]
    http: {matches: [{name: buy, pathRegex: "/books.*", methods: ["GET"]}]}
  plaintextSources: ["10.0.0.0/8", "192.168.1.1"]
endpoints:
- key: bookstore/bookstore-v1:14001
  endpoints:
  - {address: "10.1.0.5:14001", identity: "spiffe://cluster.local/ns/bookstore/sa/bookstore"}
- key: bookstore/bookstore-v2:14001
  endpoints: []
- key: bookstore/bookstore:14001
  endpoints: []
outbound:
- key: bookstore/bookstore:14001
  port: 14001
  hostnames: [bookstore, bookstore.bookstore, "bookstore.bookstore.svc.cluster.local."]
  vips: ["10.96.0.20"]
  endpoints: bookstore/bookstore:14001
  split:
  - {endpoints: bookstore/bookstore-v1:14001, weight: 90}
  - {endpoints: bookstore/bookstore-v2:14001, weight: 10}
"#;

#[test]
fn a_valid_config_is_indexed() {
    let s = build(GOOD).expect("valid");
    assert!(!s.mesh.permissive);
    assert!(s.mesh.egress);
    assert_eq!(s.mesh.trust_domain, "cluster.local");
    let policy = &s.inbound[&8080];
    assert!(policy.admits_plaintext("10.2.3.4".parse().expect("ip")));
    assert!(policy.admits_plaintext("192.168.1.1".parse().expect("ip")));
    assert!(!policy.admits_plaintext("192.168.1.2".parse().expect("ip")));
    let svc = &s.outbound_by_addr[&"10.96.0.20:14001"
        .parse::<std::net::SocketAddr>()
        .expect("addr")];
    assert_eq!(&*svc.key, "bookstore/bookstore:14001");
    assert_eq!(svc.split.as_ref().expect("split").backends.len(), 2);
    let by_host = s
        .service_by_host("bookstore.bookstore.svc.cluster.local", 14001)
        .expect("found by its qualified name");
    assert_eq!(&*by_host.key, "bookstore/bookstore:14001");
    assert!(
        s.service_by_host("bookstore.bookstore.svc.cluster", 14001)
            .is_none()
    );
    assert!(
        s.service_by_host("bookstore.bookstore", 80).is_none(),
        "another port"
    );
}

#[test]
fn invalid_fields_are_named() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "inbound:\n- port: 0\n",
            "inbound[0].port",
            "0 is not a port (1-65535)",
        ),
        (
            "inbound:\n- port: 70000\n",
            "inbound[0].port",
            "70000 is not a port (1-65535)",
        ),
        (
            "inbound:\n- port: 1\n- port: 1\n",
            "inbound[1].port",
            "port 1 is listed twice",
        ),
        (
            "inbound:\n- port: 1\n  authorizations:\n  - sources: [bookbuyer]\n",
            "inbound[0].authorizations[0].sources[0]",
            "\"bookbuyer\" is not a mesh identity",
        ),
        (
            "inbound:\n- port: 1\n  authorizations:\n  - sources: []\n    http: {matches: [{pathRegex: '('}]}\n",
            "inbound[0].authorizations[0].http.matches[0].pathRegex",
            "invalid regex",
        ),
        (
            "inbound:\n- port: 1\n  plaintextSources: [nope]\n",
            "inbound[0].plaintextSources[0]",
            "\"nope\" is not an IP",
        ),
        (
            "endpoints:\n- key: a\n  endpoints: [{address: 'x'}]\n",
            "endpoints[0].endpoints[0].address",
            "\"x\" is not an ip:port",
        ),
        (
            "endpoints:\n- key: a\n  endpoints: [{address: '1.2.3.4:1', identity: 'spiffe://x'}]\n",
            "endpoints[0].endpoints[0].identity",
            "is not a mesh identity",
        ),
        (
            "outbound:\n- key: a\n  port: 80\n  endpoints: missing\n",
            "outbound[0].endpoints",
            "no endpoint set has the key \"missing\"",
        ),
        (
            "endpoints: [{key: e}]\noutbound:\n- {key: a, port: 80, endpoints: e, split: [{endpoints: e, weight: 0}]}\n",
            "outbound[0].split",
            "the weights add up to 0",
        ),
        (
            "endpoints: [{key: e}]\noutbound:\n- {key: a, port: 80, endpoints: e, vips: ['1.1.1.1']}\n- {key: b, port: 80, endpoints: e, vips: ['1.1.1.1']}\n",
            "outbound[1].vips[0]",
            "1.1.1.1:80 is already the address of a",
        ),
        (
            "endpoints: [{key: e}]\noutbound:\n- {key: a, port: 80, endpoints: e, hostnames: ['a:81']}\n",
            "outbound[0].hostnames[0]",
            "\"a:81\" names port 81, the service port is 80",
        ),
        (
            "trustBundle: {pem: 'not pem'}\n",
            "trustBundle.pem",
            "no certificate in the PEM data",
        ),
    ];
    for (yaml, field, message) in cases {
        let err = build(yaml).expect_err(yaml);
        assert_eq!(err.field, *field, "{yaml}");
        assert!(
            err.message.contains(message),
            "{yaml}: {:?} should contain {message:?}",
            err.message
        );
    }
}

#[test]
fn endpoint_handles_survive_a_rebuild() {
    let registry = EndpointRegistry::default();
    let config = parse_config("t.yaml", GOOD).expect("parses");
    let first = build_snapshot(config.clone(), 1, &registry).expect("valid");
    let second = build_snapshot(config, 2, &registry).expect("valid");
    let ep = |s: &Snapshot| {
        s.outbound_by_addr[&"10.96.0.20:14001"
            .parse::<std::net::SocketAddr>()
            .expect("addr")]
            .split
            .as_ref()
            .expect("split")
            .backends[0]
            .endpoints()[0]
            .clone()
    };
    assert!(Arc::ptr_eq(&ep(&first), &ep(&second)));
}

/// The config_update fuzz target starts from a deep valid input: its seed
/// with routes, retries, limits, outlier detection and TLS settings (after
/// its first byte, where the target splits it in two batches) is a config
/// the proxy builds whole.
#[test]
fn the_fuzz_seed_with_routes_and_resilience_builds() {
    use prost::Message as _;
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/config_update/outbound-routes-resilience"
    ))
    .unwrap();
    let update = v1::ConfigUpdate::decode(&bytes[1..]).unwrap();
    let config = osm_api::protocol::apply_update(&v1::ProxyConfig::default(), &update).unwrap();
    let snapshot = build_snapshot(config, 1, &EndpointRegistry::default()).unwrap();
    let service = &snapshot.outbound_by_host["echo.shop"][0].service;
    assert!(service.retry.is_some());
    assert_eq!(service.routes.as_ref().map(|r| r.rules.len()), Some(2));
    assert!(service.endpoints.breaker.is_some() && service.endpoints.outlier.is_some());
    assert!(snapshot.mesh.app_on_pod_ip);
    assert_eq!(snapshot.mesh.tls.min, Some(2));
}

/// A meshed pod dialled at its own address is reached with mTLS as
/// itself (one endpoint, its identity), without the Service's routes; a
/// pod outside the mesh (no identity) is not.
#[test]
fn meshed_pods_are_reachable_at_their_own_address() {
    let yaml = r#"
endpoints:
- key: shop/echo:80
  endpoints:
  - {address: "10.1.0.5:8080", identity: "spiffe://cluster.local/ns/shop/sa/echo", pod: echo-a}
  - {address: "10.1.0.6:8080", identity: "spiffe://cluster.local/ns/shop/sa/echo", pod: echo-b}
  - {address: "10.1.0.7:8080"}
outbound:
- key: shop/echo:80
  namespace: shop
  name: echo
  port: 80
  vips: ["10.96.0.20"]
  protocol: PROTOCOL_HTTP1
  endpoints: shop/echo:80
  routes: [{name: shop/r/0, backends: [{endpoints: shop/echo:80, weight: 1}]}]
"#;
    let s = build(yaml).expect("valid");
    let pod = crate::routing::service_by_addr(&s, "10.1.0.6:8080".parse().expect("addr"))
        .expect("the pod's own address");
    assert_eq!(&*pod.key, "shop/echo:80@10.1.0.6:8080");
    assert_eq!(pod.port, 8080);
    assert_eq!(pod.endpoints.endpoints().len(), 1);
    assert_eq!(&*pod.endpoints.endpoints()[0].spec.pod, "echo-b");
    assert!(
        pod.routes.is_none(),
        "the Service's routes are the Service address's"
    );
    assert!(crate::routing::service_by_addr(&s, "10.1.0.7:8080".parse().expect("addr")).is_none());
    let service = &s.outbound_by_addr[&"10.96.0.20:80"
        .parse::<std::net::SocketAddr>()
        .expect("addr")];
    assert!(service.routes.is_some());
}

#[test]
fn a_pod_listed_by_two_services_is_named_after_the_first_by_key() {
    // The file lists b before a; the pod is a's.
    let yaml = r#"
endpoints:
- key: shop/b:80
  endpoints: [{address: "10.1.0.5:8080", identity: "spiffe://cluster.local/ns/shop/sa/echo", pod: echo-a}]
- key: shop/a:80
  endpoints: [{address: "10.1.0.5:8080", identity: "spiffe://cluster.local/ns/shop/sa/echo", pod: echo-a}]
outbound:
- {key: shop/b:80, port: 80, vips: ["10.96.0.21"], protocol: PROTOCOL_HTTP1, endpoints: shop/b:80}
- {key: shop/a:80, port: 80, vips: ["10.96.0.20"], protocol: PROTOCOL_HTTP1, endpoints: shop/a:80}
"#;
    let s = build(yaml).expect("valid");
    let pod = crate::routing::service_by_addr(&s, "10.1.0.5:8080".parse().expect("addr"))
        .expect("the pod's own address");
    assert_eq!(&*pod.key, "shop/a:80@10.1.0.5:8080");
}
