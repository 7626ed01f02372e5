//! One HTTP/1.1 request over a kept-alive connection: directly to the app,
//! and through client -> outbound proxy -> mTLS -> inbound proxy -> app with
//! an SMI policy in force. The ratio of the two is the mesh's overhead.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use osm_tests::{client::Http1Conn, mesh::Fixture};

fn loopback(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(Fixture::start());
    let direct = std::sync::Arc::new(tokio::sync::Mutex::new(
        runtime
            .block_on(Http1Conn::connect(fixture.v1.addr))
            .unwrap(),
    ));
    let meshed = std::sync::Arc::new(tokio::sync::Mutex::new(
        runtime
            .block_on(Http1Conn::connect(fixture.buyer.outbound()))
            .unwrap(),
    ));
    let mut group = c.benchmark_group("request_1x");
    for (name, conn) in [("direct", direct), ("meshed", meshed)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let conn = conn.clone();
                async move {
                    let answer = conn
                        .lock()
                        .await
                        .get("bookstore.bookstore:14001", "/books", &[])
                        .await
                        .unwrap();
                    assert_eq!(answer.status, 200);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, loopback);
criterion_main!(benches);
