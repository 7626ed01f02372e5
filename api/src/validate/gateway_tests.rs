//! Validation of HTTPRoute and GRPCRoute: a table of specs and the field
//! each is refused (or warned) at.

use super::{Severity, validate};
use crate::load::load_str;

fn problems(kind: &str, spec: &str) -> Vec<(Severity, String)> {
    let yaml = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: r, namespace: mesh}}\nspec: {spec}\n"
    );
    let loaded = load_str("t.yaml", &yaml);
    assert!(loaded.errors.is_empty(), "{spec}: {:?}", loaded.errors);
    validate(&loaded.objects[0].object)
        .into_iter()
        .map(|p| (p.severity, p.field))
        .collect()
}

const PARENT: &str = "parentRefs: [{group: '', kind: Service, name: echo}]";

#[test]
fn http_routes_are_refused_at_the_field_that_is_wrong() {
    use Severity::{Reject, Warn};
    let cases: &[(&str, Option<(Severity, &str)>)] = &[
        ("rules: [{backendRefs: [{name: a, port: 80}]}]", None),
        (
            "rules: [{matches: [{path: {type: Exact, value: /a}, method: GET, headers: [{name: x-a, value: b}], queryParams: [{name: q, value: v, type: RegularExpression}]}]}]",
            None,
        ),
        (
            "rules: [{matches: [{path: {type: PathPrefix, value: a}}]}]",
            Some((Reject, "spec.rules[0].matches[0].path.value")),
        ),
        (
            "rules: [{matches: [{path: {type: RegularExpression, value: '/(a'}}]}]",
            Some((Reject, "spec.rules[0].matches[0].path.value")),
        ),
        (
            "rules: [{matches: [{path: {type: Glob, value: /a}}]}]",
            Some((Reject, "spec.rules[0].matches[0].path.type")),
        ),
        (
            "rules: [{matches: [{method: get}]}]",
            Some((Reject, "spec.rules[0].matches[0].method")),
        ),
        (
            "rules: [{matches: [{headers: [{name: 'bad name', value: b}]}]}]",
            Some((Reject, "spec.rules[0].matches[0].headers[0].name")),
        ),
        (
            "rules: [{matches: [{queryParams: [{name: q, value: '(', type: RegularExpression}]}]}]",
            Some((Reject, "spec.rules[0].matches[0].queryParams[0].value")),
        ),
        (
            "rules: [{backendRefs: [{name: a}]}]",
            Some((Reject, "spec.rules[0].backendRefs[0].port")),
        ),
        (
            "rules: [{backendRefs: [{name: a, port: 80, weight: 1000001}]}]",
            Some((Reject, "spec.rules[0].backendRefs[0].weight")),
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, percent: 10}}, {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}}}]}]",
            None,
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a}}}]}]",
            Some((
                Reject,
                "spec.rules[0].filters[0].requestMirror.backendRef.port",
            )),
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, percent: 101}}]}]",
            Some((Reject, "spec.rules[0].filters[0].requestMirror")),
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, fraction: {numerator: 2, denominator: 1}}}]}]",
            Some((Reject, "spec.rules[0].filters[0].requestMirror")),
        ),
        (
            "rules: [{filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}]}]",
            Some((Reject, "spec.rules[0].filters[0].type")),
        ),
        (
            "rules: [{filters: [{type: RequestHeaderModifier}]}]",
            Some((Reject, "spec.rules[0].filters[0].requestHeaderModifier")),
        ),
        (
            "rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x, value: \"a\\nb\"}]}}]}]",
            Some((
                Reject,
                "spec.rules[0].filters[0].requestHeaderModifier.set[0].value",
            )),
        ),
        (
            "rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}}, {type: RequestHeaderModifier, requestHeaderModifier: {}}]}]",
            Some((Reject, "spec.rules[0].filters[1].type")),
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]}]",
            Some((
                Reject,
                "spec.rules[0].filters[0].requestRedirect.statusCode",
            )),
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {scheme: ftp}}]}]",
            Some((Reject, "spec.rules[0].filters[0].requestRedirect.scheme")),
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {port: 0}}]}]",
            Some((Reject, "spec.rules[0].filters[0].requestRedirect.port")),
        ),
        (
            "rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]",
            Some((Reject, "spec.rules[0].filters[0].urlRewrite.path.type")),
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]}]",
            Some((
                Reject,
                "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath",
            )),
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {hostname: 'a b'}}]}]",
            Some((Reject, "spec.rules[0].filters[0].urlRewrite.hostname")),
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {}}, {type: RequestRedirect, requestRedirect: {}}]}]",
            Some((Reject, "spec.rules[0].filters")),
        ),
        (
            "rules: [{backendRefs: [{name: a, port: 80, filters: [{type: RequestRedirect, requestRedirect: {}}]}]}]",
            Some((Reject, "spec.rules[0].backendRefs[0].filters[0].type")),
        ),
        (
            "rules: [{timeouts: {request: 1s, backendRequest: 2s}}]",
            Some((Reject, "spec.rules[0].timeouts.backendRequest")),
        ),
        (
            "rules: [{timeouts: {request: 1.5s}}]",
            Some((Reject, "spec.rules[0].timeouts.request")),
        ),
        (
            "rules: [{timeouts: {request: 0s, backendRequest: 2s}}]",
            None,
        ),
        (
            "rules: [{retry: {attempts: 2, codes: [500, 503], backoff: 100ms}}]",
            None,
        ),
        (
            "rules: [{retry: {codes: [200]}}]",
            Some((Reject, "spec.rules[0].retry.codes[0]")),
        ),
        (
            "rules: [{retry: {attempts: 11}}]",
            Some((Reject, "spec.rules[0].retry.attempts")),
        ),
        (
            "rules: [{retry: {backoff: soon}}]",
            Some((Reject, "spec.rules[0].retry.backoff")),
        ),
        (
            "rules: [{sessionPersistence: {type: Cookie}}]",
            Some((Reject, "spec.rules[0].sessionPersistence")),
        ),
        (
            "rules: [{name: a}, {name: a}]",
            Some((Reject, "spec.rules[1].name")),
        ),
    ];
    for (rules, expected) in cases {
        let found = problems("HTTPRoute", &format!("{{{PARENT}, {rules}}}"));
        match expected {
            None => assert!(found.is_empty(), "{rules}: {found:?}"),
            Some((severity, field)) => assert!(
                found.iter().any(|(s, f)| s == severity && f == field),
                "{rules}: expected {severity:?} at {field}, got {found:?}"
            ),
        }
    }
    // A gateway's route (no Service parent) is not the mesh's to judge:
    // a warning, even for what the mesh would refuse.
    let warned = problems(
        "HTTPRoute",
        "{parentRefs: [{name: gw}], rules: [{filters: [{type: ExternalAuth, externalAuth: {}}]}]}",
    );
    assert_eq!(warned, [(Warn, "spec.parentRefs".to_string())]);
    let hostnames = problems(
        "HTTPRoute",
        &format!("{{{PARENT}, hostnames: [a.example]}}"),
    );
    assert_eq!(hostnames, [(Warn, "spec.hostnames".to_string())]);
    let section = problems(
        "HTTPRoute",
        "{parentRefs: [{group: '', kind: Service, name: a, sectionName: http}]}",
    );
    assert_eq!(
        section,
        [(Reject, "spec.parentRefs[0].sectionName".to_string())]
    );
}

#[test]
fn grpc_routes_are_refused_at_the_field_that_is_wrong() {
    use Severity::Reject;
    let cases: &[(&str, Option<&str>)] = &[
        (
            "rules: [{matches: [{method: {service: pkg.Echo, method: Say}}], backendRefs: [{name: a, port: 7070}]}]",
            None,
        ),
        (
            "rules: [{matches: [{method: {type: RegularExpression, service: 'pkg\\..*'}}]}]",
            None,
        ),
        (
            "rules: [{matches: [{method: {}}]}]",
            Some("spec.rules[0].matches[0].method"),
        ),
        (
            "rules: [{matches: [{method: {service: 'a/b'}}]}]",
            Some("spec.rules[0].matches[0].method.service"),
        ),
        (
            "rules: [{matches: [{method: {type: RegularExpression, method: '('}}]}]",
            Some("spec.rules[0].matches[0].method.method"),
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {}}]}]",
            Some("spec.rules[0].filters[0].type"),
        ),
    ];
    for (rules, expected) in cases {
        let found = problems("GRPCRoute", &format!("{{{PARENT}, {rules}}}"));
        match expected {
            None => assert!(found.is_empty(), "{rules}: {found:?}"),
            Some(field) => assert!(
                found.iter().any(|(s, f)| *s == Reject && f == field),
                "{rules}: expected a refusal at {field}, got {found:?}"
            ),
        }
    }
}

#[test]
fn fields_the_model_does_not_know_are_refused_by_the_loader() {
    let yaml = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec: {{{PARENT}, rules: [{{backendRefs: [{{name: a, port: 80, wieght: 1}}]}}]}}\n"
    );
    let loaded = load_str("t.yaml", &yaml);
    assert_eq!(loaded.errors.len(), 1);
    let e = loaded.errors[0].to_string();
    assert!(
        e.contains("spec.rules[0].backendRefs[0]") && e.contains("wieght"),
        "{e}"
    );
}
