//! A proxy's config at scale (issue 17): 10,000 outbound services of
//! three endpoints each (permissive mode in a big cluster), built whole,
//! and one service changed as the control stream delivers it (the batch
//! applied to the running config, then the snapshot the proxy serves).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osm_api::{protocol::apply_update, v1};
use osm_bench::big_config::{config, service};
use osm_proxy::{
    config::{OnBadResource, build, build_snapshot, store::ConfigStore, update},
    upstream::EndpointRegistry,
};

const SERVICES: usize = 10_000;

fn proxy_config(c: &mut Criterion) {
    let config = config(SERVICES);
    let mut group = c.benchmark_group("proxy_config");
    group.sample_size(10);
    // A proxy starting with this config (no endpoint known yet).
    group.bench_function("build/10000_services", |b| {
        b.iter_batched(
            || (config.clone(), EndpointRegistry::default()),
            |(config, registry)| build_snapshot(config, 1, &registry).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    // A running proxy (its current snapshot alive) receiving one changed
    // service: one pod of it replaced.
    let (_, mut changed) = service(4_321, 80);
    changed.endpoints[0].address = "10.9.9.9:8080".into();
    let one = v1::ConfigUpdate {
        version: "2".into(),
        full: false,
        upserts: vec![v1::Resource {
            kind: Some(v1::resource::Kind::Endpoints(changed)),
        }],
        removals: Vec::new(),
    };
    // As the proxy applies it: the batch to the kept resources, then the
    // running snapshot updated in place.
    let registry = EndpointRegistry::default();
    let store = ConfigStore::from_config(config.clone());
    let current = build(
        &store,
        store.clone(),
        1,
        &registry,
        OnBadResource::FailClosed,
    )
    .unwrap()
    .0;
    group.bench_function("one_change/10000_services", |b| {
        b.iter_batched(
            || one.clone(),
            |one| {
                let (next, touched) = store.apply(black_box(one)).unwrap();
                update(&current, &store, next, &touched, 2, &registry).expect("in place")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // The same change as a whole rebuild (what every batch cost before).
    group.bench_function("one_change_whole_build/10000_services", |b| {
        b.iter(|| {
            let next = apply_update(black_box(&config), &one).unwrap();
            build_snapshot(next, 2, &registry).unwrap()
        })
    });
    drop(current);
    group.finish();
}

criterion_group!(benches, proxy_config);
criterion_main!(benches);
