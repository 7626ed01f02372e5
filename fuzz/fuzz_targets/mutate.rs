//! The injector's patch for any pod the API server could send: computed,
//! skipped or denied with a reason, never a panic.
#![no_main]

use k8s_openapi::api::core::v1::{Namespace, Pod};
use libfuzzer_sys::fuzz_target;
use osm_api::resources::mesh_config::MeshConfigSpec;
use osm_injector::mutate::{InjectorSettings, mutate};

fuzz_target!(|data: &[u8]| {
    let Ok(pod) = serde_json::from_slice::<Pod>(data) else {
        return;
    };
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shop", "labels": {"openservicemesh.io/monitored-by": "osm"}}
    }))
    .expect("a namespace");
    let settings = InjectorSettings {
        mesh_name: "osm".into(),
        osm_namespace: "osm-system".into(),
        proxy_image: "p".into(),
        init_image: "i".into(),
        controller: "osm-controller.osm-system.svc:15128".into(),
        trust_bundle_pem: String::new(),
        trust_domain: "cluster.local".into(),
    };
    let _ = mutate(&pod, &namespace, &MeshConfigSpec::default(), &settings);
});
