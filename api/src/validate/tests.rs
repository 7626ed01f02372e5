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
