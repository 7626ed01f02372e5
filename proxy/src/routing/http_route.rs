//! Gateway API route matching (HTTPRoute, and GRPCRoute compiled to
//! paths): which rule of a service's routes a request follows. Pure.
//!
//! The controller sends the rules in route precedence order (the oldest
//! route first, then by namespace/name, then each route's rules in order).
//! Across all of them the specification gives the match with, in turn: an
//! exact path; the longest path prefix; a method; the most header matches;
//! the most query parameter matches — continuing on ties, and the first in
//! the order given after that. Regular-expression paths are placed, as the
//! specification leaves to implementations, after exact paths and before
//! prefixes. [`RouteMatches::new`] sorts the matches once (stably) by those
//! criteria; [`RouteMatches::select`] takes the first that matches.

use std::cmp::Reverse;

use http::Method;
use osm_api::v1;
use regex::Regex;

use crate::policy::HttpRequestView;

/// How a path is matched.
#[derive(Debug, Clone)]
pub enum PathMatch {
    Exact(String),
    /// Element by element: `/foo` matches `/foo`, `/foo/` and `/foo/bar`,
    /// not `/foobar`. Kept without a trailing slash ("" for "/").
    Prefix(String),
    Regex(Regex),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => {
                p.is_empty()
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Regex(re) => re.is_match(path),
        }
    }

    /// Sort key: exact first, then regex, then prefixes longest first.
    fn rank(&self) -> (u8, Reverse<usize>) {
        match self {
            PathMatch::Exact(_) => (0, Reverse(0)),
            PathMatch::Regex(_) => (1, Reverse(0)),
            PathMatch::Prefix(p) => (2, Reverse(p.len())),
        }
    }
}

/// A header or query parameter value matcher.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(String),
    Regex(Regex),
}

impl ValueMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => v == value,
            ValueMatch::Regex(re) => re.is_match(value),
        }
    }
}

/// One compiled match and the rule (index into the service's rules) it
/// selects.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub method: Option<Method>,
    pub headers: Vec<(http::HeaderName, ValueMatch)>,
    pub query: Vec<(String, ValueMatch)>,
    pub rule: usize,
}

impl RouteMatch {
    fn matches(&self, r: &HttpRequestView<'_>) -> bool {
        self.path.matches(r.path)
            && self.method.as_ref().is_none_or(|m| m == r.method)
            && self.headers.iter().all(|(name, m)| {
                // Several values of one header: matched as one, comma-joined
                // (RFC 9110 5.3), as the specification asks.
                let values: Vec<&str> = r
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                !values.is_empty() && m.matches(&values.join(","))
            })
            && self.query.iter().all(|(name, m)| {
                // The first occurrence of a parameter counts.
                query_param(r.query, name).is_some_and(|v| m.matches(v))
            })
    }

    fn precedence(&self) -> (u8, Reverse<usize>, bool, Reverse<usize>, Reverse<usize>) {
        let (kind, len) = self.path.rank();
        (
            kind,
            len,
            self.method.is_none(),
            Reverse(self.headers.len()),
            Reverse(self.query.len()),
        )
    }
}

/// The first value of `name` in a query string (`a=1&b=2`).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// Every match of a service's rules, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct RouteMatches {
    matches: Vec<RouteMatch>,
}

impl RouteMatches {
    /// Sorts `matches` (given in route precedence order) by the
    /// specification's criteria, keeping the given order on ties.
    pub fn new(mut matches: Vec<RouteMatch>) -> Self {
        matches.sort_by_key(RouteMatch::precedence);
        Self { matches }
    }

    /// The match (and so the rule) a request follows; None: no rule
    /// matches (the request is answered 404).
    pub fn select(&self, request: &HttpRequestView<'_>) -> Option<&RouteMatch> {
        self.matches.iter().find(|m| m.matches(request))
    }

    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }
}

/// Compiles one rule's matches (none: every request); the error names the
/// field.
pub fn compile_matches(
    at: &str,
    rule: usize,
    matches: &[v1::RouteMatch],
) -> Result<Vec<RouteMatch>, (String, String)> {
    if matches.is_empty() {
        return Ok(vec![RouteMatch {
            path: PathMatch::Prefix(String::new()),
            method: None,
            headers: Vec::new(),
            query: Vec::new(),
            rule,
        }]);
    }
    let regex =
        |field: String, re: &str| osm_api::regex::full_match_regex(re).map_err(|e| (field, e));
    let value = |field: String, m: &v1::ValueMatch| {
        if m.regex {
            regex(field, &m.value).map(ValueMatch::Regex)
        } else {
            Ok(ValueMatch::Exact(m.value.clone()))
        }
    };
    matches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("{at}.matches[{i}]");
            let path = match v1::route_match::PathKind::try_from(m.path_kind) {
                Ok(v1::route_match::PathKind::PathExact) => PathMatch::Exact(m.path.clone()),
                Ok(v1::route_match::PathKind::PathRegex) => {
                    PathMatch::Regex(regex(format!("{at}.path"), &m.path)?)
                }
                Ok(v1::route_match::PathKind::PathPrefix) => {
                    let p = m.path.trim_end_matches('/');
                    if !m.path.is_empty() && !m.path.starts_with('/') {
                        return Err((
                            format!("{at}.path"),
                            format!("{:?} does not start with /", m.path),
                        ));
                    }
                    PathMatch::Prefix(p.to_string())
                }
                Err(_) => {
                    return Err((
                        format!("{at}.pathKind"),
                        format!("unknown path kind {}", m.path_kind),
                    ));
                }
            };
            let method = if m.method.is_empty() {
                None
            } else {
                Some(Method::from_bytes(m.method.as_bytes()).map_err(|_| {
                    (
                        format!("{at}.method"),
                        format!("{:?} is not an HTTP method", m.method),
                    )
                })?)
            };
            let mut headers = Vec::new();
            for (j, h) in m.headers.iter().enumerate() {
                let field = format!("{at}.headers[{j}]");
                let name = http::HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
                    (
                        format!("{field}.name"),
                        format!("{:?} is not a header name", h.name),
                    )
                })?;
                headers.push((name, value(format!("{field}.value"), h)?));
            }
            let mut query = Vec::new();
            for (j, q) in m.query_params.iter().enumerate() {
                query.push((
                    q.name.clone(),
                    value(format!("{at}.queryParams[{j}].value"), q)?,
                ));
            }
            Ok(RouteMatch {
                path,
                method,
                headers,
                query,
                rule,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn m(kind: v1::route_match::PathKind, path: &str) -> v1::RouteMatch {
        v1::RouteMatch {
            path_kind: kind as i32,
            path: path.into(),
            ..Default::default()
        }
    }

    fn table(rules: Vec<Vec<v1::RouteMatch>>) -> RouteMatches {
        let mut all = Vec::new();
        for (i, matches) in rules.iter().enumerate() {
            all.extend(compile_matches("routes", i, matches).unwrap());
        }
        RouteMatches::new(all)
    }

    fn select(
        t: &RouteMatches,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Option<usize> {
        let uri: http::Uri = target.parse().unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        t.select(&HttpRequestView::from_parts(&method, &uri, &map))
            .map(|m| m.rule)
    }

    #[test]
    fn prefixes_match_whole_path_elements() {
        use v1::route_match::PathKind::*;
        let t = table(vec![vec![m(PathPrefix, "/foo/")]]);
        for (path, matches) in [
            ("/foo", true),
            ("/foo/", true),
            ("/foo/bar", true),
            ("/foobar", false),
            ("/fo", false),
            ("/", false),
        ] {
            assert_eq!(select(&t, "GET", path, &[]).is_some(), matches, "{path}");
        }
        let all = table(vec![vec![]]);
        assert_eq!(select(&all, "POST", "/anything?x=1", &[]), Some(0));
    }

    #[test]
    fn precedence_follows_the_specification() {
        use v1::route_match::PathKind::*;
        let with = |mut base: v1::RouteMatch, f: &dyn Fn(&mut v1::RouteMatch)| {
            f(&mut base);
            base
        };
        let header = |name: &str, value: &str| v1::ValueMatch {
            name: name.into(),
            value: value.into(),
            regex: false,
        };
        // Rule order as the controller sends it (route precedence); each
        // later rule is more specific by one criterion.
        let t = table(vec![
            /* 0 */ vec![m(PathPrefix, "/")],
            /* 1 */ vec![m(PathPrefix, "/v2")],
            /* 2 */ vec![m(PathPrefix, "/v2/books")],
            /* 3 */ vec![m(PathExact, "/v2/books")],
            /* 4 */ vec![with(m(PathPrefix, "/v2"), &|r| r.method = "POST".into())],
            /* 5 */
            vec![with(m(PathPrefix, "/v2"), &|r| {
                r.method = "POST".into();
                r.headers = vec![header("x-canary", "1")];
            })],
            /* 6 */
            vec![with(m(PathPrefix, "/v2"), &|r| {
                r.method = "POST".into();
                r.headers = vec![header("x-canary", "1")];
                r.query_params = vec![header("debug", "on")];
            })],
            /* 7 */ vec![m(PathRegex, "/v[0-9]+/regex")],
            /* 8 */ vec![m(PathPrefix, "/v2")],
        ]);
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<usize>);
        let cases: &[Case<'_>] = &[
            ("GET", "/other", &[], Some(0)),
            ("GET", "/v2/x", &[], Some(1)),
            ("GET", "/v2/books/1", &[], Some(2)),
            ("GET", "/v2/books", &[], Some(3)),
            ("POST", "/v2/x", &[], Some(4)),
            ("POST", "/v2/x", &[("x-canary", "1")], Some(5)),
            ("POST", "/v2/x?debug=on", &[("X-Canary", "1")], Some(6)),
            ("POST", "/v2/x?debug=off", &[("x-canary", "1")], Some(5)),
            ("GET", "/v3/regex", &[], Some(7)),
            // Rule 8 ties with rule 1 on every criterion: the first wins.
        ];
        for (method, target, headers, want) in cases {
            assert_eq!(
                select(&t, method, target, headers),
                *want,
                "{method} {target} {headers:?}"
            );
        }
    }

    #[test]
    fn headers_and_query_parameters_match_exactly_or_by_regex() {
        use v1::route_match::PathKind::*;
        let mut r = m(PathPrefix, "/");
        r.headers = vec![v1::ValueMatch {
            name: "version".into(),
            value: "v[12]".into(),
            regex: true,
        }];
        r.query_params = vec![v1::ValueMatch {
            name: "animal".into(),
            value: "whale".into(),
            regex: false,
        }];
        let t = table(vec![vec![r]]);
        assert_eq!(
            select(&t, "GET", "/?animal=whale", &[("version", "v2")]),
            Some(0)
        );
        assert_eq!(
            select(
                &t,
                "GET",
                "/?animal=whale&animal=dolphin",
                &[("version", "v1")]
            ),
            Some(0)
        );
        assert_eq!(
            select(
                &t,
                "GET",
                "/?animal=dolphin&animal=whale",
                &[("version", "v1")]
            ),
            None
        );
        assert_eq!(
            select(&t, "GET", "/?animal=whale", &[("version", "v3")]),
            None
        );
        assert_eq!(select(&t, "GET", "/?animal=whale", &[]), None);
        assert_eq!(query_param(Some("a=1&b&c=3"), "b"), Some(""));
        assert_eq!(query_param(None, "a"), None);
    }

    #[test]
    fn bad_matches_are_refused_with_the_field() {
        use v1::route_match::PathKind::*;
        let err =
            |r: v1::RouteMatch| compile_matches("outbound[0].routes[1]", 1, &[r]).unwrap_err();
        assert_eq!(
            err(m(PathRegex, "(")).0,
            "outbound[0].routes[1].matches[0].path"
        );
        assert_eq!(
            err(m(PathPrefix, "books")),
            (
                "outbound[0].routes[1].matches[0].path".into(),
                "\"books\" does not start with /".into()
            )
        );
        let mut bad_method = m(PathPrefix, "/");
        bad_method.method = "GE T".into();
        assert_eq!(err(bad_method).0, "outbound[0].routes[1].matches[0].method");
    }
}
