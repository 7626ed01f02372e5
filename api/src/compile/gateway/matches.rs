//! Route matches as the proxy receives them: HTTPRoute's as written,
//! GRPCRoute's as HTTP/2 request matches (a gRPC call is a POST to
//! `/<package.Service>/<Method>`).

use crate::{
    resources::gateway::{self, grpc_route},
    v1,
};

fn value_match(m: &gateway::ValueMatch) -> v1::ValueMatch {
    v1::ValueMatch {
        name: m.name.clone(),
        value: m.value.clone(),
        regex: m.kind.as_deref() == Some("RegularExpression"),
    }
}

pub(super) fn http_match(m: &gateway::http_route::Match) -> v1::RouteMatch {
    use v1::route_match::PathKind;
    let path = m.path.clone().unwrap_or_default();
    let kind = match path.kind.as_deref() {
        Some("Exact") => PathKind::PathExact,
        Some("RegularExpression") => PathKind::PathRegex,
        _ => PathKind::PathPrefix,
    };
    v1::RouteMatch {
        path_kind: kind as i32,
        path: path.value.unwrap_or_else(|| "/".into()),
        method: m.method.clone().unwrap_or_default(),
        headers: m.headers.iter().map(value_match).collect(),
        query_params: m.query_params.iter().map(value_match).collect(),
    }
}

/// One GRPCRoute match: service and method (exact, or regular expressions
/// over each part) become a path match; headers carry over.
pub(super) fn grpc_match(m: &grpc_route::Match) -> v1::RouteMatch {
    use v1::route_match::PathKind;
    let method = m.method.clone().unwrap_or_default();
    let regex = method.kind.as_deref() == Some("RegularExpression");
    let (kind, path) = match (method.service.as_deref(), method.method.as_deref(), regex) {
        (None, None, _) => (PathKind::PathPrefix, "/".to_string()),
        (Some(s), Some(m), false) => (PathKind::PathExact, format!("/{s}/{m}")),
        (Some(s), None, false) => (PathKind::PathPrefix, format!("/{s}")),
        (None, Some(m), false) => (PathKind::PathRegex, format!("/[^/]+/{}", escape(m))),
        (s, m, true) => (
            PathKind::PathRegex,
            format!("/(?:{})/(?:{})", s.unwrap_or("[^/]+"), m.unwrap_or("[^/]+")),
        ),
    };
    v1::RouteMatch {
        path_kind: kind as i32,
        path,
        method: String::new(),
        headers: m.headers.iter().map(value_match).collect(),
        query_params: Vec::new(),
    }
}

/// A literal inside a regular expression.
fn escape(text: &str) -> String {
    regex::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::gateway::grpc_route::MethodMatch;

    #[test]
    fn grpc_methods_become_paths() {
        let m =
            |kind: Option<&str>, service: Option<&str>, method: Option<&str>| grpc_route::Match {
                method: Some(MethodMatch {
                    kind: kind.map(str::to_string),
                    service: service.map(str::to_string),
                    method: method.map(str::to_string),
                }),
                headers: Vec::new(),
            };
        use v1::route_match::PathKind as K;
        let cases = [
            (
                m(None, Some("pkg.Echo"), Some("Say")),
                K::PathExact,
                "/pkg.Echo/Say",
            ),
            (m(None, Some("pkg.Echo"), None), K::PathPrefix, "/pkg.Echo"),
            (m(None, None, Some("Say")), K::PathRegex, "/[^/]+/Say"),
            (
                m(Some("RegularExpression"), Some("pkg\\..*"), None),
                K::PathRegex,
                "/(?:pkg\\..*)/(?:[^/]+)",
            ),
            (grpc_route::Match::default(), K::PathPrefix, "/"),
        ];
        for (input, kind, path) in cases {
            let out = grpc_match(&input);
            assert_eq!(
                (out.path_kind, out.path.as_str()),
                (kind as i32, path),
                "{input:?}"
            );
        }
    }
}
