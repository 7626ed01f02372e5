//! The patch that meshes a pod: the init step (`osm-init` with the pod's
//! exclusions), the proxy as a native sidecar (an init container with
//! `restartPolicy: Always`, so it starts, and is ready, before the
//! application, and stops after it), the projected token it proves its
//! identity with, rewritten probes, and the metrics annotations.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use osm_api::{
    compat::{
        HEALTHCHECK_PORT as TCP_HEALTHCHECK_PORT, INBOUND_PORT_EXCLUSION_LIST as INBOUND_PORTS,
        METRICS, OUTBOUND_IP_RANGE_EXCLUSION_LIST as OUTBOUND_EXCLUDE,
        OUTBOUND_IP_RANGE_INCLUSION_LIST as OUTBOUND_INCLUDE,
        OUTBOUND_PORT_EXCLUSION_LIST as OUTBOUND_PORTS, PROXY_ADMIN_PORT, PROXY_INBOUND_PORT,
        PROXY_METRICS_PORT, exclusions,
    },
    resources::mesh_config::MeshConfigSpec,
};
use serde_json::{Value, json};

use crate::{
    decide::{Decision, InjectError, PROXY_CONTAINER, decide},
    probes::{Kind, Rewritten, rewrite},
};

pub use osm_api::compat::{INIT_CONTAINER, PROXY_UID, TOKEN_AUDIENCE};
pub const TOKEN_VOLUME: &str = "osm-controller-token";
pub const TOKEN_DIR: &str = "/var/run/secrets/tokens/osm-controller";

/// What the injector is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectorSettings {
    pub mesh_name: String,
    pub osm_namespace: String,
    pub proxy_image: String,
    pub init_image: String,
    /// `host:port` of the controller's gRPC server.
    pub controller: String,
    /// The mesh root the proxy checks the controller against (public).
    pub trust_bundle_pem: String,
    /// The mesh's trust domain: the proxy's certificate request names its
    /// identity in it.
    pub trust_domain: String,
}

/// RFC 6901: `~` and `/` in a key.
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// MeshConfig list + pod annotation list, both validated.
fn merged<T: std::fmt::Display>(
    mesh: impl IntoIterator<Item = T>,
    pod: &Pod,
    key: &'static str,
    check: impl Fn(&str) -> Result<Vec<T>, exclusions::ListError>,
) -> Result<String, InjectError> {
    let mut all: Vec<String> = mesh.into_iter().map(|v| v.to_string()).collect();
    if let Some(text) = annotation(pod, key) {
        let values = check(text).map_err(|e| InjectError::Exclusion {
            annotation: key,
            message: e.to_string(),
        })?;
        all.extend(values.iter().map(ToString::to_string));
    }
    all.dedup();
    Ok(all.join(","))
}

fn field_env(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

/// The JSON patch for a pod, or None when it stays out of the mesh.
pub fn mutate(
    pod: &Pod,
    namespace: &Namespace,
    mesh: &MeshConfigSpec,
    settings: &InjectorSettings,
) -> Result<Option<Vec<Value>>, InjectError> {
    if let Decision::Skip(_) = decide(pod, namespace, &settings.mesh_name, &settings.osm_namespace)?
    {
        return Ok(None);
    }
    // Read by the controller for the pod's proxy; refused here, where the
    // user sees it, rather than only warned about there.
    if let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(osm_api::compat::ACCESS_LOG))
        .filter(|v| !osm_api::compat::ACCESS_LOG_VALUES.contains(&v.trim()))
    {
        return Err(InjectError::AccessLogAnnotation(value.clone()));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let probes = rewrite(&spec.containers);
    let init = init_container(pod, mesh, settings)?;
    let proxy = proxy_container(pod, mesh, settings, &probes);

    let mut patch = Vec::new();
    if spec.init_containers.as_ref().is_none_or(Vec::is_empty) {
        patch.push(json!({"op": "add", "path": "/spec/initContainers", "value": [init, proxy]}));
    } else {
        patch.push(json!({"op": "add", "path": "/spec/initContainers/-", "value": init}));
        patch.push(json!({"op": "add", "path": "/spec/initContainers/-", "value": proxy}));
    }
    if spec.volumes.as_ref().is_none_or(Vec::is_empty) {
        patch.push(json!({"op": "add", "path": "/spec/volumes", "value": [token_volume()]}));
    } else {
        patch.push(json!({"op": "add", "path": "/spec/volumes/-", "value": token_volume()}));
    }
    patch.extend(probes.iter().map(|p| p.patch()));
    patch.extend(metrics_annotations(pod, namespace));
    Ok(Some(patch))
}

/// The init step: `osm-init` with the pod's exclusions (the MeshConfig's
/// lists merged with the pod's annotations, both validated).
fn init_container(
    pod: &Pod,
    mesh: &MeshConfigSpec,
    settings: &InjectorSettings,
) -> Result<Value, InjectError> {
    let traffic = &mesh.traffic;
    let outbound_ports = merged(
        traffic.outbound_port_exclusion_list.iter().copied(),
        pod,
        OUTBOUND_PORTS,
        |t| exclusions::port_list(t).map(|v| v.into_iter().map(u32::from).collect()),
    )?;
    let inbound_ports = merged(
        traffic.inbound_port_exclusion_list.iter().copied(),
        pod,
        INBOUND_PORTS,
        |t| exclusions::port_list(t).map(|v| v.into_iter().map(u32::from).collect()),
    )?;
    let outbound_exclude = merged(
        traffic.outbound_ip_range_exclusion_list.iter().cloned(),
        pod,
        OUTBOUND_EXCLUDE,
        |t| exclusions::cidr_list(t).map(|v| v.into_iter().map(|n| n.to_string()).collect()),
    )?;
    let outbound_include = merged(
        traffic.outbound_ip_range_inclusion_list.iter().cloned(),
        pod,
        OUTBOUND_INCLUDE,
        |t| exclusions::cidr_list(t).map(|v| v.into_iter().map(|n| n.to_string()).collect()),
    )?;
    let interfaces = traffic.network_interface_exclusion_list.join(",");

    let mut init_args = Vec::new();
    for (flag, value) in [
        ("--exclude-outbound-ports", &outbound_ports),
        ("--exclude-inbound-ports", &inbound_ports),
        ("--exclude-outbound-ip-ranges", &outbound_exclude),
        ("--include-outbound-ip-ranges", &outbound_include),
        ("--exclude-interfaces", &interfaces),
    ] {
        if !value.is_empty() {
            init_args.push(flag.to_string());
            init_args.push(value.clone());
        }
    }
    Ok(json!({
        "name": INIT_CONTAINER,
        // MeshConfig's image, as OSM's injector took it, else the
        // injector's own default.
        "image": if mesh.sidecar.init_container_image.is_empty() {
            &settings.init_image
        } else {
            &mesh.sidecar.init_container_image
        },
        "command": ["osm-init"],
        "args": init_args,
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": false,
            "privileged": mesh.sidecar.enable_privileged_init_container,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
        },
    }))
}

/// The proxy as a native sidecar: its ports, identity environment, the
/// rewritten probes it serves, and a locked-down security context.
fn proxy_container(
    pod: &Pod,
    mesh: &MeshConfigSpec,
    settings: &InjectorSettings,
    probes: &[Rewritten],
) -> Value {
    let (workload_kind, workload_name) = osm_api::k8s::workload(pod);
    let mut ports = vec![
        json!({"name": "proxy-admin", "containerPort": PROXY_ADMIN_PORT}),
        json!({"name": "proxy-inbound", "containerPort": PROXY_INBOUND_PORT}),
        json!({"name": "proxy-metrics", "containerPort": PROXY_METRICS_PORT}),
    ];
    for kind in Kind::ALL {
        if probes.iter().any(|p| p.kind == kind && p.scheme != "TCP") {
            ports.push(
                json!({"name": format!("{}-port", kind.name()), "containerPort": kind.port()}),
            );
        }
    }
    if probes.iter().any(|p| p.scheme == "TCP") {
        ports.push(json!({"name": "healthcheck", "containerPort": TCP_HEALTHCHECK_PORT}));
    }
    let proxy_probes: Vec<Value> = probes.iter().map(|p| p.for_proxy()).collect();
    // The ports the containers declare reach the application on loopback;
    // any other port the proxy delivers to the pod address, as Kubernetes
    // would (see the proxy's `inbound::app_addr`).
    let mut declared: Vec<i32> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        .map(|p| p.container_port)
        .collect();
    declared.sort_unstable();
    declared.dedup();
    let declared: Vec<String> = declared.iter().map(ToString::to_string).collect();
    let resources = if mesh.sidecar.resources.is_null() {
        json!({})
    } else {
        mesh.sidecar.resources.clone()
    };
    json!({
        "name": PROXY_CONTAINER,
        "image": settings.proxy_image,
        "command": ["osm-proxy"],
        "restartPolicy": "Always",
        "ports": ports,
        "env": [
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("POD_UID", "metadata.uid"),
            field_env("POD_IP", "status.podIP"),
            field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            {"name": "OSM_CONTROLLER", "value": settings.controller},
            {"name": "OSM_CONTROLLER_CA", "value": settings.trust_bundle_pem},
            {"name": "OSM_TRUST_DOMAIN", "value": settings.trust_domain},
            {"name": "OSM_TOKEN_FILE", "value": format!("{TOKEN_DIR}/token")},
            {"name": "OSM_WORKLOAD_KIND", "value": workload_kind},
            {"name": "OSM_WORKLOAD_NAME", "value": workload_name},
            {"name": "OSM_PROXY_LOG", "value": osm_api::compat::proxy_log_filter(&mesh.sidecar.log_level)},
            {"name": "OSM_PROXY_PROBES", "value": Value::Array(proxy_probes).to_string()},
            {"name": "OSM_APP_PORTS", "value": declared.join(",")},
        ],
        "resources": resources,
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
        // The application starts once the proxy holds a certificate and
        // its config.
        "startupProbe": {
            "httpGet": {"path": "/ready", "port": PROXY_METRICS_PORT},
            "periodSeconds": 1,
            "failureThreshold": 120,
        },
        "volumeMounts": [{"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true}],
    })
}

/// The projected ServiceAccount token the proxy proves its identity with.
fn token_volume() -> Value {
    json!({
        "name": TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {
            "audience": TOKEN_AUDIENCE, "expirationSeconds": 3600, "path": "token",
        }}]},
    })
}

/// Prometheus scrape annotations, when the namespace enables metrics.
fn metrics_annotations(pod: &Pod, namespace: &Namespace) -> Vec<Value> {
    let metrics_on = namespace
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(METRICS))
        .is_some_and(|v| v == "enabled");
    if !metrics_on {
        return Vec::new();
    }
    let mut patch = Vec::new();
    if pod.metadata.annotations.is_none() {
        patch.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
    }
    let port = PROXY_METRICS_PORT.to_string();
    for (k, v) in [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", port.as_str()),
        ("prometheus.io/path", "/stats/prometheus"),
    ] {
        patch.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", pointer_escape(k)), "value": v}));
    }
    patch
}

#[cfg(test)]
mod tests;
