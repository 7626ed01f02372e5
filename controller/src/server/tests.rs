use std::time::Duration;

use osm_api::{
    compile::{Compiler, Index, MeshOptions},
    load::load_str,
};

use osm_serve::testing::closed_within;

use super::*;
use crate::{
    ca::{Issuer, LocalCa},
    hub::Hub,
    status::Proxies,
    token::LocalTokens,
};

/// Regression (issue 14, item 8): the gRPC listener took any number of
/// connections.
#[tokio::test]
async fn connections_past_the_limit_are_closed_at_accept() {
    let mut index = Index::new(MeshOptions::default());
    for l in load_str("cluster.yaml", crate::test_fixtures::CLUSTER).objects {
        index.apply(l.object);
    }
    let hub = Arc::new(Hub::new(Compiler::new(index), None));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let ca = Arc::new(LocalCa::generate(Duration::from_secs(3600)).unwrap());
    let cert = ca
        .serving_cert(&["localhost".into()], Duration::from_secs(3600))
        .unwrap();
    let tls = super::live_tls::LiveTls::new(&cert, &ca.trust_bundle())
        .unwrap()
        .grpc_config()
        .unwrap();
    let identity = IdentityService {
        hub: hub.clone(),
        reviewer: Arc::new(LocalTokens::from_key(b"k")),
        issuer: ca,
        metrics: metrics.clone(),
        reviews: Default::default(),
        ledger: Default::default(),
        health: Default::default(),
    };
    let config = ConfigService::new(
        hub,
        Arc::new(Proxies::default()),
        metrics,
        Default::default(),
        Arc::new(std::sync::atomic::AtomicBool::new(true)),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve_with(
        listener,
        tls,
        (identity, config),
        1,
        stop.clone(),
    ));

    // The first connection holds the only slot (its handshake pending).
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut second, Duration::from_secs(10)).await,
        "a connection past the limit is closed"
    );
    assert!(
        !closed_within(&mut first, Duration::from_millis(200)).await,
        "the first connection is still served"
    );
    stop.cancel();
    server.await.unwrap();
}
