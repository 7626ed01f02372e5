//! Egress rules: the destinations outside the mesh a proxy may reach
//! when global egress is off.

use std::net::IpAddr;

use osm_api::v1;

use super::{ConfigError, compile_matches, err, port_of};
use crate::{
    resilience::breaker::{Breaker, Limits},
    routing::egress::{EgressProtocol, EgressRule},
    upstream::EndpointRegistry,
};

pub(super) fn build_egress(
    at: &str,
    r: &v1::EgressRule,
    registry: &EndpointRegistry,
) -> Result<EgressRule, ConfigError> {
    let mut cidrs = Vec::new();
    for (j, c) in r.cidrs.iter().enumerate() {
        cidrs.push(parse_cidr(c).ok_or_else(|| {
            err(
                format!("{at}.cidrs[{j}]"),
                format!("{c:?} is not an IP address or CIDR"),
            )
        })?);
    }
    let mut ports = Vec::new();
    for (j, p) in r.ports.iter().enumerate() {
        let number = port_of(&format!("{at}.ports[{j}].number"), p.number)?;
        let protocol = EgressProtocol::parse(&p.protocol).ok_or_else(|| {
            err(
                format!("{at}.ports[{j}].protocol"),
                format!(
                    "{:?} is not http, https, tcp or tcp-server-first",
                    p.protocol
                ),
            )
        })?;
        ports.push((number, protocol));
    }
    Ok(EgressRule {
        name: r.name.as_str().into(),
        hosts: r
            .hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        cidrs,
        ports,
        matches: compile_matches(&format!("{at}.matches"), &r.matches)?,
        breaker: r
            .limits
            .as_ref()
            .map(Limits::from_config)
            .filter(|l| !l.is_unlimited())
            .map(|limits| {
                registry
                    .breakers
                    .get_or((format!("egress:{}", r.name), limits.clone()), || {
                        Breaker::new(limits)
                    })
            }),
    })
}

pub(super) fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}
