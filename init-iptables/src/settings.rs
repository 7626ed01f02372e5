//! What the rules are built from: the proxy's UID and ports, and the pod's
//! exclusions (MeshConfig lists merged with the pod's annotations by the
//! injector).

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// The proxy's UID: its own traffic is never intercepted.
pub const PROXY_UID: u32 = 1500;
/// Where intercepted inbound connections go.
pub const INBOUND_PORT: u16 = 15003;
/// Where intercepted outbound connections go.
pub const OUTBOUND_PORT: u16 = 15001;
/// Inbound ports that bypass the proxy's inbound listener: metrics (15010),
/// the rewritten probes (15901-15903) and the TCP health check (15904).
pub const RESERVED_INBOUND_PORTS: &[u16] = &[15010, 15901, 15902, 15903, 15904];

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.1/32",
            Family::V6 => "::1/128",
        }
    }

    pub fn holds(self, net: &IpNet) -> bool {
        matches!(
            (self, net),
            (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
        )
    }
}

/// Everything the rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub proxy_uid: u32,
    pub inbound_port: u16,
    pub outbound_port: u16,
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    /// Destinations that bypass the proxy.
    pub exclude_outbound_ip_ranges: Vec<IpNet>,
    /// When not empty, only these destinations go through the proxy.
    pub include_outbound_ip_ranges: Vec<IpNet>,
    /// Interfaces whose traffic bypasses the proxy, both ways.
    pub exclude_interfaces: Vec<String>,
    /// PodIP mode: the proxy reaches the application at the pod's address
    /// (for applications that do not listen on localhost).
    pub pod_ip: Option<IpAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            proxy_uid: PROXY_UID,
            inbound_port: INBOUND_PORT,
            outbound_port: OUTBOUND_PORT,
            exclude_inbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
            exclude_outbound_ip_ranges: Vec::new(),
            include_outbound_ip_ranges: Vec::new(),
            exclude_interfaces: Vec::new(),
            pod_ip: None,
        }
    }
}

/// Why a list value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {expected}")]
pub struct ListError {
    pub value: String,
    pub expected: &'static str,
}

fn list<T: FromStr>(text: &str, expected: &'static str) -> Result<Vec<T>, ListError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| ListError {
                value: s.to_string(),
                expected,
            })
        })
        .collect()
}

/// A comma-separated list of ports (`8080, 9090`), as the annotations
/// write them. Port 0 is refused.
pub fn port_list(text: &str) -> Result<Vec<u16>, ListError> {
    let ports: Vec<u16> = list(text, "a port (1-65535)")?;
    if ports.contains(&0) {
        return Err(ListError {
            value: "0".into(),
            expected: "a port (1-65535)",
        });
    }
    Ok(ports)
}

/// A comma-separated list of CIDRs (`10.0.0.0/8, fd00::/8`); a bare
/// address is one host.
pub fn cidr_list(text: &str) -> Result<Vec<IpNet>, ListError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ListError {
                    value: s.to_string(),
                    expected: "an IP range (CIDR) or address",
                })
        })
        .collect()
}

/// A comma-separated list of interface names.
pub fn interface_list(text: &str) -> Result<Vec<String>, ListError> {
    let names: Vec<String> = list(text, "an interface name")?;
    for n in &names {
        let valid = n.len() < 16
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !valid {
            return Err(ListError {
                value: n.clone(),
                expected: "an interface name",
            });
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_annotations_write_them() {
        assert_eq!(port_list(" 8080,9090 ,"), Ok(vec![8080, 9090]));
        assert_eq!(port_list(""), Ok(vec![]));
        assert_eq!(
            port_list("80,http").unwrap_err().to_string(),
            "\"http\" is not a port (1-65535)"
        );
        assert!(port_list("0").is_err());
        assert!(port_list("70000").is_err());
        assert_eq!(
            cidr_list("10.0.0.0/8, 192.168.1.1, fd00::/8").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.168.1.1/32".parse().unwrap(),
                "fd00::/8".parse().unwrap()
            ]
        );
        assert!(cidr_list("10.0.0.0/33").is_err());
        assert_eq!(
            interface_list("eth1, net-2").unwrap(),
            vec!["eth1", "net-2"]
        );
        assert!(interface_list("eth0; rm -rf").is_err());
    }
}
