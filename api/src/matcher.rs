//! Compiled SMI HTTP matches (HTTPRouteGroup `matches[]` on the wire): the
//! one compile step both the validating webhook and the proxy run, so that
//! what validation accepts the proxy accepts.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};
use regex::Regex;

/// A compiled HTTP match: path regex, methods and header regexes, ANDed.
#[derive(Debug, Clone)]
pub struct HttpMatcher {
    pub name: Arc<str>,
    /// Full-match regex on the path (without the query string); None = any.
    path: Option<Regex>,
    /// None = any method.
    methods: Option<Vec<Method>>,
    headers: Vec<(HeaderName, Regex)>,
}

/// Why a match cannot be compiled. `field` is relative to the match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MatchError {
    pub field: String,
    pub message: String,
}

pub use crate::regex::full_match_regex;

// === impl HttpMatcher ===

impl HttpMatcher {
    pub fn compile(spec: &crate::v1::HttpMatch) -> Result<Self, MatchError> {
        let path = path_of(spec)?;
        let mut methods = Vec::new();
        let mut any_method = spec.methods.is_empty();
        for (i, m) in spec.methods.iter().enumerate() {
            match method_of(i, m)? {
                Some(method) => methods.push(method),
                None => any_method = true,
            }
        }
        let mut headers: Vec<(HeaderName, Regex)> = Vec::new();
        for name in sorted_names(spec) {
            headers.push(header_of(name, &spec.headers[name])?);
        }
        Ok(Self {
            name: spec.name.as_str().into(),
            path,
            methods: (!any_method).then_some(methods),
            headers,
        })
    }

    /// Every reason `compile` would refuse `spec` for (empty: it compiles),
    /// for validation to report them all at once.
    pub fn problems(spec: &crate::v1::HttpMatch) -> Vec<MatchError> {
        let mut out: Vec<MatchError> = path_of(spec).err().into_iter().collect();
        for (i, m) in spec.methods.iter().enumerate() {
            out.extend(method_of(i, m).err());
        }
        for name in sorted_names(spec) {
            out.extend(header_of(name, &spec.headers[name]).err());
        }
        out
    }

    /// Whether a request matches: path AND method AND every header. A header
    /// with several values matches when one of them does; the `host` header
    /// is matched against the request's authority too (HTTP/2 has no Host).
    pub fn matches(
        &self,
        method: &Method,
        path: &str,
        authority: Option<&str>,
        headers: &HeaderMap,
    ) -> bool {
        if self.methods.as_ref().is_some_and(|m| !m.contains(method)) {
            return false;
        }
        if self.path.as_ref().is_some_and(|re| !re.is_match(path)) {
            return false;
        }
        self.headers.iter().all(|(name, re)| {
            let from_headers = headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| re.is_match(v)));
            from_headers
                || (name == http::header::HOST && authority.is_some_and(|a| re.is_match(a)))
        })
    }
}

fn path_of(spec: &crate::v1::HttpMatch) -> Result<Option<Regex>, MatchError> {
    if spec.path_regex.is_empty() {
        return Ok(None);
    }
    full_match_regex(&spec.path_regex)
        .map(Some)
        .map_err(|message| MatchError {
            field: "pathRegex".into(),
            message,
        })
}

/// A method, or None for `*` (any).
fn method_of(i: usize, m: &str) -> Result<Option<Method>, MatchError> {
    if m == "*" {
        return Ok(None);
    }
    Method::from_bytes(m.as_bytes())
        .ok()
        .filter(|_| crate::regex::is_method(m))
        .map(Some)
        .ok_or_else(|| MatchError {
            field: format!("methods[{i}]"),
            message: format!("{m:?} is not an HTTP method (use upper case, or \"*\" for any)"),
        })
}

fn sorted_names(spec: &crate::v1::HttpMatch) -> Vec<&String> {
    let mut names: Vec<&String> = spec.headers.keys().collect();
    names.sort();
    names
}

fn header_of(name: &str, value: &str) -> Result<(HeaderName, Regex), MatchError> {
    let field = format!("headers[{name:?}]");
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| MatchError {
        field: field.clone(),
        message: format!("{name:?} is not a valid header name"),
    })?;
    let re = full_match_regex(value).map_err(|message| MatchError { field, message })?;
    Ok((header, re))
}

/// True when any matcher matches.
pub fn any_matches(
    matchers: &[HttpMatcher],
    method: &Method,
    path: &str,
    authority: Option<&str>,
    headers: &HeaderMap,
) -> bool {
    matchers
        .iter()
        .any(|m| m.matches(method, path, authority, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::HttpMatch;

    fn spec(path: &str, methods: &[&str], headers: &[(&str, &str)]) -> HttpMatch {
        HttpMatch {
            name: "ns/group/m".into(),
            path_regex: path.into(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn hdrs(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn path_regex_matches_the_whole_path() {
        let m = HttpMatcher::compile(&spec("/books", &[], &[])).expect("compiles");
        let h = HeaderMap::new();
        let cases = [
            ("/books", true),
            ("/books/1", false),
            ("/bookstore", false),
            ("/", false),
            ("/x/books", false),
        ];
        for (path, want) in cases {
            assert_eq!(m.matches(&Method::GET, path, None, &h), want, "{path}");
        }
        let m = HttpMatcher::compile(&spec(".*a-book.*new", &[], &[])).expect("compiles");
        assert!(m.matches(&Method::GET, "/buy-a-book/new", None, &h));
        assert!(!m.matches(&Method::GET, "/buy-a-book/old", None, &h));
    }

    #[test]
    fn methods_and_wildcard() {
        let h = HeaderMap::new();
        let get_only = HttpMatcher::compile(&spec("", &["GET"], &[])).expect("compiles");
        assert!(get_only.matches(&Method::GET, "/any", None, &h));
        assert!(!get_only.matches(&Method::POST, "/any", None, &h));
        let star = HttpMatcher::compile(&spec("", &["GET", "*"], &[])).expect("compiles");
        assert!(star.matches(&Method::DELETE, "/any", None, &h));
        let none_listed = HttpMatcher::compile(&spec("", &[], &[])).expect("compiles");
        assert!(none_listed.matches(&Method::PATCH, "/any", None, &h));
    }

    #[test]
    fn headers_are_anded_full_match_regexes() {
        let m = HttpMatcher::compile(&spec(
            "",
            &[],
            &[("user-agent", ".*Firefox.*"), ("client-app", "bookbuyer")],
        ))
        .expect("compiles");
        let both = hdrs(&[
            ("user-agent", "Mozilla Firefox 1"),
            ("client-app", "bookbuyer"),
        ]);
        let one = hdrs(&[("user-agent", "Mozilla Firefox 1")]);
        let partial = hdrs(&[
            ("user-agent", "Mozilla Firefox 1"),
            ("client-app", "bookbuyer-2"),
        ]);
        let second_value = hdrs(&[
            ("user-agent", "curl"),
            ("user-agent", "Firefox"),
            ("client-app", "bookbuyer"),
        ]);
        assert!(m.matches(&Method::GET, "/", None, &both));
        assert!(!m.matches(&Method::GET, "/", None, &one));
        assert!(!m.matches(&Method::GET, "/", None, &partial));
        assert!(m.matches(&Method::GET, "/", None, &second_value));
    }

    #[test]
    fn host_header_matches_the_authority() {
        let m = HttpMatcher::compile(&spec("", &[], &[("host", "bookstore(:[0-9]+)?")]))
            .expect("compiles");
        assert!(m.matches(
            &Method::GET,
            "/",
            Some("bookstore:14001"),
            &HeaderMap::new()
        ));
        assert!(!m.matches(&Method::GET, "/", Some("other"), &HeaderMap::new()));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (spec("(", &[], &[]), "pathRegex: invalid regex \"(\""),
            (
                spec("", &["get"], &[]),
                "methods[0]: \"get\" is not an HTTP method",
            ),
            (
                spec("", &["GET", ""], &[]),
                "methods[1]: \"\" is not an HTTP method",
            ),
            (
                spec("", &[], &[("bad header", "x")]),
                "headers[\"bad header\"]: \"bad header\" is not a valid header name",
            ),
            (
                spec("", &[], &[("x", "[")]),
                "headers[\"x\"]: invalid regex \"[\"",
            ),
        ];
        for (s, want) in cases {
            let err = HttpMatcher::compile(&s).expect_err("must fail").to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }
}
