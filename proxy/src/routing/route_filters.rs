//! Gateway API route filters as pure functions over a request's or a
//! response's parts: header modifiers, redirects (answered by the proxy)
//! and URL rewrites.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use osm_api::v1;

/// `RequestHeaderModifier` / `ResponseHeaderModifier`, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderEdits {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

fn header(at: &str, h: &v1::Header) -> Result<(HeaderName, HeaderValue), (String, String)> {
    let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
        (
            format!("{at}.name"),
            format!("{:?} is not a header name", h.name),
        )
    })?;
    let value = HeaderValue::from_str(&h.value).map_err(|_| {
        (
            format!("{at}.value"),
            format!("{:?} is not a header value", h.value),
        )
    })?;
    Ok((name, value))
}

impl HeaderEdits {
    pub fn compile(at: &str, m: &v1::HeaderModifier) -> Result<Self, (String, String)> {
        let list = |what: &str, hs: &[v1::Header]| {
            hs.iter()
                .enumerate()
                .map(|(i, h)| header(&format!("{at}.{what}[{i}]"), h))
                .collect::<Result<Vec<_>, _>>()
        };
        let remove = m
            .remove
            .iter()
            .enumerate()
            .map(|(i, n)| {
                HeaderName::from_bytes(n.as_bytes()).map_err(|_| {
                    (
                        format!("{at}.remove[{i}]"),
                        format!("{n:?} is not a header name"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            set: list("set", &m.set)?,
            add: list("add", &m.add)?,
            remove,
        })
    }

    /// Set replaces every value, add appends one, remove drops all; in that
    /// order, as the specification lists them.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

/// How a path is replaced (`ReplaceFullPath` or `ReplacePrefixMatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathReplace {
    Full(String),
    Prefix(String),
}

impl PathReplace {
    fn of(full: &str, prefix: &str) -> Option<Self> {
        if !full.is_empty() {
            Some(Self::Full(full.to_string()))
        } else if !prefix.is_empty() {
            Some(Self::Prefix(prefix.to_string()))
        } else {
            None
        }
    }
}

/// The path after a replacement; `matched` is the prefix the rule's match
/// matched (element-wise, without a trailing slash).
pub fn replace_path(path: &str, replace: &PathReplace, matched: &str) -> String {
    match replace {
        PathReplace::Full(p) => p.clone(),
        PathReplace::Prefix(replacement) => {
            let rest = path.strip_prefix(matched).unwrap_or(path);
            let replacement = replacement.trim_end_matches('/');
            match (replacement.is_empty(), rest.is_empty()) {
                (true, true) => "/".to_string(),
                (true, false) => rest.to_string(),
                (false, _) => format!("{replacement}{rest}"),
            }
        }
    }
}

/// `RequestRedirect`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathReplace>,
    pub port: Option<u16>,
    pub status: StatusCode,
}

impl Redirect {
    pub fn compile(at: &str, r: &v1::RequestRedirect) -> Result<Self, (String, String)> {
        let status = match r.status_code {
            0 => StatusCode::FOUND,
            301 | 302 | 303 | 307 | 308 => StatusCode::from_u16(r.status_code as u16)
                .map_err(|_| (format!("{at}.statusCode"), "not a status".to_string()))?,
            other => {
                return Err((
                    format!("{at}.statusCode"),
                    format!("{other} is not 301, 302, 303, 307 or 308"),
                ));
            }
        };
        if !["", "http", "https"].contains(&r.scheme.as_str()) {
            return Err((
                format!("{at}.scheme"),
                format!("{:?} is not http or https", r.scheme),
            ));
        }
        let port = match r.port {
            0 => None,
            p => Some(
                u16::try_from(p)
                    .map_err(|_| (format!("{at}.port"), format!("{p} is not a port")))?,
            ),
        };
        Ok(Self {
            scheme: (!r.scheme.is_empty()).then(|| r.scheme.clone()),
            hostname: (!r.hostname.is_empty()).then(|| r.hostname.clone()),
            path: PathReplace::of(&r.full_path, &r.prefix_match),
            port,
            status,
        })
    }

    /// The `Location` of the redirect for a request to `host` (without a
    /// port) on `port` over `scheme`. The port follows the specification:
    /// the redirect's own, else the scheme's well-known port when the
    /// redirect changes the scheme, else the request's; it is left out of
    /// the URL when it is the scheme's well-known port.
    pub fn location(
        &self,
        (scheme, host, port): (&str, &str, u16),
        path: &str,
        query: Option<&str>,
        matched: &str,
    ) -> String {
        let scheme_out = self.scheme.as_deref().unwrap_or(scheme);
        let well_known = |s: &str| if s == "https" { 443 } else { 80 };
        let port_out = self.port.unwrap_or(if self.scheme.is_some() {
            well_known(scheme_out)
        } else {
            port
        });
        let host_out = self.hostname.as_deref().unwrap_or(host);
        let path_out = match &self.path {
            Some(replace) => replace_path(path, replace, matched),
            None => path.to_string(),
        };
        let authority = if port_out == well_known(scheme_out) {
            host_out.to_string()
        } else {
            format!("{host_out}:{port_out}")
        };
        match query {
            Some(q) if !q.is_empty() => format!("{scheme_out}://{authority}{path_out}?{q}"),
            _ => format!("{scheme_out}://{authority}{path_out}"),
        }
    }
}

/// `URLRewrite`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub hostname: Option<HeaderValue>,
    pub path: Option<PathReplace>,
}

impl Rewrite {
    pub fn compile(at: &str, r: &v1::UrlRewrite) -> Result<Self, (String, String)> {
        let hostname = if r.hostname.is_empty() {
            None
        } else {
            Some(HeaderValue::from_str(&r.hostname).map_err(|_| {
                (
                    format!("{at}.hostname"),
                    format!("{:?} is not a host name", r.hostname),
                )
            })?)
        };
        Ok(Self {
            hostname,
            path: PathReplace::of(&r.full_path, &r.prefix_match),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_edits_set_then_add_then_remove() {
        let edits = HeaderEdits::compile(
            "f",
            &v1::HeaderModifier {
                set: vec![v1::Header {
                    name: "x-set".into(),
                    value: "new".into(),
                }],
                add: vec![v1::Header {
                    name: "x-add".into(),
                    value: "two".into(),
                }],
                remove: vec!["x-gone".into()],
            },
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.append("x-set", "old-1".parse().unwrap());
        h.append("x-set", "old-2".parse().unwrap());
        h.append("x-add", "one".parse().unwrap());
        h.append("x-gone", "bye".parse().unwrap());
        edits.apply(&mut h);
        let all =
            |n: &str| -> Vec<&str> { h.get_all(n).iter().map(|v| v.to_str().unwrap()).collect() };
        assert_eq!(all("x-set"), ["new"]);
        assert_eq!(all("x-add"), ["one", "two"]);
        assert!(all("x-gone").is_empty());
        let bad = HeaderEdits::compile(
            "f",
            &v1::HeaderModifier {
                remove: vec!["bad name".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(bad.0, "f.remove[0]");
    }

    #[test]
    fn prefix_replacement_keeps_the_rest_of_the_path() {
        let p = |s: &str| PathReplace::Prefix(s.to_string());
        let cases = [
            ("/prefix/one/two", "/prefix/one", p("/one"), "/one/two"),
            ("/prefix/one", "/prefix/one", p("/one"), "/one"),
            ("/prefix/one/", "/prefix/one", p("/"), "/"),
            ("/prefix/one/two", "/prefix/one", p("/"), "/two"),
            ("/prefix/one", "/prefix/one", p("/"), "/"),
            ("/prefix/one/two", "/prefix/one", p("/one/"), "/one/two"),
            ("/anything", "", PathReplace::Full("/full".into()), "/full"),
        ];
        for (path, matched, replace, want) in cases {
            assert_eq!(replace_path(path, &replace, matched), want, "{path}");
        }
    }

    #[test]
    fn redirect_locations_follow_the_specification() {
        let r = |scheme: &str, host: &str, port: u32, status: u32| {
            Redirect::compile(
                "f",
                &v1::RequestRedirect {
                    scheme: scheme.into(),
                    hostname: host.into(),
                    port,
                    status_code: status,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let from = ("http", "echo.shop", 80);
        // (redirect, request, location)
        let cases = [
            (r("", "example.org", 0, 0), from, "http://example.org/p?q=1"),
            (r("https", "", 0, 0), from, "https://echo.shop/p?q=1"),
            (
                r("https", "", 8443, 0),
                from,
                "https://echo.shop:8443/p?q=1",
            ),
            (r("", "", 8080, 0), from, "http://echo.shop:8080/p?q=1"),
            (
                r("", "", 0, 0),
                ("http", "echo.shop", 8080),
                "http://echo.shop:8080/p?q=1",
            ),
            (
                r("http", "", 0, 0),
                ("http", "echo.shop", 8080),
                "http://echo.shop/p?q=1",
            ),
        ];
        for (redirect, request, want) in cases {
            assert_eq!(redirect.location(request, "/p", Some("q=1"), ""), want);
        }
        assert_eq!(r("", "", 0, 0).status, StatusCode::FOUND);
        assert_eq!(r("", "", 0, 308).status, StatusCode::PERMANENT_REDIRECT);
        let bad = Redirect::compile(
            "f",
            &v1::RequestRedirect {
                status_code: 304,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            bad,
            (
                "f.statusCode".into(),
                "304 is not 301, 302, 303, 307 or 308".into()
            )
        );
        let path = Redirect::compile(
            "f",
            &v1::RequestRedirect {
                prefix_match: "/new".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            path.location(from, "/old/x", None, "/old"),
            "http://echo.shop/new/x"
        );
    }
}
