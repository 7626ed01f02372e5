//! The osm-init binary: installs the interception rules of one pod.

use std::net::IpAddr;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use osm_init::{
    apply::{host_has_ipv6, planned, restore},
    plan::plan,
    rules::rules,
    settings::{Family, Settings, cidr_list, interface_list, port_list},
};

/// Sends a meshed pod's TCP traffic through osm-proxy: inbound to 15003,
/// outbound to 15001, except the proxy's own traffic (UID 1500), loopback,
/// the proxy's reserved ports and the exclusions given here. Run once per
/// pod network namespace, before the application starts (as an init
/// container with NET_ADMIN); running it again replaces its rules.
#[derive(Debug, Parser)]
#[command(name = "osm-init", version)]
struct Args {
    /// The proxy's UID (its traffic is never intercepted).
    #[arg(long, default_value_t = osm_init::settings::PROXY_UID)]
    proxy_uid: u32,

    /// Inbound ports that bypass the proxy, comma-separated.
    #[arg(long, default_value = "")]
    exclude_inbound_ports: String,

    /// Outbound ports that bypass the proxy, comma-separated.
    #[arg(long, default_value = "")]
    exclude_outbound_ports: String,

    /// Destination ranges (CIDR) that bypass the proxy, comma-separated.
    #[arg(long, default_value = "")]
    exclude_outbound_ip_ranges: String,

    /// When given, only these destination ranges go through the proxy.
    #[arg(long, default_value = "")]
    include_outbound_ip_ranges: String,

    /// Interfaces whose traffic bypasses the proxy, comma-separated.
    #[arg(long, default_value = "")]
    exclude_interfaces: String,

    /// PodIP mode: the proxy reaches the application at this address
    /// instead of localhost (POD_IP from the downward API).
    #[arg(long, env = "OSM_POD_IP_MODE_ADDRESS")]
    pod_ip: Option<IpAddr>,

    /// IPv6 rules: auto (when the host has IPv6), on, off.
    #[arg(long, value_enum, default_value = "auto")]
    ipv6: Ipv6,

    /// Print the iptables-restore input instead of applying it (planned
    /// against the current table when it can be read, else a fresh one).
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Ipv6 {
    Auto,
    On,
    Off,
}

/// The settings from the flags; a bad list names its flag.
fn settings(args: &Args) -> anyhow::Result<Settings> {
    Ok(Settings {
        proxy_uid: args.proxy_uid,
        exclude_inbound_ports: port_list(&args.exclude_inbound_ports)
            .context("--exclude-inbound-ports")?,
        exclude_outbound_ports: port_list(&args.exclude_outbound_ports)
            .context("--exclude-outbound-ports")?,
        exclude_outbound_ip_ranges: cidr_list(&args.exclude_outbound_ip_ranges)
            .context("--exclude-outbound-ip-ranges")?,
        include_outbound_ip_ranges: cidr_list(&args.include_outbound_ip_ranges)
            .context("--include-outbound-ip-ranges")?,
        exclude_interfaces: interface_list(&args.exclude_interfaces)
            .context("--exclude-interfaces")?,
        pod_ip: args.pod_ip,
        ..Settings::default()
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = settings(&args)?;
    let mut families = vec![Family::V4];
    match args.ipv6 {
        Ipv6::On => families.push(Family::V6),
        Ipv6::Auto if host_has_ipv6() => families.push(Family::V6),
        _ => {}
    }
    for family in families {
        if args.dry_run {
            let input =
                planned(&settings, family).unwrap_or_else(|_| plan("", &rules(&settings, family)));
            println!("# {family:?}\n{input}");
            continue;
        }
        let input = planned(&settings, family).with_context(|| format!("{family:?}"))?;
        restore(family, &input).with_context(|| format!("applying the {family:?} rules"))?;
        eprintln!("osm-init: {family:?} rules in place");
    }
    Ok(())
}
