use super::*;
use crate::load::load_str;

fn problems(yaml: &str) -> Vec<String> {
    let out = load_str("t.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    validate(&out.objects[0].object)
        .iter()
        .map(|p| format!("{:?} {p}", p.severity))
        .collect()
}

#[test]
fn a_valid_traffic_target_has_no_problem() {
    let yaml = "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: bookstore}\n\
        spec:\n  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}\n  \
        rules: [{kind: HTTPRouteGroup, name: routes, matches: [buy]}]\n  \
        sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]\n";
    assert!(problems(yaml).is_empty());
}

#[test]
fn traffic_target_problems() {
    let yaml = "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: bookstore}\n\
        spec:\n  destination: {kind: Pod, name: bookstore, namespace: other}\n  \
        rules: [{kind: GRPCRoute, name: r}, {kind: TCPRoute, name: tcp, matches: [x]}, {kind: UDPRoute, name: udp}]\n  \
        sources: [{kind: Group, name: admins}]\n";
    assert_eq!(
        problems(yaml),
        [
            "Reject spec.destination.kind: must be ServiceAccount, not \"Pod\"",
            "Reject spec.destination.namespace: must be the TrafficTarget's own namespace \"bookstore\", not \"other\"",
            "Reject spec.sources[0].kind: must be ServiceAccount, not \"Group\"",
            "Warn spec.sources[0].namespace: not set: taken as the TrafficTarget's namespace \"bookstore\"",
            "Reject spec.rules[0].kind: unknown rule kind \"GRPCRoute\" (HTTPRouteGroup, TCPRoute or UDPRoute)",
            "Warn spec.rules[1].matches: only HTTPRouteGroup rules have matches; ignored",
            "Warn spec.rules[2].kind: the mesh intercepts TCP only: this UDPRoute rule has no effect",
        ]
    );
    let empty = "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: n}\n\
        spec: {destination: {kind: ServiceAccount, name: a}}\n";
    assert_eq!(
        problems(empty),
        [
            "Reject spec.sources: at least one source is required",
            "Reject spec.rules: at least one rule is required"
        ]
    );
}

#[test]
fn http_route_group_problems() {
    let yaml = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: n}\n\
        spec:\n  matches:\n  - {name: a, pathRegex: '(', methods: [get]}\n  - {name: a, headers: {x-a: '['}}\n  - {name: ''}\n";
    assert_eq!(
        problems(yaml),
        [
            "Reject spec.matches[0].pathRegex: invalid regex \"(\": unclosed group",
            "Reject spec.matches[0].methods[0]: \"get\" is not an HTTP method (use upper case, or \"*\" for any)",
            "Reject spec.matches[1].name: \"a\" is used by another match",
            "Reject spec.matches[1].headers[\"x-a\"]: invalid regex \"[\": unclosed character class",
            "Reject spec.matches[2].name: is required",
        ]
    );
}

/// Regression (one tenant froze every proxy): a header *name* the proxy
/// cannot compile was accepted here, and the proxy refused every batch
/// carrying it. Validation now runs the proxy's own compile step.
#[test]
fn what_validation_accepts_the_proxy_compiles() {
    let yaml = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g, namespace: n}\n\
        spec:\n  matches:\n  - {name: a, headers: {'bad header': x}}\n  - {name: b, headers: {\"x-ok\": 'a)|(?:.*'}}\n";
    assert_eq!(
        problems(yaml),
        [
            "Reject spec.matches[0].headers[\"bad header\"]: \"bad header\" is not a valid header name",
            "Reject spec.matches[1].headers[\"x-ok\"]: invalid regex \"a)|(?:.*\": unopened group",
        ]
    );
}

#[test]
fn port_route_problems() {
    let yaml = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: r, namespace: n}\n\
        spec: {matches: {ports: [0, 80, 80]}}\n";
    assert_eq!(
        problems(yaml),
        [
            "Reject spec.matches.ports[0]: 0 is not a port (1-65535)",
            "Warn spec.matches.ports[2]: port 80 is listed twice"
        ]
    );
}

#[test]
fn traffic_split_problems() {
    let yaml = "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: bookstore}\n\
        spec:\n  service: bookstore.other.svc.cluster.local\n  \
        backends: [{service: bookstore, weight: 0}, {service: v2, weight: 0}, {service: v2, weight: 0}]\n  \
        matches: [{kind: TCPRoute, name: x}]\n";
    assert_eq!(
        problems(yaml),
        [
            "Reject spec.service: \"bookstore.other.svc.cluster.local\" is in namespace \"other\"; a split and its services share the split's namespace \"bookstore\"",
            "Reject spec.backends: the weights add up to 0: no backend would receive traffic",
            "Warn spec.backends[0].service: the root service \"bookstore\" is its own backend: its share goes to the root Service's endpoints",
            "Reject spec.backends[2].service: \"v2\" is listed twice",
            "Reject spec.matches[0].kind: must be HTTPRouteGroup, not \"TCPRoute\"",
        ]
    );
    let ok = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s, namespace: bookstore}\n\
        spec: {service: bookstore.bookstore, backends: [{service: bookstore-v1, weight: 1}]}\n";
    assert!(problems(ok).is_empty());
    assert!(rejects(&[Problem {
        severity: Severity::Reject,
        field: "f".into(),
        message: "m".into()
    }]));
    assert!(!rejects(&[Problem {
        severity: Severity::Warn,
        field: "f".into(),
        message: "m".into()
    }]));
}

#[test]
fn mesh_config_problems() {
    let yaml = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: other, namespace: osm-system}\n\
        spec:\n  sidecar: {logLevel: loud, tlsMinProtocolVersion: TLSv1_3, tlsMaxProtocolVersion: TLSv1_2, localProxyMode: Remote}\n  \
        traffic: {outboundIPRangeExclusionList: [10.0.0.0/33], inboundPortExclusionList: [0]}\n  \
        certificate: {serviceCertValidityDuration: forever, certKeyBitSize: 1024}\n";
    assert_eq!(
        problems(yaml),
        [
            "Warn metadata.name: only osm-mesh-config in the control-plane namespace configures the mesh; this one is ignored",
            "Reject spec.sidecar.logLevel: \"loud\" is not a log level (trace, debug, info, warn, error, off)",
            "Reject spec.sidecar.tlsMinProtocolVersion: is above tlsMaxProtocolVersion",
            "Reject spec.sidecar.localProxyMode: \"Remote\" is not Localhost or PodIP",
            "Reject spec.traffic.outboundIPRangeExclusionList[0]: \"10.0.0.0/33\" is not a CIDR (e.g. 10.0.0.0/8)",
            "Reject spec.traffic.inboundPortExclusionList[0]: 0 is not a port (1-65535)",
            "Reject spec.certificate.serviceCertValidityDuration: \"forever\" is not a duration (e.g. 24h, 90m, 30s, 250ms)",
            "Reject spec.certificate.certKeyBitSize: 1024 is not within 2048-4096",
        ]
    );
    let tracing = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
        spec:\n  observability: {tracing: {enable: true, address: 'jaeger:9411', port: 0, endpoint: api/v2/spans, sampledFraction: 2}, accessLog: {format: xml}}\n";
    assert_eq!(
        problems(tracing),
        [
            "Reject spec.observability.tracing.sampledFraction: 2 is not within 0 and 1 (0.01 traces one request in a hundred)",
            "Reject spec.observability.tracing.address: \"jaeger:9411\" is not a host name or address (e.g. jaeger.osm-system.svc.cluster.local)",
            "Reject spec.observability.tracing.port: 0 is not a port (Zipkin listens on 9411)",
            "Reject spec.observability.tracing.endpoint: \"api/v2/spans\" is not a path (/api/v2/spans for Zipkin, /v1/traces for OTLP)",
            "Reject spec.observability.accessLog.format: \"xml\" is not json or text",
        ]
    );
}

#[test]
fn policy_problems() {
    let egress = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: n}\n\
        spec: {sources: [{kind: Pod, name: x}], ports: [{number: 0, protocol: ftp}], matches: [{kind: Secret, name: s}]}\n";
    assert_eq!(
        problems(egress),
        [
            "Reject spec.sources[0].kind: must be ServiceAccount, not \"Pod\"",
            "Reject spec.ports[0].number: 0 is not a port (1-65535)",
            "Reject spec.ports[0].protocol: \"ftp\" is not http, https, tcp or tcp-server-first",
            "Reject spec: hosts or ipAddresses must name the destinations",
            "Reject spec.matches[0].kind: \"Secret\" is not one of HTTPRouteGroup, UpstreamTrafficSetting",
        ]
    );
    let ingress = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: IngressBackend\nmetadata: {name: i, namespace: n}\n\
        spec: {backends: [{name: web, port: {number: 443, protocol: https}}], sources: [{kind: IPRange, name: nowhere}, {kind: Pod, name: p}]}\n";
    assert_eq!(
        problems(ingress),
        [
            "Reject spec.sources[0].name: \"nowhere\" is not a CIDR (e.g. 10.0.0.0/8)",
            "Reject spec.sources[1].kind: \"Pod\" is not Service, IPRange or AuthenticatedPrincipal",
            "Warn spec.sources: an https backend that validates client certificates needs an AuthenticatedPrincipal source",
        ]
    );
    let retry = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Retry\nmetadata: {name: r, namespace: n}\n\
        spec: {source: {kind: Service, name: a}, destinations: [], retryPolicy: {perTryTimeout: soon}}\n";
    assert_eq!(
        problems(retry),
        [
            "Reject spec.source.kind: must be ServiceAccount, not \"Service\"",
            "Reject spec.destinations: at least one destination is required",
            "Warn spec.retryPolicy.retryOn: no condition: nothing is retried",
            "Reject spec.retryPolicy.perTryTimeout: \"soon\" is not a duration (e.g. 24h, 90m, 30s, 250ms)",
        ]
    );
    let conditions = |retry_on: &str, codes: &str| {
        problems(&format!(
            "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Retry\nmetadata: {{name: r, namespace: n}}\n\
             spec: {{source: {{kind: ServiceAccount, name: a}}, destinations: [{{kind: Service, name: b}}], \
             retryPolicy: {{retryOn: '{retry_on}', retriableStatusCodes: [{codes}]}}}}\n"
        ))
    };
    assert_eq!(
        conditions("5xx,sometimes", ""),
        [
            "Reject spec.retryPolicy.retryOn: \"sometimes\" is not a retry condition (one of 5xx, \
          gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes)"
        ]
    );
    assert_eq!(
        conditions("retriable-status-codes", ""),
        [
            "Reject spec.retryPolicy.retriableStatusCodes: retriable-status-codes in retryOn needs the codes to retry here"
        ]
    );
    assert_eq!(
        conditions("5xx", "429, 700"),
        [
            "Reject spec.retryPolicy.retriableStatusCodes[1]: 700 is not an HTTP status code",
            "Warn spec.retryPolicy.retriableStatusCodes: has no effect without retriable-status-codes in retryOn",
        ]
    );
    assert!(conditions("gateway-error, retriable-status-codes", "429").is_empty());
    let uts = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: u, namespace: n}\n\
        spec: {host: '', rateLimit: {local: {http: {requests: 1, unit: day, responseStatusCode: 200}}}, httpRoutes: [{path: '('}]}\n";
    assert_eq!(
        problems(uts),
        [
            "Reject spec.host: is required",
            "Reject spec.rateLimit.local.http.unit: \"day\" is not second, minute or hour",
            "Reject spec.rateLimit.local.http.responseStatusCode: 200 is not within 400-599",
            "Reject spec.httpRoutes[0].path: invalid regex \"(\": unclosed group",
        ]
    );
    let outlier = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: u, namespace: n}\n\
        spec: {host: store, outlierDetection: {consecutive5xx: 0, interval: often, baseEjectionTime: 1m, maxEjectionPercent: 120}}\n";
    assert_eq!(
        problems(outlier),
        [
            "Reject spec.outlierDetection.consecutive5xx: must be at least 1 (leave outlierDetection out to turn detection off)",
            "Reject spec.outlierDetection.interval: \"often\" is not a duration (e.g. 24h, 90m, 30s, 250ms)",
            "Reject spec.outlierDetection.maxEjectionPercent: 120 is not within 1-100",
        ]
    );
}

/// Regression: response headers a rate limit adds were not checked, and a
/// name the proxy cannot build made it refuse the whole config batch.
#[test]
fn rate_limit_headers_must_be_headers() {
    let uts = "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: u, namespace: n}\n\
        spec: {host: store, rateLimit: {local: {http: {requests: 1, unit: second, responseHeadersToAdd: [{name: 'x y', value: ok}, {name: x-ok, value: \"a\\nb\"}]}}}}\n";
    assert_eq!(
        problems(uts),
        [
            "Reject spec.rateLimit.local.http.responseHeadersToAdd[0].name: \"x y\" is not a valid header name",
            "Reject spec.rateLimit.local.http.responseHeadersToAdd[1].value: \"a\\nb\" is not a valid header value",
        ]
    );
}

/// Regression (issue 14, item 8): a huge leaf lifetime panicked the CA and
/// a tiny one made every proxy re-certify in a loop.
#[test]
fn certificate_lifetimes_are_bounded() {
    let mesh = |validity: &str| {
        format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
             spec: {{certificate: {{serviceCertValidityDuration: {validity}}}}}\n"
        )
    };
    assert!(problems(&mesh("24h")).is_empty());
    for (validity, want) in [
        (
            "1ms",
            "Reject spec.certificate.serviceCertValidityDuration: \"1ms\" is not within 2s and 8760h (a year)",
        ),
        (
            "100000000h",
            "Reject spec.certificate.serviceCertValidityDuration: \"100000000h\" is not within 2s and 8760h (a year)",
        ),
        (
            "30s",
            "Warn spec.certificate.serviceCertValidityDuration: \"30s\": every proxy re-certifies every 20s or so",
        ),
    ] {
        let got = problems(&mesh(validity));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(want), "{got:?}");
    }
}

#[test]
fn external_authorization_is_refused_as_not_built() {
    let mesh = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
        spec: {traffic: {inboundExternalAuthorization: {enable: true, address: opa.opa, port: 9191}}}\n";
    let problems = problems(mesh);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "Reject spec.traffic.inboundExternalAuthorization.enable: external authorization (ext_authz) is not built into osm-proxy"
        ),
        "{problems:?}"
    );
}

#[test]
fn tls_settings_name_what_the_proxies_can_build() {
    let mesh = |sidecar: &str| {
        problems(&format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
             spec: {{sidecar: {sidecar}}}\n"
        ))
    };
    assert!(
        mesh("{tlsMinProtocolVersion: TLSv1_3, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256, TLS_AES_256_GCM_SHA384], ecdhCurves: [X25519, P-256]}")
            .is_empty()
    );
    assert_eq!(
        mesh(
            "{cipherSuites: [AES128-SHA, ECDHE-RSA-AES128-GCM-SHA256], ecdhCurves: [brainpoolP256r1]}"
        ),
        [
            "Reject spec.sidecar.cipherSuites[0]: \"AES128-SHA\" is not a cipher suite the proxies support (one of \
             ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305, \
             ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384, ECDHE-RSA-CHACHA20-POLY1305, \
             TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)",
            "Warn spec.sidecar.cipherSuites[1]: ECDHE-RSA-AES128-GCM-SHA256 is never negotiated: mesh certificates are ECDSA",
            "Reject spec.sidecar.ecdhCurves[0]: \"brainpoolP256r1\" is not one of X25519, P-256, P-384",
        ]
    );
    assert_eq!(
        mesh("{tlsMaxProtocolVersion: TLSv1_2, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]}"),
        [
            "Warn spec.sidecar.cipherSuites[0]: ECDHE-RSA-AES128-GCM-SHA256 is never negotiated: mesh certificates are ECDSA",
            "Reject spec.sidecar.cipherSuites: with TLS 1.2 at most, no listed suite works with mesh (ECDSA) certificates: \
             add an ECDHE-ECDSA suite",
        ]
    );
    assert_eq!(
        mesh("{tlsMinProtocolVersion: TLSv1_0, tlsMaxProtocolVersion: TLSv1_1}"),
        [
            "Warn spec.sidecar.tlsMinProtocolVersion: TLSv1_0 is not supported: the proxies speak TLS 1.2 and 1.3 (1.2 is the minimum)",
            "Reject spec.sidecar.tlsMaxProtocolVersion: TLSv1_1 leaves nothing: the proxies speak TLS 1.2 and 1.3 only",
        ]
    );
}

#[test]
fn egress_hosts_are_names_or_leading_wildcards() {
    let egress = |hosts: &str| {
        problems(&format!(
            "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Egress\nmetadata: {{name: e, namespace: n}}\n\
             spec: {{sources: [{{kind: ServiceAccount, name: a}}], hosts: {hosts}, ports: [{{number: 443, protocol: https}}]}}\n"
        ))
    };
    assert!(egress("[github.com, '*.googleapis.com', Example.COM.]").is_empty());
    assert_eq!(
        egress("['*', 'api.*.com', 'a b.com']"),
        [
            "Reject spec.hosts[0]: \"*\" is not a host name or a wildcard like *.example.com (which matches every name below example.com)",
            "Reject spec.hosts[1]: \"api.*.com\" is not a host name or a wildcard like *.example.com (which matches every name below example.com)",
            "Reject spec.hosts[2]: \"a b.com\" is not a host name or a wildcard like *.example.com (which matches every name below example.com)",
        ]
    );
}
