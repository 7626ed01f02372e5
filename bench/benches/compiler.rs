//! The policy compiler at scale: 10,000 pods, 2,000 services, 5,000
//! TrafficTargets in 100 namespaces. Measures one proxy's full compile and
//! the change impact of a new TrafficTarget and of a pod moving, and prints
//! the memory the index and every proxy's cached view take.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osm_api::{
    compile::{Compiler, Index, MeshOptions, ProxyId, compile},
    load::parse_object,
    resources::Object,
};
use serde_json::json;

const SERVICES_PER_NS: usize = 20;
const PODS_PER_SERVICE: usize = 5;

/// Namespaces at full scale (`cargo bench`); a tenth when the bench only
/// runs as a test (`cargo test --benches`), to keep CI quick.
fn namespaces() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        100
    } else {
        10
    }
}

fn targets() -> usize {
    namespaces() * 50
}

fn obj(v: serde_json::Value) -> Object {
    parse_object(v).unwrap()
}

fn pod(ns: usize, svc: usize, i: usize, ip_offset: usize) -> Object {
    let n = (ns * SERVICES_PER_NS + svc) * PODS_PER_SERVICE + i + ip_offset;
    obj(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("svc{svc}-{i}"), "namespace": format!("ns{ns}"), "labels": {"app": format!("svc{svc}")}},
        "spec": {"serviceAccountName": format!("sa{svc}"), "containers": [{"name": "app", "image": "x"}]},
        "status": {"podIP": format!("10.{}.{}.{}", n / 65536 % 256, n / 256 % 256, n % 256)}
    }))
}

fn traffic_target(i: usize, ns: usize, dest: usize, sources: [usize; 3]) -> Object {
    obj(json!({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"name": format!("tt{i}"), "namespace": format!("ns{ns}")},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": format!("sa{dest}"), "namespace": format!("ns{ns}")},
            "rules": [{"kind": "HTTPRouteGroup", "name": "routes"}],
            "sources": sources.iter().map(|s| json!({"kind": "ServiceAccount", "name": format!("sa{}", s % SERVICES_PER_NS), "namespace": format!("ns{}", (ns + s) % namespaces())})).collect::<Vec<_>>()
        }
    }))
}

fn cluster() -> (Index, Vec<ProxyId>) {
    let mut index = Index::new(MeshOptions::default());
    let mut proxies = Vec::new();
    for ns in 0..namespaces() {
        index.apply(obj(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("ns{ns}"), "labels": {"openservicemesh.io/monitored-by": "osm"}}})));
        index.apply(obj(
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": "routes", "namespace": format!("ns{ns}")},
            "spec": {"matches": [{"name": "a", "pathRegex": "/api/.*", "methods": ["GET"]},
                                 {"name": "b", "pathRegex": "/admin", "methods": ["POST"]},
                                 {"name": "c", "headers": {"x-canary": "true"}}]}}),
        ));
        for svc in 0..SERVICES_PER_NS {
            let n = ns * SERVICES_PER_NS + svc;
            index.apply(obj(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc{svc}"), "namespace": format!("ns{ns}")},
                "spec": {"clusterIP": format!("10.96.{}.{}", n / 256, n % 256), "selector": {"app": format!("svc{svc}")},
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})));
            for i in 0..PODS_PER_SERVICE {
                index.apply(pod(ns, svc, i, 0));
                proxies.push(ProxyId {
                    namespace: format!("ns{ns}"),
                    pod: format!("svc{svc}-{i}"),
                });
            }
        }
    }
    for i in 0..targets() {
        let ns = i % namespaces();
        index.apply(traffic_target(
            i,
            ns,
            i / namespaces() % SERVICES_PER_NS,
            [i * 7 + 1, i * 13 + 2, i * 31 + 3],
        ));
    }
    (index, proxies)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn compiler(c: &mut Criterion) {
    let before = rss_kib();
    let (index, proxies) = cluster();
    let after_index = rss_kib();
    let started = std::time::Instant::now();
    let mut compiler = Compiler::new(index.clone());
    for id in &proxies {
        compiler.add_proxy(id.clone()).unwrap();
    }
    println!(
        "scale: {} pods, {} services, {} TrafficTargets; index {} MiB; every proxy registered in {:.1} s, views {} MiB",
        proxies.len(),
        namespaces() * SERVICES_PER_NS,
        targets(),
        (after_index - before) / 1024,
        started.elapsed().as_secs_f64(),
        (rss_kib() - after_index) / 1024,
    );

    let one = &proxies[proxies.len() / 2];
    c.bench_function("compile/one_proxy", |b| {
        b.iter(|| compile(black_box(&index), one).unwrap())
    });

    let mut n = 0;
    c.bench_function("impact/new_traffic_target", |b| {
        b.iter(|| {
            n += 1;
            let impact = compiler.apply(traffic_target(
                targets() + n,
                n % namespaces(),
                n % SERVICES_PER_NS,
                [n + 5, n + 6, n + 7],
            ));
            black_box(impact.changed.len())
        })
    });
    let mut m = 0;
    c.bench_function("impact/pod_moves", |b| {
        b.iter(|| {
            m += 1;
            let impact = compiler.apply(pod(m % namespaces(), m % SERVICES_PER_NS, 0, 50_000 + m));
            black_box(impact.recompiled)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = compiler
}
criterion_main!(benches);
