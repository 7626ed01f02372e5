//! What `kubectl apply -f` and the controller's file source read: any
//! YAML stream (aliases, deep nesting, huge documents) is loaded or
//! refused with its origin, every object loaded validates without
//! panicking, and what validation accepts is indexed, compiled for every
//! pod, and gives every Gateway API route a status, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::{
    compile::{
        Index, MeshOptions, ProxyId, compile, gateway::all_routes, gateway::status::route_status,
    },
    load::load_str,
    validate::{rejects, validate},
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = load_str("fuzz.yaml", text);
    let mut index = Index::new(MeshOptions::default());
    for loaded in out.objects {
        if !rejects(&validate(&loaded.object)) {
            index.apply(loaded.object);
        }
    }
    for route in all_routes(&index) {
        let _ = route_status(&index, &route);
    }
    let pods: Vec<ProxyId> = index
        .pods
        .keys()
        .map(|(namespace, pod)| ProxyId {
            namespace: namespace.clone(),
            pod: pod.clone(),
        })
        .collect();
    for pod in pods {
        let _ = compile(&index, &pod);
    }
});
