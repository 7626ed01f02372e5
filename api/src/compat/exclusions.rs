//! The grammar of the exclusion lists (MeshConfig fields and the pod
//! annotations of [`super`]): comma-separated ports, CIDRs or interface
//! names. The injector validates with it, `osm-init` parses its flags with
//! it: one grammar, so what the injector accepts the init step accepts.

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// Why a list value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {expected}")]
pub struct ListError {
    pub value: String,
    pub expected: &'static str,
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn list<T: FromStr>(text: &str, expected: &'static str) -> Result<Vec<T>, ListError> {
    items(text)
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
    items(text)
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
