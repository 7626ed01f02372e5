//! The nat-table rules, as data (DESIGN section 7; the order is OSM's).
//!
//! Inbound: PREROUTING sends TCP to `OSM_PROXY_INBOUND`, which lets excluded
//! interfaces and ports and the proxy's own reserved ports through, and
//! sends the rest to `OSM_PROXY_IN_REDIRECT` (REDIRECT to 15003).
//! Outbound: OUTPUT sends TCP to `OSM_PROXY_OUTBOUND`, which sends the
//! proxy's hairpin traffic (UID 1500 to a non-loopback address over `lo`:
//! the pod calling its own Service) to the inbound redirect, lets the
//! application's loopback traffic, the proxy's own traffic, loopback
//! destinations and every exclusion through, and sends the rest (or only
//! the included ranges) to `OSM_PROXY_OUT_REDIRECT` (REDIRECT to 15001).

use crate::settings::{Family, RESERVED_INBOUND_PORTS, Settings};

pub const INBOUND: &str = "OSM_PROXY_INBOUND";
pub const IN_REDIRECT: &str = "OSM_PROXY_IN_REDIRECT";
pub const OUTBOUND: &str = "OSM_PROXY_OUTBOUND";
pub const OUT_REDIRECT: &str = "OSM_PROXY_OUT_REDIRECT";
/// The chains osm-init owns (flushed and refilled on every run).
pub const CHAINS: [&str; 4] = [INBOUND, IN_REDIRECT, OUTBOUND, OUT_REDIRECT];
/// Marks the rules osm-init adds to the built-in chains, so a later run
/// finds and replaces them instead of adding them twice.
pub const MARK: &str = "osm-init";
/// iptables' multiport match takes at most 15 ports.
const MULTIPORT_MAX: usize = 15;

/// One rule: `-A chain args...`, or `-I chain 1 args...` when `at_top`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: &'static str,
    pub args: String,
    pub at_top: bool,
}

impl Rule {
    fn append(chain: &'static str, args: impl Into<String>) -> Self {
        Self {
            chain,
            args: args.into(),
            at_top: false,
        }
    }

    /// The line for iptables-restore.
    pub fn render(&self) -> String {
        if self.at_top {
            format!("-I {} 1 {}", self.chain, self.args)
        } else {
            format!("-A {} {}", self.chain, self.args)
        }
    }

    /// A rule of a built-in chain (carries the mark).
    pub fn is_builtin(&self) -> bool {
        !CHAINS.contains(&self.chain)
    }
}

fn multiport(ports: &[u16]) -> Vec<String> {
    ports
        .chunks(MULTIPORT_MAX)
        .map(|chunk| {
            let list: Vec<String> = chunk.iter().map(u16::to_string).collect();
            format!("-p tcp -m multiport --dports {}", list.join(","))
        })
        .collect()
}

/// Every rule for one IP family, in order.
pub fn rules(settings: &Settings, family: Family) -> Vec<Rule> {
    let lo = family.loopback();
    let uid = settings.proxy_uid;
    let mark = format!("-m comment --comment {MARK}");
    let mut out = Vec::new();

    // Inbound.
    out.push(Rule::append(
        IN_REDIRECT,
        format!("-p tcp -j REDIRECT --to-ports {}", settings.inbound_port),
    ));
    out.push(Rule::append(
        "PREROUTING",
        format!("-p tcp {mark} -j {INBOUND}"),
    ));
    for iface in &settings.exclude_interfaces {
        out.push(Rule::append(INBOUND, format!("-i {iface} -j RETURN")));
    }
    for ports in multiport(&settings.exclude_inbound_ports) {
        out.push(Rule::append(INBOUND, format!("{ports} -j RETURN")));
    }
    for port in RESERVED_INBOUND_PORTS {
        out.push(Rule::append(
            INBOUND,
            format!("-p tcp --dport {port} -j RETURN"),
        ));
    }
    out.push(Rule::append(INBOUND, format!("-p tcp -j {IN_REDIRECT}")));

    // Outbound.
    out.push(Rule::append(
        OUT_REDIRECT,
        format!("-p tcp -j REDIRECT --to-ports {}", settings.outbound_port),
    ));
    out.push(Rule::append(
        "OUTPUT",
        format!("-p tcp {mark} -j {OUTBOUND}"),
    ));
    // The proxy reaching its application at the pod's own address (a
    // port the pod does not declare) connects from the app source: let it
    // through; its other connections to the pod's address are a request
    // of the application to itself and go through the inbound side.
    out.push(Rule::append(
        OUTBOUND,
        format!(
            "-s {} -o lo -m owner --uid-owner {uid} -j RETURN",
            family.app_source()
        ),
    ));
    out.push(Rule::append(
        OUTBOUND,
        format!("! -d {lo} -o lo -m owner --uid-owner {uid} -j {IN_REDIRECT}"),
    ));
    out.push(Rule::append(
        OUTBOUND,
        format!("-o lo -m owner ! --uid-owner {uid} -j RETURN"),
    ));
    out.push(Rule::append(
        OUTBOUND,
        format!("-m owner --uid-owner {uid} -j RETURN"),
    ));
    out.push(Rule::append(OUTBOUND, format!("-d {lo} -j RETURN")));
    for iface in &settings.exclude_interfaces {
        out.push(Rule::append(OUTBOUND, format!("-o {iface} -j RETURN")));
    }
    for net in settings
        .exclude_outbound_ip_ranges
        .iter()
        .filter(|n| family.holds(n))
    {
        out.push(Rule::append(OUTBOUND, format!("-d {net} -j RETURN")));
    }
    for ports in multiport(&settings.exclude_outbound_ports) {
        out.push(Rule::append(OUTBOUND, format!("{ports} -j RETURN")));
    }
    if settings.include_outbound_ip_ranges.is_empty() {
        out.push(Rule::append(OUTBOUND, format!("-j {OUT_REDIRECT}")));
    } else {
        for net in settings
            .include_outbound_ip_ranges
            .iter()
            .filter(|n| family.holds(n))
        {
            out.push(Rule::append(
                OUTBOUND,
                format!("-d {net} -j {OUT_REDIRECT}"),
            ));
        }
        out.push(Rule::append(OUTBOUND, "-j RETURN"));
    }

    // PodIP mode: the proxy's connections to the application on loopback
    // go to the pod's address instead.
    if let Some(ip) = settings.pod_ip {
        let matches_family = matches!(
            (family, ip),
            (Family::V4, std::net::IpAddr::V4(_)) | (Family::V6, std::net::IpAddr::V6(_))
        );
        if matches_family {
            out.push(Rule {
                chain: "OUTPUT",
                args: format!(
                    "-d {lo} -o lo -p tcp -m owner --uid-owner {uid} {mark} -j DNAT --to-destination {ip}"
                ),
                at_top: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(settings: &Settings, family: Family) -> Vec<String> {
        rules(settings, family).iter().map(Rule::render).collect()
    }

    #[test]
    fn defaults_intercept_everything_but_the_proxy_and_loopback() {
        assert_eq!(
            lines(&Settings::default(), Family::V4),
            [
                "-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15003",
                "-A PREROUTING -p tcp -m comment --comment osm-init -j OSM_PROXY_INBOUND",
                "-A OSM_PROXY_INBOUND -p tcp --dport 15010 -j RETURN",
                "-A OSM_PROXY_INBOUND -p tcp --dport 15901 -j RETURN",
                "-A OSM_PROXY_INBOUND -p tcp --dport 15902 -j RETURN",
                "-A OSM_PROXY_INBOUND -p tcp --dport 15903 -j RETURN",
                "-A OSM_PROXY_INBOUND -p tcp --dport 15904 -j RETURN",
                "-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT",
                "-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
                "-A OUTPUT -p tcp -m comment --comment osm-init -j OSM_PROXY_OUTBOUND",
                "-A OSM_PROXY_OUTBOUND -s 127.0.0.6/32 -o lo -m owner --uid-owner 1500 -j RETURN",
                "-A OSM_PROXY_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j OSM_PROXY_IN_REDIRECT",
                "-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner 1500 -j RETURN",
                "-A OSM_PROXY_OUTBOUND -m owner --uid-owner 1500 -j RETURN",
                "-A OSM_PROXY_OUTBOUND -d 127.0.0.1/32 -j RETURN",
                "-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT",
            ]
        );
        let v6 = lines(&Settings::default(), Family::V6);
        assert!(v6.contains(&"-A OSM_PROXY_OUTBOUND -d ::1/128 -j RETURN".to_string()));
        assert!(
            v6.contains(
                &"-A OSM_PROXY_OUTBOUND -s ::1/128 -o lo -m owner --uid-owner 1500 -j RETURN"
                    .to_string()
            )
        );
        assert_eq!(v6.len(), 16);
    }

    #[test]
    fn exclusions_inclusions_and_pod_ip_mode() {
        let settings = Settings {
            exclude_inbound_ports: (8000..8017).collect(),
            exclude_outbound_ports: vec![5432],
            exclude_outbound_ip_ranges: vec![
                "10.0.0.0/8".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ],
            include_outbound_ip_ranges: vec!["10.96.0.0/12".parse().unwrap()],
            exclude_interfaces: vec!["eth1".into()],
            pod_ip: Some("10.1.2.3".parse().unwrap()),
            ..Settings::default()
        };
        let v4 = lines(&settings, Family::V4);
        let has = |l: &str| v4.iter().any(|x| x == l);
        assert!(has("-A OSM_PROXY_INBOUND -i eth1 -j RETURN"));
        // 17 ports: a full multiport rule of 15 and one of 2.
        assert!(has(
            "-A OSM_PROXY_INBOUND -p tcp -m multiport --dports 8000,8001,8002,8003,8004,8005,8006,8007,8008,8009,8010,8011,8012,8013,8014 -j RETURN"
        ));
        assert!(has(
            "-A OSM_PROXY_INBOUND -p tcp -m multiport --dports 8015,8016 -j RETURN"
        ));
        assert!(has("-A OSM_PROXY_OUTBOUND -o eth1 -j RETURN"));
        assert!(has("-A OSM_PROXY_OUTBOUND -d 10.0.0.0/8 -j RETURN"));
        assert!(
            !v4.iter().any(|l| l.contains("fd00::/8")),
            "IPv6 ranges stay out of IPv4 rules"
        );
        assert!(has(
            "-A OSM_PROXY_OUTBOUND -p tcp -m multiport --dports 5432 -j RETURN"
        ));
        // Inclusion: only the listed range is redirected, the rest returns.
        let tail: Vec<&String> = v4
            .iter()
            .filter(|l| l.starts_with("-A OSM_PROXY_OUTBOUND"))
            .rev()
            .take(2)
            .collect();
        assert_eq!(tail[0], "-A OSM_PROXY_OUTBOUND -j RETURN");
        assert_eq!(
            tail[1],
            "-A OSM_PROXY_OUTBOUND -d 10.96.0.0/12 -j OSM_PROXY_OUT_REDIRECT"
        );
        assert!(has(
            "-I OUTPUT 1 -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -m comment --comment osm-init -j DNAT --to-destination 10.1.2.3"
        ));
        // Exclusions come before the final redirect.
        let exclude = v4.iter().position(|l| l.contains("-d 10.0.0.0/8")).unwrap();
        let redirect = v4
            .iter()
            .position(|l| l.contains("-j OSM_PROXY_OUT_REDIRECT"))
            .unwrap();
        assert!(exclude < redirect);

        let v6 = lines(&settings, Family::V6);
        assert!(
            v6.iter()
                .any(|l| l == "-A OSM_PROXY_OUTBOUND -d fd00::/8 -j RETURN")
        );
        assert!(
            !v6.iter().any(|l| l.contains("DNAT")),
            "the IPv4 pod address has no IPv6 rule"
        );
        assert!(!v6.iter().any(|l| l.contains("-d 10.96.0.0/12")));
    }
}
