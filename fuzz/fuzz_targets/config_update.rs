//! What the controller sends a proxy: any batch is applied or refused
//! whole, and any config it produces is built by the proxy, fail-closed,
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::{protocol::apply_update, v1};
use osm_proxy::{config::OnBadResource, upstream::EndpointRegistry};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(update) = v1::ConfigUpdate::decode(data) else {
        return;
    };
    let Ok(config) = apply_update(&v1::ProxyConfig::default(), &update) else {
        return;
    };
    let registry = EndpointRegistry::default();
    let _ = osm_proxy::config::build(config.into(), 1, &registry, OnBadResource::FailClosed);
});
