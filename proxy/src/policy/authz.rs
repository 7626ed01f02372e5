use std::sync::Arc;

use http::{HeaderMap, Method, Request, Uri};

use super::{InboundPolicy, Traffic};
use crate::identity::SpiffeId;

/// The parts of a request that rules look at (authorization, A/B
/// matches, Egress rules, Gateway API route matches).
#[derive(Debug, Clone, Copy)]
pub struct HttpRequestView<'a> {
    pub method: &'a Method,
    /// The path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

impl<'a> HttpRequestView<'a> {
    pub fn of<B>(req: &'a Request<B>) -> Self {
        Self::from_parts(req.method(), req.uri(), req.headers())
    }

    pub fn from_parts(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            path: uri.path(),
            query: uri.query(),
            authority: crate::http_util::authority_of(uri, headers),
            headers,
        }
    }
}

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the named authorization (or `"permissive"`).
    Allow(Arc<str>),
    Deny(DenyReason),
}

/// Why traffic was denied; shown to the client in a 403 and in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    #[error("port {port} has no authorization policy")]
    NoPolicy { port: u16 },
    #[error("{client} is not an allowed source for port {port}")]
    SourceNotAllowed { client: SpiffeId, port: u16 },
    #[error("no rule allows {client} to {method} {path} on port {port}")]
    RouteNotAllowed {
        client: SpiffeId,
        method: String,
        path: String,
        port: u16,
    },
    #[error("{client} may only send HTTP requests that match a route on port {port}")]
    HttpRoutesOnly { client: SpiffeId, port: u16 },
    #[error("the policy of port {port} could not be applied, so it admits no one ({why})")]
    BrokenPolicy { port: u16, why: Arc<str> },
}

/// A port whose policy could not be built denies everyone, before any mode.
fn broken(port: u16, policy: Option<&InboundPolicy>) -> Option<Decision> {
    let why = policy?.broken.clone()?;
    Some(Decision::Deny(DenyReason::BrokenPolicy { port, why }))
}

/// The rule name of permissive decisions, allocated once.
fn permissive() -> Arc<str> {
    static NAME: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("permissive"));
    NAME.clone()
}

/// The first authorization listing `source` whose traffic `admits`, and
/// whether any authorization lists the source at all.
fn first_admitting(
    policy: &InboundPolicy,
    source: &SpiffeId,
    admits: impl Fn(&Traffic) -> bool,
) -> Result<Arc<str>, bool> {
    let mut source_listed = false;
    for authz in policy.authorizations_for(source) {
        source_listed = true;
        if admits(&authz.traffic) {
            return Ok(authz.name.clone());
        }
    }
    Err(source_listed)
}

/// Authorizes one HTTP request from a verified mesh identity.
pub fn authorize_http(
    permissive_mode: bool,
    port: u16,
    policy: Option<&InboundPolicy>,
    source: &SpiffeId,
    request: &HttpRequestView<'_>,
) -> Decision {
    if let Some(denied) = broken(port, policy) {
        return denied;
    }
    if permissive_mode {
        return Decision::Allow(permissive());
    }
    let Some(policy) = policy else {
        return Decision::Deny(DenyReason::NoPolicy { port });
    };
    let admitted = first_admitting(policy, source, |traffic| match traffic {
        Traffic::All => true,
        Traffic::Http(matchers) => super::matcher::any_matches(
            matchers,
            request.method,
            request.path,
            request.authority,
            request.headers,
        ),
        Traffic::Nothing => false,
    });
    let source_listed = match admitted {
        Ok(name) => return Decision::Allow(name),
        Err(listed) => listed,
    };
    Decision::Deny(if source_listed {
        DenyReason::RouteNotAllowed {
            client: source.clone(),
            method: request.method.to_string(),
            path: request.path.to_string(),
            port,
        }
    } else {
        DenyReason::SourceNotAllowed {
            client: source.clone(),
            port,
        }
    })
}

/// Authorizes an opaque TCP connection from a verified mesh identity: only a
/// rule that admits all traffic (a TCPRoute) allows it.
pub fn authorize_tcp(
    permissive_mode: bool,
    port: u16,
    policy: Option<&InboundPolicy>,
    source: &SpiffeId,
) -> Decision {
    if let Some(denied) = broken(port, policy) {
        return denied;
    }
    if permissive_mode {
        return Decision::Allow(permissive());
    }
    let Some(policy) = policy else {
        return Decision::Deny(DenyReason::NoPolicy { port });
    };
    let source_listed = match first_admitting(policy, source, |t| matches!(t, Traffic::All)) {
        Ok(name) => return Decision::Allow(name),
        Err(listed) => listed,
    };
    Decision::Deny(if source_listed {
        DenyReason::HttpRoutesOnly {
            client: source.clone(),
            port,
        }
    } else {
        DenyReason::SourceNotAllowed {
            client: source.clone(),
            port,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Protocol,
        policy::{Authorization, matcher::HttpMatcher},
    };
    use osm_api::v1::HttpMatch;

    fn id(sa: &str) -> SpiffeId {
        SpiffeId::new("cluster.local", "default", sa)
    }

    fn http_match(name: &str, path: &str, methods: &[&str]) -> HttpMatcher {
        HttpMatcher::compile(&HttpMatch {
            name: name.into(),
            path_regex: path.into(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            headers: Default::default(),
        })
        .expect("compiles")
    }

    /// The SMI spec's worked example: api-service-routes {api: /api any
    /// method; metrics: /metrics GET}; prometheus may GET /metrics; website
    /// and payments may use /api.
    fn spec_example() -> InboundPolicy {
        InboundPolicy::new(
            8080,
            Protocol::Http1,
            vec![
                Authorization {
                    name: "default/path-specific".into(),
                    sources: [id("prometheus")].into(),
                    traffic: Traffic::Http(vec![http_match("metrics", "/metrics", &["GET"])]),
                },
                Authorization {
                    name: "default/api-service-api".into(),
                    sources: [id("website-service"), id("payments-service")].into(),
                    traffic: Traffic::Http(vec![http_match("api", "/api", &["*"])]),
                },
            ],
            vec![],
        )
    }

    #[test]
    fn smi_worked_example_allow_table() {
        let policy = spec_example();
        let h = HeaderMap::new();
        let cases = [
            ("website-service", Method::GET, "/api", true),
            ("website-service", Method::POST, "/api", true),
            ("payments-service", Method::DELETE, "/api", true),
            ("prometheus", Method::GET, "/metrics", true),
            ("prometheus", Method::POST, "/metrics", false),
            ("prometheus", Method::GET, "/api", false),
            ("website-service", Method::GET, "/metrics", false),
            ("payments-service", Method::GET, "/metrics", false),
            ("unknown", Method::GET, "/api", false),
            ("unknown", Method::GET, "/metrics", false),
        ];
        for (sa, method, path, want) in cases {
            let view = HttpRequestView {
                method: &method,
                path,
                query: None,
                authority: None,
                headers: &h,
            };
            let got = authorize_http(false, 8080, Some(&policy), &id(sa), &view);
            assert_eq!(
                matches!(got, Decision::Allow(_)),
                want,
                "{sa} {method} {path}: {got:?}"
            );
        }
    }

    #[test]
    fn deny_reasons_say_why() {
        let policy = spec_example();
        let h = HeaderMap::new();
        let view = HttpRequestView {
            method: &Method::POST,
            path: "/metrics",
            query: None,
            authority: None,
            headers: &h,
        };
        let got = authorize_http(false, 8080, Some(&policy), &id("prometheus"), &view);
        let Decision::Deny(reason) = got else {
            panic!("denied expected")
        };
        assert_eq!(
            reason.to_string(),
            "no rule allows spiffe://cluster.local/ns/default/sa/prometheus to POST /metrics on port 8080"
        );
        let got = authorize_http(false, 9090, None, &id("prometheus"), &view);
        assert_eq!(got, Decision::Deny(DenyReason::NoPolicy { port: 9090 }));
        let got = authorize_http(false, 8080, Some(&policy), &id("bookthief"), &view);
        let Decision::Deny(reason) = got else {
            panic!("denied expected")
        };
        assert_eq!(
            reason.to_string(),
            "spiffe://cluster.local/ns/default/sa/bookthief is not an allowed source for port 8080"
        );
    }

    #[test]
    fn permissive_mode_allows_any_mesh_identity() {
        let h = HeaderMap::new();
        let view = HttpRequestView {
            method: &Method::GET,
            path: "/x",
            query: None,
            authority: None,
            headers: &h,
        };
        assert_eq!(
            authorize_http(true, 1, None, &id("anyone"), &view),
            Decision::Allow("permissive".into())
        );
        assert_eq!(
            authorize_tcp(true, 1, None, &id("anyone")),
            Decision::Allow("permissive".into())
        );
    }

    #[test]
    fn tcp_needs_an_all_traffic_rule() {
        let policy = spec_example();
        assert!(matches!(
            authorize_tcp(false, 8080, Some(&policy), &id("prometheus")),
            Decision::Deny(DenyReason::HttpRoutesOnly { .. })
        ));
        let mut rules = policy.authorizations().to_vec();
        rules.push(Authorization {
            name: "default/tcp".into(),
            sources: [id("prometheus")].into(),
            traffic: Traffic::All,
        });
        let policy = InboundPolicy::new(8080, Protocol::Http1, rules, vec![]);
        assert_eq!(
            authorize_tcp(false, 8080, Some(&policy), &id("prometheus")),
            Decision::Allow("default/tcp".into())
        );
        // An all-traffic rule admits HTTP too (a TrafficTarget with only a TCPRoute).
        let h = HeaderMap::new();
        let view = HttpRequestView {
            method: &Method::PUT,
            path: "/anything",
            query: None,
            authority: None,
            headers: &h,
        };
        assert_eq!(
            authorize_http(false, 8080, Some(&policy), &id("prometheus"), &view),
            Decision::Allow("default/tcp".into())
        );
    }

    #[test]
    fn an_authorization_without_traffic_allows_nothing() {
        let policy = InboundPolicy::new(
            1,
            Protocol::Detect,
            vec![Authorization {
                name: "x".into(),
                sources: [id("a")].into(),
                traffic: Traffic::Nothing,
            }],
            vec![],
        );
        let h = HeaderMap::new();
        let view = HttpRequestView {
            method: &Method::GET,
            path: "/",
            query: None,
            authority: None,
            headers: &h,
        };
        assert!(matches!(
            authorize_http(false, 1, Some(&policy), &id("a"), &view),
            Decision::Deny(_)
        ));
        assert!(matches!(
            authorize_tcp(false, 1, Some(&policy), &id("a")),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn the_first_admitting_rule_of_the_source_names_the_decision() {
        let rule = |name: &str, sa: &str, traffic: Traffic| Authorization {
            name: name.into(),
            sources: [id(sa)].into(),
            traffic,
        };
        let policy = InboundPolicy::new(
            1,
            Protocol::Detect,
            vec![
                rule("other-source", "b", Traffic::All),
                rule(
                    "http-only",
                    "a",
                    Traffic::Http(vec![http_match("m", "/x", &[])]),
                ),
                rule("all", "a", Traffic::All),
                rule("all-again", "a", Traffic::All),
            ],
            vec![],
        );
        let h = HeaderMap::new();
        let at = |path| HttpRequestView {
            method: &Method::GET,
            path,
            query: None,
            authority: None,
            headers: &h,
        };
        assert_eq!(
            authorize_http(false, 1, Some(&policy), &id("a"), &at("/x")),
            Decision::Allow("http-only".into())
        );
        assert_eq!(
            authorize_http(false, 1, Some(&policy), &id("a"), &at("/y")),
            Decision::Allow("all".into())
        );
        assert_eq!(
            authorize_tcp(false, 1, Some(&policy), &id("a")),
            Decision::Allow("all".into())
        );
        assert_eq!(
            authorize_tcp(false, 1, Some(&policy), &id("b")),
            Decision::Allow("other-source".into())
        );
        assert_eq!(policy.authorizations().len(), 4);
    }
}
