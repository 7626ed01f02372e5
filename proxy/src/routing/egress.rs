//! Egress policies: which destinations outside the mesh a proxy may reach
//! when global egress is off. Pure decisions.

use std::net::SocketAddr;

use ipnet::IpNet;

use crate::policy::{HttpRequestView, matcher::HttpMatcher};

/// One compiled Egress rule.
#[derive(Debug, Clone)]
pub struct EgressRule {
    pub name: std::sync::Arc<str>,
    /// Lower case, without a trailing dot.
    pub hosts: Vec<String>,
    pub cidrs: Vec<IpNet>,
    pub ports: Vec<(u16, EgressProtocol)>,
    pub matches: Vec<HttpMatcher>,
    /// Circuit breaking from the UpstreamTrafficSetting the rule names
    /// (kept across configs while its limits stay the same).
    pub breaker: Option<std::sync::Arc<crate::resilience::breaker::Breaker>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressProtocol {
    Http,
    Https,
    Tcp,
}

impl EgressProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "http" => Self::Http,
            "https" => Self::Https,
            "tcp" | "tcp-server-first" => Self::Tcp,
            _ => return None,
        })
    }
}

impl EgressRule {
    fn has_port(&self, port: u16, protocol: EgressProtocol) -> bool {
        self.ports.contains(&(port, protocol))
    }

    fn names_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.hosts.iter().any(|h| host_matches(h, host))
    }
}

/// Whether a rule's host names `host`: the same name (case aside), or,
/// for `*.example.com`, any name below `example.com` (not the apex).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// An HTTP request to `host` on the original destination's `port`.
pub fn allows_http<'a>(
    rules: &'a [EgressRule],
    host: &str,
    port: u16,
    request: &HttpRequestView<'_>,
) -> Option<&'a EgressRule> {
    rules.iter().find(|r| {
        r.has_port(port, EgressProtocol::Http)
            && r.names_host(host)
            && (r.matches.is_empty()
                || crate::policy::matcher::any_matches(
                    &r.matches,
                    request.method,
                    request.path,
                    request.authority,
                    request.headers,
                ))
    })
}

/// A TLS connection whose ClientHello names `sni`.
pub fn allows_tls<'a>(rules: &'a [EgressRule], sni: &str, port: u16) -> Option<&'a EgressRule> {
    rules
        .iter()
        .find(|r| r.has_port(port, EgressProtocol::Https) && r.names_host(sni))
}

/// A connection to an address in a rule's IP ranges, on one of its ports
/// (any protocol: the ranges name the destination).
pub fn allows_address(rules: &[EgressRule], dst: SocketAddr) -> Option<&EgressRule> {
    let ip = crate::policy::canonical_ip(dst.ip());
    rules.iter().find(|r| {
        r.ports.iter().any(|(p, _)| *p == dst.port()) && r.cidrs.iter().any(|c| c.contains(&ip))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn rule(hosts: &[&str], cidrs: &[&str], ports: &[(u16, EgressProtocol)]) -> EgressRule {
        EgressRule {
            name: "ns/r".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            cidrs: cidrs.iter().map(|c| c.parse().expect("cidr")).collect(),
            ports: ports.to_vec(),
            matches: vec![],
            breaker: None,
        }
    }

    #[test]
    fn wildcard_hosts_match_subdomains_only() {
        let cases = [
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "a.b.Example.COM", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "badexample.com", false),
            ("*.example.com", "api.example.com.evil", false),
            ("*.example.com", ".example.com", false),
            ("example.com", "EXAMPLE.com", true),
            ("example.com", "api.example.com", false),
        ];
        for (pattern, host, matches) in cases {
            assert_eq!(host_matches(pattern, host), matches, "{pattern} {host}");
        }
    }

    #[test]
    fn hosts_ports_and_ranges() {
        let rules = [
            rule(&["httpbin.org"], &[], &[(80, EgressProtocol::Http)]),
            rule(&["github.com"], &[], &[(443, EgressProtocol::Https)]),
            rule(&[], &["192.168.10.0/24"], &[(5432, EgressProtocol::Tcp)]),
        ];
        let h = HeaderMap::new();
        let view = HttpRequestView {
            method: &Method::GET,
            path: "/",
            query: None,
            authority: None,
            headers: &h,
        };
        assert!(allows_http(&rules, "HTTPBIN.org.", 80, &view).is_some());
        assert!(
            allows_http(&rules, "httpbin.org", 8080, &view).is_none(),
            "another port"
        );
        assert!(
            allows_http(&rules, "github.com", 80, &view).is_none(),
            "https-only host"
        );
        assert!(allows_tls(&rules, "github.com", 443).is_some());
        assert!(allows_tls(&rules, "gitlab.com", 443).is_none());
        assert!(allows_address(&rules, "192.168.10.7:5432".parse().expect("addr")).is_some());
        assert!(allows_address(&rules, "192.168.11.7:5432".parse().expect("addr")).is_none());
        assert!(allows_address(&rules, "192.168.10.7:22".parse().expect("addr")).is_none());
    }
}
