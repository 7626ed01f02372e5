//! What the controller sends a proxy: any batch is applied or refused
//! whole, any config it produces is built by the proxy, fail-closed,
//! without a panic, and a batch the proxy applies in place to its running
//! snapshot gives exactly what a whole build of the same config gives.
//!
//! The same bytes read as the proxy reads the stream (a `Batch`, upserts
//! still encoded) apply exactly as the decoded update does, and never
//! panic when an upsert does not decode.
//!
//! The input is one batch; its first upserts (as many as the first
//! byte says) form the config the proxy runs, the rest and the removals
//! arrive as the next batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::v1;
use osm_proxy::{
    config::{OnBadResource, Snapshot, batch::Batch, build, store::ConfigStore, update},
    upstream::EndpointRegistry,
};
use prost::Message;

fn whole(store: &ConfigStore, registry: &EndpointRegistry) -> Option<Snapshot> {
    build(store, store.clone(), 1, registry, OnBadResource::FailClosed)
        .ok()
        .map(|(s, _)| s)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let as_batch = Batch::decode(data).map(|batch| {
        ConfigStore::default()
            .apply(batch)
            .map(|(store, _)| store.to_config())
    });
    let Ok(mut second) = v1::ConfigUpdate::decode(data) else {
        return;
    };
    let decoded = ConfigStore::default()
        .apply(second.clone())
        .map(|(store, _)| store.to_config());
    assert_eq!(
        as_batch.expect("what decodes as an update decodes as a batch"),
        decoded
    );
    let at = usize::from(split).min(second.upserts.len());
    let first = v1::ConfigUpdate {
        full: true,
        upserts: second.upserts.drain(..at).collect(),
        ..Default::default()
    };
    second.full = false;
    let registry = EndpointRegistry::default();
    let Ok((store, _)) = ConfigStore::default().apply(first) else {
        return;
    };
    let Some(current) = whole(&store, &registry) else {
        return;
    };
    let Ok((next, changed)) = store.apply(second) else {
        return;
    };
    let want = whole(&next, &registry);
    if let Some(got) = update(&current, &store, next, &changed, 2, &registry) {
        let want = want.expect("a config updated in place also builds whole");
        assert_eq!(got.describe(), want.describe());
    }
});
