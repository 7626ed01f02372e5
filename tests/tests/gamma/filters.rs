//! Filters, gRPC, timeouts and status: MeshHTTPRouteRequestHeaderModifier,
//! MeshHTTPRouteBackendRequestHeaderModifier, RequestMirror,
//! MeshHTTPRouteRewritePath,
//! the redirect scenarios, MeshGRPCRouteWeight,
//! MeshGRPCRouteRequestHeaderModifier, a request timeout (504), a route
//! to a Service of an unmonitored namespace, and status for a missing
//! backend.

use serde_json::Value;

use osm_tests::local::poll_until;

use super::{Gamma, NS, http_route};

pub fn header_modifiers(g: &Gamma) {
    // MeshHTTPRouteRequestHeaderModifier: set overwrites, add appends,
    // remove drops.
    let route = g.route(&http_route(
        "request-header-modifier",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n        set: [{name: X-Header-Set, value: set-overwrites-values}]\n        add: [{name: X-Header-Add, value: add-appends-values}]\n        remove: [X-Header-Remove]\n    backendRefs: [{name: echo-v1, port: 80}]\n",
    ));
    let a = g.expect(
        "MeshHTTPRouteRequestHeaderModifier",
        NS,
        &[
            "http://echo/",
            "x-header-set:some-other-value",
            "x-header-add:original",
            "x-header-remove:gone",
        ],
        |a| a.seen("x-header-set") == Some("set-overwrites-values"),
    );
    assert_eq!(
        a.body["headers"]["x-header-add"],
        serde_json::json!(["original", "add-appends-values"]),
        "MeshHTTPRouteRequestHeaderModifier: {a:?}"
    );
    assert!(
        a.seen("x-header-remove").is_none(),
        "MeshHTTPRouteRequestHeaderModifier: {a:?}"
    );
    drop(route);

    // MeshHTTPRouteBackendRequestHeaderModifier: a filter on one backend
    // applies to requests sent to it only.
    let _route = g.route(&http_route(
        "backend-request-header-modifier",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - backendRefs:\n    - name: echo-v1\n      port: 80\n      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Backend, value: v1}]}}]\n    - {name: echo-v2, port: 80}\n",
    ));
    g.expect(
        "MeshHTTPRouteBackendRequestHeaderModifier",
        NS,
        &["http://echo/"],
        |a| a.backend() == "echo-v1" && a.seen("x-backend") == Some("v1"),
    );
    g.expect(
        "MeshHTTPRouteBackendRequestHeaderModifier",
        NS,
        &["http://echo/"],
        |a| a.backend() == "echo-v2" && a.seen("x-backend").is_none(),
    );
}

pub fn mirror(g: &Gamma) {
    // RequestMirror: echo-v1 answers, echo-v2 gets a copy (its log shows
    // the request, as the upstream suite checks).
    let _route = g.route(&http_route(
        "request-mirror",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /mirror}}]\n    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo-v2, port: 80}}}, {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Routed, value: mirror}]}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n",
    ));
    // Once the route is in place (its header), a request with a path of
    // its own reaches echo-v1 and a copy echo-v2, which no answer of
    // echo-v2 before the route could have logged.
    g.expect("RequestMirror", NS, &["http://echo/mirror/warm-up"], |a| {
        a.header("x-routed") == Some("mirror")
    });
    let path = format!("/mirror/{}", fastrand::u64(..));
    let url = format!("http://echo{path}");
    let a = g.expect("RequestMirror", NS, &[&url], |a| a.status == 200);
    assert_eq!(a.backend(), "echo-v1", "{a:?}");
    let logged = poll_until(super::PATIENCE, || {
        let log = g
            .mesh
            .ok(&["local", "logs", "-n", NS, "deploy/echo-v2", "-c", "echo-v2"]);
        log.contains(&format!("GET {path} ")).then_some(())
    });
    assert!(
        logged.is_some(),
        "RequestMirror: echo-v2 never logged {path}"
    );
}

pub fn rewrites(g: &Gamma) {
    // MeshHTTPRouteRewritePath: prefix and full path replacement.
    let _route = g.route(&http_route(
        "rewrite-path",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /prefix/one}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - matches: [{path: {type: PathPrefix, value: /strip-prefix}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n  - matches: [{path: {type: PathPrefix, value: /full/one}}]\n    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example, path: {type: ReplaceFullPath, replaceFullPath: /one}}}]\n    backendRefs: [{name: echo-v1, port: 80}]\n",
    ));
    let cases: &[(&str, &str)] = &[
        ("http://echo/prefix/one/two", "/one/two"),
        ("http://echo/prefix/one", "/one"),
        ("http://echo/strip-prefix/three", "/three"),
        ("http://echo/strip-prefix", "/"),
        ("http://echo/full/one/two", "/one"),
    ];
    for (url, path) in cases {
        g.expect("MeshHTTPRouteRewritePath", NS, &[url], |a| {
            a.body["path"] == *path
        });
    }
    let a = g.expect(
        "MeshHTTPRouteRewritePath (hostname)",
        NS,
        &["http://echo/full/one"],
        |a| a.status == 200,
    );
    assert_eq!(a.body["host"], "rewritten.example", "{a:?}");
}

pub fn redirects(g: &Gamma) {
    // The redirect scenarios: host and status, path, port, scheme, and
    // the 303/307/308 codes; the proxy answers with Location.
    let redirect = |path: &str, filter: &str| {
        format!(
            "  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n    filters: [{{type: RequestRedirect, requestRedirect: {filter}}}]\n"
        )
    };
    let mut spec = "  parentRefs: [{group: '', kind: Service, name: echo}]\n  rules:\n".to_string();
    spec += &redirect("/hostname-redirect", "{hostname: example.org}");
    spec += &redirect(
        "/host-and-status",
        "{hostname: example.org, statusCode: 301}",
    );
    spec += &redirect(
        "/full-path",
        "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}",
    );
    spec += &redirect(
        "/original-prefix",
        "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}",
    );
    spec += &redirect("/port", "{port: 8083}");
    spec += &redirect("/scheme", "{scheme: https}");
    spec += &redirect("/scheme-and-port", "{scheme: https, port: 8443}");
    spec += &redirect("/see-other", "{statusCode: 303, hostname: example.org}");
    spec += &redirect("/temporary", "{statusCode: 307, hostname: example.org}");
    spec += &redirect("/permanent", "{statusCode: 308, hostname: example.org}");
    let _route = g.route(&http_route("redirects", NS, &spec));
    let cases: &[(&str, u16, &str)] = &[
        (
            "/hostname-redirect",
            302,
            "http://example.org/hostname-redirect",
        ),
        (
            "/host-and-status",
            301,
            "http://example.org/host-and-status",
        ),
        ("/full-path/x", 302, "http://echo/full-path-replacement"),
        (
            "/original-prefix/lemon?a=b",
            302,
            "http://echo/replacement-prefix/lemon?a=b",
        ),
        ("/port", 302, "http://echo:8083/port"),
        ("/scheme", 302, "https://echo/scheme"),
        ("/scheme-and-port", 302, "https://echo:8443/scheme-and-port"),
        ("/see-other", 303, "http://example.org/see-other"),
        ("/temporary", 307, "http://example.org/temporary"),
        ("/permanent", 308, "http://example.org/permanent"),
    ];
    for (path, status, location) in cases {
        let url = format!("http://echo{path}");
        let a = g.expect("redirects", NS, &[&url], |a| a.status == *status);
        assert_eq!(
            a.header("location"),
            Some(*location),
            "redirect {path}: {a:?}"
        );
    }
}

pub fn grpc(g: &Gamma) {
    let call = [
        "--http2",
        "-X",
        "POST",
        "http://echo:7070/grpc.testing.EchoService/Echo",
        "content-type:application/grpc",
    ];
    // MeshGRPCRouteWeight: 70/30 by counts.
    let weighted = g.route(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: grpc-weight, namespace: {NS}}}\nspec:\n  parentRefs: [{{group: '', kind: Service, name: echo, port: 7070}}]\n  rules:\n  - filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{set: [{{name: X-Routed, value: grpc-weighted}}]}}}}]\n    backendRefs:\n    - {{name: echo-v1, port: 7070, weight: 70}}\n    - {{name: echo-v2, port: 7070, weight: 30}}\n"
    ));
    // Counted once the route is in place (its header).
    g.expect("MeshGRPCRouteWeight", NS, &call, |a| {
        a.header("x-routed") == Some("grpc-weighted")
    });
    let tally = g.tally(NS, &call, super::scenarios::WEIGHED);
    let (v1, v2) = (
        tally.get("echo-v1").copied().unwrap_or(0),
        tally.get("echo-v2").copied().unwrap_or(0),
    );
    assert!(
        v1 + v2 == super::scenarios::WEIGHED
            && super::scenarios::near(v1, 70, 100, super::scenarios::WEIGHED, 0.1),
        "MeshGRPCRouteWeight: {tally:?}"
    );
    drop(weighted);

    // MeshGRPCRouteRequestHeaderModifier, with a method match.
    let _route = g.route(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: grpc-header, namespace: {NS}}}\nspec:\n  parentRefs: [{{group: '', kind: Service, name: echo, port: 7070}}]\n  rules:\n  - matches: [{{method: {{service: grpc.testing.EchoService, method: Echo}}}}]\n    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Header-Set, value: set-overwrites-values}}], add: [{{name: X-Header-Add, value: header-val-1}}], remove: [X-Header-Remove]}}}}]\n    backendRefs: [{{name: echo-v1, port: 7070}}]\n"
    ));
    let mut args = call.to_vec();
    args.extend(["x-header-set:some-other-value", "x-header-remove:gone"]);
    let a = g.expect("MeshGRPCRouteRequestHeaderModifier", NS, &args, |a| {
        a.seen("x-header-set") == Some("set-overwrites-values")
    });
    assert!(
        a.seen("x-header-add") == Some("header-val-1")
            && a.seen("x-header-remove").is_none()
            && a.backend() == "echo-v1",
        "MeshGRPCRouteRequestHeaderModifier: {a:?}"
    );
    assert_eq!(a.body["proto"], "HTTP/2.0", "{a:?}");
    // Another method does not match the route: 404.
    g.expect(
        "GRPCRoute method match",
        NS,
        &[
            "--http2",
            "-X",
            "POST",
            "http://echo:7070/grpc.testing.EchoService/Other",
        ],
        |a| a.status == 404,
    );
}

pub fn timeouts_and_status(g: &Gamma) {
    // timeouts.request: a slow backend is answered 504.
    let _slow = g.route(&http_route(
        "timeouts",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo-v2}]\n  rules:\n  - timeouts: {request: 300ms}\n    backendRefs: [{name: echo-v2, port: 80}]\n",
    ));
    g.expect(
        "timeouts (slow)",
        NS,
        &["http://echo-v2/", "x-echo-delay-ms:2000"],
        |a| a.status == 504,
    );
    g.expect(
        "timeouts (fast)",
        NS,
        &["http://echo-v2/", "x-echo-delay-ms:10"],
        |a| a.status == 200,
    );

    // A route whose backend does not exist: 500, and status says why; a
    // route to a Service of an unmonitored namespace is not accepted.
    g.mesh.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: gateway-conformance-outside}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: outside, namespace: gateway-conformance-outside}\n\
         spec: {selector: {app: outside}, ports: [{name: http, port: 80}]}\n",
    );
    let _missing = g.route(&http_route(
        "missing-backend",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: echo-v1}]\n  rules: [{backendRefs: [{name: does-not-exist, port: 80}]}]\n",
    ));
    let _outside = g.route(&http_route(
        "to-outside",
        NS,
        "  parentRefs: [{group: '', kind: Service, name: outside, namespace: gateway-conformance-outside}]\n  rules: [{backendRefs: [{name: echo-v1, port: 80}]}]\n",
    ));
    g.expect("missing backend", NS, &["http://echo-v1/"], |a| {
        a.status == 500
    });
    let listed = g
        .mesh
        .ok(&["local", "get", "httproutes", "-n", NS, "-o", "json"]);
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    let condition = |route: &str, kind: &str| {
        let item = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["metadata"]["name"] == route)
            .unwrap_or_else(|| panic!("{route} in {listed}"));
        let c = item["status"]["parents"][0]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} of {route}: {item}"));
        (
            c["status"].as_str().unwrap_or("").to_string(),
            c["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        condition("missing-backend", "ResolvedRefs"),
        ("False".into(), "BackendNotFound".into())
    );
    assert_eq!(
        condition("missing-backend", "Accepted"),
        ("True".into(), "Accepted".into())
    );
    assert_eq!(
        condition("to-outside", "Accepted"),
        ("False".into(), "NoMatchingParent".into())
    );
    let table = g.mesh.ok(&["local", "get", "httproutes", "-n", NS]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("missing-backend") && l.contains("False(BackendNotFound)")),
        "{table}"
    );
}
