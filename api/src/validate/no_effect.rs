//! Fields the mesh accepts (OSM's manifests carry them) but does not act
//! on: each one set to anything but its default gets a warning naming it
//! and saying why, so a user never applies a setting and sees nothing
//! happen without being told. A field leaves this list when it is
//! enforced.

use super::Problems;
use crate::resources::{mesh_config::*, policy::IngressBackendSpec};

/// "accepted for compatibility, has no effect: <why>".
fn no_effect(p: &mut Problems, field: &str, why: &str) {
    p.warn(
        field,
        format!("accepted for compatibility, has no effect: {why}"),
    );
}

pub(super) fn mesh_config(s: &MeshConfigSpec, p: &mut Problems) {
    let d = MeshConfigSpec::default();
    let envoy = "the sidecar is osm-proxy, not Envoy";
    if s.sidecar.envoy_image != d.sidecar.envoy_image {
        no_effect(p, "spec.sidecar.envoyImage", envoy);
    }
    if s.sidecar.envoy_windows_image != d.sidecar.envoy_windows_image {
        no_effect(p, "spec.sidecar.envoyWindowsImage", envoy);
    }
    if s.sidecar.config_resync_interval != d.sidecar.config_resync_interval
        && humantime::parse_duration(&s.sidecar.config_resync_interval).is_ok_and(|i| !i.is_zero())
    {
        no_effect(
            p,
            "spec.sidecar.configResyncInterval",
            "the controller streams every change and resends in full after a NACK, so there is nothing to resync",
        );
    }
    // (Out of OSM's 2048-4096 range it is refused instead.)
    if s.certificate.cert_key_bit_size != d.certificate.cert_key_bit_size
        && (2048..=4096).contains(&s.certificate.cert_key_bit_size)
    {
        no_effect(
            p,
            "spec.certificate.certKeyBitSize",
            "mesh certificates use ECDSA P-256 keys, not RSA",
        );
    }
    if s.certificate.ingress_gateway.is_some() {
        no_effect(
            p,
            "spec.certificate.ingressGateway",
            "no ingress gateway certificate is issued (OSM made it for Contour)",
        );
    }
    let f = &s.feature_flags;
    if !f.enable_wasm_stats {
        no_effect(
            p,
            "spec.featureFlags.enableWASMStats",
            "the proxies always export osm_request_total and osm_request_duration_ms",
        );
    }
    for (on, name, why) in [
        (
            f.enable_multicluster_mode,
            "enableMulticlusterMode",
            "multi-cluster is not supported (OSM v1.2 removed it too)",
        ),
        (
            f.enable_snapshot_cache_mode,
            "enableSnapshotCacheMode",
            "an Envoy xDS server option; the config stream is always incremental",
        ),
        (
            f.enable_async_proxy_service_mapping,
            "enableAsyncProxyServiceMapping",
            "the compiler maps proxies to services incrementally anyway",
        ),
        (
            f.enable_envoy_active_health_checks,
            "enableEnvoyActiveHealthChecks",
            "use UpstreamTrafficSetting outlierDetection (passive health checking)",
        ),
        (
            f.enable_mesh_root_certificate,
            "enableMeshRootCertificate",
            "the MeshRootCertificate API is not supported",
        ),
    ] {
        if on {
            no_effect(p, &format!("spec.featureFlags.{name}"), why);
        }
    }
}

pub(super) fn ingress_backend(ib: &IngressBackendSpec, p: &mut Problems) {
    for (i, b) in ib.backends.iter().enumerate() {
        if b.tls.skip_client_cert_validation {
            no_effect(
                p,
                &format!("spec.backends[{i}].tls.skipClientCertValidation"),
                "the proxy does not terminate the ingress's TLS: admitted sources reach the application in plaintext or with their own TLS",
            );
        }
        if !b.tls.sni_hosts.is_empty() {
            no_effect(
                p,
                &format!("spec.backends[{i}].tls.sniHosts"),
                "the proxy does not terminate the ingress's TLS",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{load::load_str, validate::validate};

    fn warnings(yaml: &str) -> Vec<String> {
        let loaded = load_str("t.yaml", yaml);
        validate(&loaded.objects[0].object)
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    }

    #[test]
    fn defaults_and_enforced_fields_are_quiet_and_the_rest_is_named() {
        let head = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
                    metadata: {name: osm-mesh-config, namespace: osm-system}\n";
        // OSM's defaults, written out in full: nothing to say.
        let defaults = format!(
            "{head}spec:\n  sidecar: {{envoyImage: '', configResyncInterval: 0s, logLevel: error}}\n  \
             certificate: {{certKeyBitSize: 2048}}\n  featureFlags: {{enableWASMStats: true, enableRetryPolicy: true}}\n"
        );
        assert_eq!(warnings(&defaults), Vec::<String>::new());
        let set = format!(
            "{head}spec:\n  sidecar: {{envoyImage: envoyproxy/envoy:v1.22, configResyncInterval: 30s}}\n  \
             certificate: {{certKeyBitSize: 4096}}\n  observability: {{tracing: {{enable: true, address: jaeger}}}}\n  \
             featureFlags: {{enableWASMStats: false, enableEnvoyActiveHealthChecks: true}}\n"
        );
        assert_eq!(
            warnings(&set),
            [
                "spec.sidecar.envoyImage: accepted for compatibility, has no effect: the sidecar is osm-proxy, not Envoy",
                "spec.sidecar.configResyncInterval: accepted for compatibility, has no effect: the controller streams every change and resends in full after a NACK, so there is nothing to resync",
                "spec.certificate.certKeyBitSize: accepted for compatibility, has no effect: mesh certificates use ECDSA P-256 keys, not RSA",
                "spec.featureFlags.enableWASMStats: accepted for compatibility, has no effect: the proxies always export osm_request_total and osm_request_duration_ms",
                "spec.featureFlags.enableEnvoyActiveHealthChecks: accepted for compatibility, has no effect: use UpstreamTrafficSetting outlierDetection (passive health checking)",
            ]
        );
    }
}
