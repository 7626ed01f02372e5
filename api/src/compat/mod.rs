//! The compatibility surface: the names and numbers users' manifests,
//! scripts and clusters already rely on (OSM v1.2's labels, annotations,
//! ports, UID and object names). One home, so the compiler, injector,
//! init step, controller, proxy and CLI cannot drift apart; changing a
//! value here breaks users, so don't.

pub mod exclusions;

use std::net::{Ipv4Addr, Ipv6Addr};

/// The source address the proxy connects to its application from when the
/// application is reached at the pod's own address (not loopback). The
/// proxy's other connections to its own pod address are sent to its
/// inbound side, as a request of the application to itself must be; osm-init
/// lets connections from this source through. One home for both.
pub const APP_SOURCE_V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);
/// IPv6 has one loopback address; the kernel never picks it as the source
/// of a connection to the pod's own address, so it marks the proxy's.
pub const APP_SOURCE_V6: Ipv6Addr = Ipv6Addr::LOCALHOST;

// === Namespace and pod labels and annotations ===

/// Namespace label naming the mesh that monitors it.
pub const MONITORED_BY: &str = "openservicemesh.io/monitored-by";
/// Namespace label that excludes it from the mesh.
pub const IGNORE: &str = "openservicemesh.io/ignore";
/// Namespace or pod annotation: `enabled`/`disabled` sidecar injection.
pub const SIDECAR_INJECTION: &str = "openservicemesh.io/sidecar-injection";
/// Namespace annotation: `enabled` makes injected pods scrapeable.
pub const METRICS: &str = "openservicemesh.io/metrics";
/// Pod annotation: the sidecar's access log, `off`, `json` or `text`
/// (this mesh's addition; MeshConfig `observability.accessLog` otherwise).
pub const ACCESS_LOG: &str = "openservicemesh.io/access-log";
/// The values of [`ACCESS_LOG`], as the proxies' config carries them.
pub const ACCESS_LOG_VALUES: [&str; 3] = ["off", "json", "text"];
/// Pod annotation: outbound ports that bypass the proxy.
pub const OUTBOUND_PORT_EXCLUSION_LIST: &str = "openservicemesh.io/outbound-port-exclusion-list";
/// Pod annotation: inbound ports that bypass the proxy.
pub const INBOUND_PORT_EXCLUSION_LIST: &str = "openservicemesh.io/inbound-port-exclusion-list";
/// Pod annotation: destination ranges that bypass the proxy.
pub const OUTBOUND_IP_RANGE_EXCLUSION_LIST: &str =
    "openservicemesh.io/outbound-ip-range-exclusion-list";
/// Pod annotation: when set, only these destination ranges are intercepted.
pub const OUTBOUND_IP_RANGE_INCLUSION_LIST: &str =
    "openservicemesh.io/outbound-ip-range-inclusion-list";
/// Kubernetes' label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Kubernetes' label a Deployment's ReplicaSet puts on its pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

// === Names ===

/// The mesh name `osm install` and the chart use by default.
pub const DEFAULT_MESH_NAME: &str = "osm";
/// The control plane's namespace by default.
pub const DEFAULT_OSM_NAMESPACE: &str = "osm-system";
/// The one MeshConfig the mesh reads, in the control plane's namespace.
pub const MESH_CONFIG_NAME: &str = "osm-mesh-config";
/// The audience of the ServiceAccount tokens proxies prove themselves with.
pub const TOKEN_AUDIENCE: &str = "osm-controller";
/// The sidecar's container name.
pub const PROXY_CONTAINER: &str = "osm-proxy";
/// The init container that installs the interception rules.
pub const INIT_CONTAINER: &str = "osm-init";

// === The sidecar ===

/// The proxy's UID (and GID): its own traffic is never intercepted.
pub const PROXY_UID: u32 = 1500;
/// The proxy's admin listener (loopback only).
pub const PROXY_ADMIN_PORT: u16 = 15000;
/// Where intercepted outbound connections go.
pub const PROXY_OUTBOUND_PORT: u16 = 15001;
/// Where intercepted inbound connections go.
pub const PROXY_INBOUND_PORT: u16 = 15003;
/// The proxy's metrics (Prometheus) and readiness listener.
pub const PROXY_METRICS_PORT: u16 = 15010;
/// The rewritten HTTP probes: liveness, readiness, startup.
pub const LIVENESS_PROBE_PORT: u16 = 15901;
pub const READINESS_PROBE_PORT: u16 = 15902;
pub const STARTUP_PROBE_PORT: u16 = 15903;
/// The TCP health check the rewritten tcpSocket probes call.
pub const HEALTHCHECK_PORT: u16 = 15904;
/// Its path, and the header naming the application port to check.
pub const HEALTHCHECK_PATH: &str = "/osm-healthcheck";
pub const ORIGINAL_TCP_PORT_HEADER: &str = "Original-Tcp-Port";
/// Inbound ports that bypass the proxy's inbound listener: metrics and the
/// probe listeners (the kubelet must reach them without mTLS).
pub const RESERVED_INBOUND_PORTS: &[u16] = &[
    PROXY_METRICS_PORT,
    LIVENESS_PROBE_PORT,
    READINESS_PROBE_PORT,
    STARTUP_PROBE_PORT,
    HEALTHCHECK_PORT,
];

// === The control plane ===

/// The controller's gRPC port (certificates and the config stream).
pub const CONTROLLER_GRPC_PORT: u16 = 15128;
/// The controller's health, metrics and debug port.
pub const CONTROLLER_ADMIN_PORT: u16 = 9091;
/// The controller's validating webhook.
pub const CONTROLLER_WEBHOOK_PORT: u16 = 9093;
/// The injector's mutating webhook.
pub const INJECTOR_PORT: u16 = 9090;

/// MeshConfig `sidecar.logLevel` (Envoy's level names, as OSM wrote them)
/// as the proxy's log filter: at injection (`OSM_PROXY_LOG`) and, for
/// running proxies, through the config stream.
pub fn proxy_log_filter(level: &str) -> &'static str {
    match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "off" => "off",
        _ => "error",
    }
}
