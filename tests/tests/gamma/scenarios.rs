//! Attachment, matching and weights: MeshBasic, MeshFrontend,
//! MeshFrontendHostname, MeshPorts, MeshConsumerRoute, MeshTrafficSplit,
//! MeshHTTPRouteSimpleSameNamespace, MeshHTTPRouteMatching,
//! MeshHTTPRouteQueryParamMatching, MeshHTTPRouteNamedRule,
//! MeshHTTPRouteWeight.

use super::{CONSUMER, Gamma, NS, http_route};

const SET_HEADER: &str = "type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}";

pub fn basic_and_frontends(g: &Gamma) {
    // MeshBasic: without routes, the Service answers.
    for host in ["echo", "echo-v1", "echo-v2"] {
        let url = format!("http://{host}/");
        let a = g.expect("MeshBasic", NS, &[&url], |a| a.status == 200);
        assert!(a.backend().starts_with(host), "MeshBasic: {a:?}");
    }

    // MeshHTTPRouteSimpleSameNamespace: a route on echo sends to echo-v1.
    let _route = g.route(&http_route(
        "simple",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo, port: 80}]\n  rules: [{backendRefs: [{name: echo-v1, port: 80}]}]\n",
    ));
    g.expect_backend(
        "MeshHTTPRouteSimpleSameNamespace",
        &["http://echo/"],
        "echo-v1",
    );
    drop(_route);

    // MeshFrontend and MeshFrontendHostname (mesh-frontend.yaml): a route
    // on echo-v2 applies to requests to echo-v2's address, whatever their
    // Host, and not to the pod's own address.
    let _route = g.route(&http_route(
        "mesh-split-v1",
        NS,
        &format!("  parentRefs: [{{group: '', kind: Service, name: echo-v2}}]\n  rules: [{{filters: [{{{SET_HEADER}}}], backendRefs: [{{name: echo-v2, port: 80}}]}}]\n"),
    ));
    g.expect(
        "MeshFrontend (to the Service)",
        NS,
        &["http://echo-v2/"],
        |a| a.status == 200 && a.header("x-header-set") == Some("set") && a.backend() == "echo-v2",
    );
    let v2_ip = g
        .mesh
        .pod_of(NS, "echo-v2")
        .and_then(|p| p.pointer("/status/podIP")?.as_str().map(str::to_string))
        .expect("echo-v2 has an IP");
    g.expect(
        "MeshFrontend (to the pod)",
        NS,
        &[&format!("http://{v2_ip}:8080/")],
        |a| a.status == 200 && a.header("x-header-set").is_none() && a.backend() == "echo-v2",
    );
    g.expect(
        "MeshFrontendHostname",
        NS,
        &["http://echo-v2/", "host:echo-v1"],
        |a| a.status == 200 && a.header("x-header-set") == Some("set") && a.backend() == "echo-v2",
    );
    g.expect(
        "MeshFrontendHostname",
        NS,
        &["http://echo-v1/", "host:echo-v2"],
        |a| a.status == 200 && a.header("x-header-set").is_none() && a.backend() == "echo-v1",
    );
}

pub fn ports_and_consumers(g: &Gamma) {
    // MeshPorts: a parentRef port narrows the route to that port.
    let v1 = g.route(&http_route(
        "mesh-ports-v1",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo-v1, port: 80}]\n  rules: [{filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}}], backendRefs: [{name: echo-v1, port: 80}]}]\n",
    ));
    let v2 = g.route(&http_route(
        "mesh-ports-v2",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo-v2}]\n  rules: [{filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v2}]}}], backendRefs: [{name: echo-v2, port: 80}]}]\n",
    ));
    g.expect("MeshPorts (port set)", NS, &["http://echo-v1/"], |a| {
        a.header("x-header-set") == Some("v1")
    });
    g.expect(
        "MeshPorts (excluded port)",
        NS,
        &["http://echo-v1:8080/"],
        |a| a.status == 200 && a.header("x-header-set").is_none(),
    );
    for url in ["http://echo-v2/", "http://echo-v2:8080/"] {
        g.expect("MeshPorts (no port set)", NS, &[url], |a| {
            a.header("x-header-set") == Some("v2")
        });
    }
    drop((v1, v2));

    // MeshConsumerRoute: a route in another namespace than its parent
    // changes requests from its own namespace only.
    let parent = format!("{{group: '', kind: Service, name: echo-v1, namespace: {NS}, port: 80}}");
    let _route = g.route(&http_route(
        "mesh-consumer-route",
        CONSUMER,
        &format!("  parentRefs: [{parent}]\n  rules: [{{filters: [{{{SET_HEADER}}}], backendRefs: [{{name: echo-v1, namespace: {NS}, port: 80}}]}}]\n"),
    ));
    let url = format!("http://echo-v1.{NS}/");
    g.expect("MeshConsumerRoute (consumer)", CONSUMER, &[&url], |a| {
        a.status == 200 && a.header("x-header-set") == Some("set") && a.backend() == "echo-v1"
    });
    g.expect("MeshConsumerRoute (producer)", NS, &[&url], |a| {
        a.status == 200 && a.header("x-header-set").is_none()
    });
}

pub fn matching(g: &Gamma) {
    // MeshTrafficSplit (mesh-split.yaml): paths choose the version.
    let split = g.route(&http_route(
        "mesh-split",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - matches: [{path: {type: Exact, value: /v1}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - matches: [{path: {type: Exact, value: /v2}}]\n    backendRefs: [{name: echo-v2, port: 80}]\n",
    ));
    g.expect_backend("MeshTrafficSplit", &["http://echo/v1"], "echo-v1");
    g.expect_backend("MeshTrafficSplit", &["http://echo/v2"], "echo-v2");

    // An SMI TrafficSplit on the same Service: applied with a warning
    // naming the route, and the route still decides.
    let smi = format!(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {{name: all-v1, namespace: {NS}}}\n\
         spec: {{service: echo, backends: [{{service: echo-v1, weight: 1}}]}}\n"
    );
    let file = g.mesh.state_dir().join("gamma-split.yaml");
    std::fs::write(&file, &smi).expect("write the split");
    let applied = g
        .mesh
        .osm(&["local", "apply", "-f", file.to_str().expect("utf-8")]);
    let warned = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{warned}");
    assert!(
        warned.contains("Warning:")
            && warned.contains("HTTPRoute gateway-conformance-mesh/mesh-split routes Service"),
        "the conflict is reported at apply: {warned}"
    );
    g.expect_backend(
        "MeshTrafficSplit (with an SMI split)",
        &["http://echo/v2"],
        "echo-v2",
    );
    g.mesh.delete(&smi);
    drop(split);

    // MeshHTTPRouteMatching: prefixes match whole path elements; a header
    // match ORed with a path.
    let matching = g.route(&http_route(
        "mesh-matching",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]\n    backendRefs: [{name: echo-v2, port: 80}]\n",
    ));
    let cases: &[(&[&str], &str)] = &[
        (&["http://echo/"], "echo-v1"),
        (&["http://echo/example"], "echo-v1"),
        (&["http://echo/v2"], "echo-v2"),
        (&["http://echo/v2/example"], "echo-v2"),
        (&["http://echo/", "version:two"], "echo-v2"),
        (&["http://echo/v2example"], "echo-v1"),
        (&["http://echo/foo/v2/example"], "echo-v1"),
    ];
    for (args, backend) in cases {
        g.expect_backend("MeshHTTPRouteMatching", args, backend);
    }
    drop(matching);

    // MeshHTTPRouteQueryParamMatching: more query matches win; no match
    // is answered 404.
    let query = g.route(&http_route(
        "mesh-query",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - matches: [{queryParams: [{name: animal, value: whale}]}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - matches: [{queryParams: [{name: animal, value: dolphin}]}]\n    backendRefs: [{name: echo-v2, port: 80}]\n  - matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}]\n    backendRefs: [{name: echo-v1, port: 80}]\n",
    ));
    let cases: &[(&str, &str)] = &[
        ("http://echo/?animal=whale", "echo-v1"),
        ("http://echo/?animal=dolphin", "echo-v2"),
        ("http://echo/?animal=dolphin&color=blue", "echo-v1"),
        ("http://echo/?color=blue&animal=dolphin", "echo-v1"),
    ];
    for (url, backend) in cases {
        g.expect_backend("MeshHTTPRouteQueryParamMatching", &[url], backend);
    }
    g.expect(
        "MeshHTTPRouteQueryParamMatching (no match)",
        NS,
        &["http://echo/?animal=shark"],
        |a| a.status == 404,
    );
    drop(query);

    // MeshHTTPRouteNamedRule: named rules route like unnamed ones.
    let _named = g.route(&http_route(
        "mesh-named-rule",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - name: name-v1\n    matches: [{path: {type: PathPrefix, value: /v1}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - name: name-v2\n    matches: [{path: {type: PathPrefix, value: /v2}}]\n    backendRefs: [{name: echo-v2, port: 80}]\n",
    ));
    g.expect_backend("MeshHTTPRouteNamedRule", &["http://echo/v1"], "echo-v1");
    g.expect_backend("MeshHTTPRouteNamedRule", &["http://echo/v2"], "echo-v2");
}

/// How many requests a weighted split is judged by. Within 10% of the
/// total is 4.4 standard deviations of a binomial at 70/30 over 400
/// requests (1 run in 100,000 fails by chance; over 200 it was 3.1, 1 in
/// 500, and ten tallies in one run spread as 8.5 where 6.5 was expected).
pub(super) const WEIGHED: u32 = 400;

/// Whether `got` is within `tolerance` (a fraction of `total`) of
/// `weight` parts of `sum`.
pub(super) fn near(got: u32, weight: u32, sum: u32, total: u32, tolerance: f64) -> bool {
    let expected = f64::from(total) * f64::from(weight) / f64::from(sum);
    (f64::from(got) - expected).abs() <= tolerance * f64::from(total)
}

pub fn weights(g: &Gamma) {
    // MeshHTTPRouteWeight: 70/30, judged by the counts of WEIGHED requests.
    let _route = g.route(&http_route(
        "mesh-weighted",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo, port: 80}]\n  rules:\n  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Routed, value: weighted}]}}]\n    backendRefs:\n    - {name: echo-v1, port: 80, weight: 70}\n    - {name: echo-v2, port: 80, weight: 30}\n",
    ));
    // Counted once the route is in place (its header): before it, the
    // Service's own balancing answers.
    g.expect("MeshHTTPRouteWeight", NS, &["http://echo/"], |a| {
        a.header("x-routed") == Some("weighted")
    });
    let tally = g.tally(NS, &["http://echo/"], WEIGHED);
    let (v1, v2) = (
        tally.get("echo-v1").copied().unwrap_or(0),
        tally.get("echo-v2").copied().unwrap_or(0),
    );
    assert_eq!(
        v1 + v2,
        WEIGHED,
        "MeshHTTPRouteWeight: every request answered: {tally:?}"
    );
    assert!(
        near(v1, 70, 100, WEIGHED, 0.1) && near(v2, 30, 100, WEIGHED, 0.1),
        "MeshHTTPRouteWeight: {tally:?}"
    );
}
