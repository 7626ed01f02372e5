//! Command-line flags of the osm-proxy binary.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::Parser;

use crate::app::ListenerSpec;

/// The mesh sidecar: transparent mTLS, SMI authorization and weighted
/// routing for one pod.
///
/// With iptables redirection (osm-init) in place, it serves the pod's
/// outbound traffic on 15001 and inbound traffic on 15003, reading each
/// connection's original destination. Without interception, give listeners
/// an explicit destination: `--outbound-listen 127.0.0.1:0=10.96.0.10:80`.
#[derive(Debug, Parser)]
#[command(name = "osm-proxy", version)]
pub struct Args {
    /// The controller (host:port) to get the certificate and config from,
    /// e.g. osm-controller.osm-system.svc:15128. Without it the proxy runs
    /// from --config and --cert/--key.
    #[arg(long, env = "OSM_CONTROLLER", conflicts_with_all = ["config", "cert", "key"], requires_all = ["controller_ca", "service_account"])]
    pub controller: Option<String>,

    /// The CA the controller's certificate must chain to (the mesh root):
    /// a PEM file, or the PEM text itself.
    #[arg(long, env = "OSM_CONTROLLER_CA")]
    pub controller_ca: Option<String>,

    /// The name the controller's certificate must carry; default: the host
    /// of --controller.
    #[arg(long, env = "OSM_CONTROLLER_SERVER_NAME")]
    pub controller_server_name: Option<String>,

    /// The pod's ServiceAccount token for the controller (audience
    /// osm-controller); read at each certificate request.
    #[arg(
        long,
        env = "OSM_TOKEN_FILE",
        default_value = "/var/run/secrets/tokens/osm-controller/token"
    )]
    pub token_file: PathBuf,

    /// The pod's ServiceAccount.
    #[arg(long, env = "SERVICE_ACCOUNT")]
    pub service_account: Option<String>,

    /// The mesh's trust domain (the injector sets it): the certificate
    /// request then names the pod's identity, as external issuers
    /// (cert-manager) need.
    #[arg(long, env = "OSM_TRUST_DOMAIN")]
    pub trust_domain: Option<String>,

    /// Static config (YAML or JSON of the config protocol's ProxyConfig);
    /// reloaded when the file changes; a bad file is refused and the running
    /// config stays.
    #[arg(long, env = "OSM_PROXY_CONFIG")]
    pub config: Option<PathBuf>,

    /// The proxy's certificate chain (PEM, leaf first) with its SPIFFE ID.
    #[arg(long, env = "OSM_PROXY_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key of --cert (PEM).
    #[arg(long, env = "OSM_PROXY_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Inbound listener, ADDR or ADDR=TARGET (TARGET replaces the original
    /// destination: the application's address). Repeatable.
    #[arg(long = "inbound-listen", value_name = "ADDR[=TARGET]")]
    pub inbound: Vec<ListenArg>,

    /// Outbound listener, ADDR or ADDR=DEST (DEST replaces the original
    /// destination). Repeatable.
    #[arg(long = "outbound-listen", value_name = "ADDR[=DEST]")]
    pub outbound: Vec<ListenArg>,

    /// Admin endpoints (/ready, /live, /config_dump, /certs, /logging).
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin: SocketAddr,

    /// Prometheus metrics (/stats/prometheus, /metrics).
    #[arg(long, default_value = "0.0.0.0:15010")]
    pub metrics: SocketAddr,

    #[arg(long, env = "POD_NAME", default_value = "")]
    pub pod_name: String,

    #[arg(long, env = "POD_NAMESPACE", default_value = "")]
    pub pod_namespace: String,

    /// The pod's workload kind (Deployment, StatefulSet, ...), for metrics.
    #[arg(long, env = "OSM_WORKLOAD_KIND", default_value = "")]
    pub workload_kind: String,

    /// The pod's workload name, for metrics.
    #[arg(long, env = "OSM_WORKLOAD_NAME", default_value = "")]
    pub workload_name: String,

    /// One line per request or TCP connection on stdout: `json` (`on`),
    /// `text` or `off`; the config's setting (MeshConfig
    /// observability.accessLog, the pod's openservicemesh.io/access-log
    /// annotation) wins once it names one.
    #[arg(long, env = "OSM_ACCESS_LOG", default_value = "on", value_parser = ["on", "off", "json", "text"])]
    pub access_log: String,

    /// How long in-flight work may finish after SIGTERM (e.g. 15s, 500ms).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// How often the config file is checked for changes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub config_poll_interval: Duration,

    /// Worker threads of the data plane. One (the default) runs everything
    /// on a single thread with no cross-thread hand-offs, the cheapest per
    /// request; more help a pod whose proxy needs more than one core.
    #[arg(long, env = "OSM_PROXY_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// Carry HTTP/1.1 requests between this proxy and the mesh's other
    /// proxies over one mTLS HTTP/2 connection per endpoint (they reach the
    /// application as HTTP/1.1), offered as a client and accepted as a
    /// server: one connection between two proxies instead of one per
    /// request in flight, at about a third more CPU per request (see
    /// bench/README.md). A peer that does not take part gets HTTP/1.1;
    /// upgrades (WebSocket), CONNECT and HTTP/1.0 always go as HTTP/1.1.
    #[arg(long, env = "OSM_PROXY_MULTIPLEX_HTTP1", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub multiplex_http1: bool,

    /// The pod's address (`POD_IP`, from the downward API): inbound traffic
    /// to a port no container declares is delivered there, as Kubernetes
    /// would, never to a loopback-only listener.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<std::net::IpAddr>,

    /// The ports the pod's containers declare (`OSM_APP_PORTS`, written by
    /// the injector): inbound traffic to them is delivered on loopback. Not
    /// set: every port is delivered on loopback.
    #[arg(long, env = "OSM_APP_PORTS")]
    pub app_ports: Option<String>,

    /// The kubelet's rewritten probes (JSON from the injector): the proxy
    /// listens on their ports (15901-15904), probes the application and
    /// answers with its status.
    #[arg(long, env = "OSM_PROXY_PROBES", default_value = "")]
    pub probes: String,

    /// Log filter for the proxy's own logs on stderr (RUST_LOG syntax).
    #[arg(long, env = "OSM_PROXY_LOG", default_value = "info")]
    pub log_level: String,
}

/// `ADDR` or `ADDR=TARGET`.
#[derive(Debug, Clone)]
pub struct ListenArg(pub ListenerSpec);

impl FromStr for ListenArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (bind, target) = match s.split_once('=') {
            Some((b, t)) => (b, Some(t)),
            None => (s, None),
        };
        let bind = bind
            .parse()
            .map_err(|_| format!("{bind:?} is not an ip:port address"))?;
        let target = target
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("{t:?} is not an ip:port address"))
            })
            .transpose()?;
        Ok(Self(ListenerSpec {
            bind,
            target,
            required: true,
        }))
    }
}

/// The default listeners: IPv4 required, IPv6 when the host has it.
pub fn default_listeners(port: u16) -> Vec<ListenerSpec> {
    vec![
        ListenerSpec {
            bind: SocketAddr::from(([0, 0, 0, 0], port)),
            target: None,
            required: true,
        },
        ListenerSpec {
            bind: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            target: None,
            required: false,
        },
    ]
}
