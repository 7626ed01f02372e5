//! A proxy's config at scale (issue 17): 10,000 outbound services of
//! three endpoints each (permissive mode in a big cluster), built whole,
//! and one service changed as the control stream delivers it (the batch
//! applied to the running config, then the snapshot the proxy serves).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osm_api::{protocol::apply_update, v1};
use osm_proxy::{config::build_snapshot, upstream::EndpointRegistry};

const SERVICES: usize = 10_000;

fn service(i: usize, port: u32) -> (v1::OutboundService, v1::EndpointSet) {
    let key = format!("ns{}/svc{i}:{port}", i % 100);
    let set = v1::EndpointSet {
        key: key.clone(),
        namespace: format!("ns{}", i % 100),
        service: format!("svc{i}"),
        endpoints: (0..3)
            .map(|e| v1::Endpoint {
                // Three pods of its own per service.
                address: format!(
                    "10.{}.{}.{}:8080",
                    1 + i / 20_000,
                    (i / 80) % 250,
                    (i % 80) * 3 + e
                ),
                identity: format!("spiffe://cluster.local/ns/ns{}/sa/svc{i}", i % 100),
                pod: format!("svc{i}-{e}"),
                workload_kind: "Deployment".into(),
                workload_name: format!("svc{i}"),
            })
            .collect(),
    };
    let outbound = v1::OutboundService {
        key: key.clone(),
        namespace: format!("ns{}", i % 100),
        name: format!("svc{i}"),
        port,
        hostnames: vec![
            format!("svc{i}.ns{}", i % 100),
            format!("svc{i}.ns{}.svc", i % 100),
            format!("svc{i}.ns{}.svc.cluster.local", i % 100),
        ],
        vips: vec![format!("10.96.{}.{}", i / 250, i % 250)],
        protocol: v1::Protocol::Http1 as i32,
        endpoints: key,
        ..Default::default()
    };
    (outbound, set)
}

fn config() -> v1::ProxyConfig {
    let mut config = v1::ProxyConfig {
        mesh: Some(v1::MeshSettings {
            permissive: true,
            trust_domain: "cluster.local".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for i in 0..SERVICES {
        let (s, e) = service(i, 80);
        config.outbound.push(s);
        config.endpoints.push(e);
    }
    config
}

fn proxy_config(c: &mut Criterion) {
    let config = config();
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
    let registry = EndpointRegistry::default();
    let current = build_snapshot(config.clone(), 1, &registry).unwrap();
    let (_, mut changed) = service(4_321, 80);
    changed.endpoints[0].address = "10.9.9.9:8080".into();
    let update = v1::ConfigUpdate {
        version: "2".into(),
        full: false,
        upserts: vec![v1::Resource {
            kind: Some(v1::resource::Kind::Endpoints(changed)),
        }],
        removals: Vec::new(),
    };
    group.bench_function("one_change/10000_services", |b| {
        b.iter(|| {
            let next = apply_update(black_box(&config), &update).unwrap();
            build_snapshot(next, 2, &registry).unwrap()
        })
    });
    drop(current);
    group.finish();
}

criterion_group!(benches, proxy_config);
criterion_main!(benches);
