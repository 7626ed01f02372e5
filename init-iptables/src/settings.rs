//! What the rules are built from: the proxy's UID and ports, and the pod's
//! exclusions (MeshConfig lists merged with the pod's annotations by the
//! injector).

use std::net::IpAddr;

use ipnet::IpNet;

pub use osm_api::compat::{
    PROXY_INBOUND_PORT as INBOUND_PORT, PROXY_OUTBOUND_PORT as OUTBOUND_PORT, PROXY_UID,
    RESERVED_INBOUND_PORTS,
    exclusions::{ListError, cidr_list, interface_list, port_list},
};

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

    /// The source of the proxy's connections to its application at the
    /// pod's own address ([`osm_api::compat::APP_SOURCE_V4`] and `_V6`).
    pub fn app_source(self) -> String {
        match self {
            Family::V4 => format!("{}/32", osm_api::compat::APP_SOURCE_V4),
            Family::V6 => format!("{}/128", osm_api::compat::APP_SOURCE_V6),
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
