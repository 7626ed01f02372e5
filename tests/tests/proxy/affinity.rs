//! Connection affinity: each client connection's requests go on upstream
//! connections it keeps; those it leaves are reused by the next client
//! connection; one the upstream closed, one whose response was abandoned,
//! and one to an endpoint gone from the config are never reused.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use osm_tests::{
    ProxyOptions, TestProxy,
    apps::{CONNECTION_HEADER, HttpApp, STREAM_CHUNKS},
    client::{Answer, Http1Conn, http1_get},
    eventually,
    mesh::{Fixture, NS, client_config, store_policy},
    pki::Pki,
    relay::CountingRelay,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const HOST: &str = "bookstore.bookstore:14001";

/// Which of the app's connections carried an answer.
fn app_connection(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.headers[CONNECTION_HEADER]
        .to_str()
        .unwrap()
        .to_string()
}

/// A bookbuyer proxy and a bookstore-v1 proxy (mTLS), the hop between them
/// through a relay that counts its connections.
async fn pair(f: &Fixture) -> (TestProxy, TestProxy, CountingRelay) {
    let store = TestProxy::start(ProxyOptions {
        credentials: Some(f.pki.issue(NS, "bookstore-v1")),
        config_yaml: Some(store_policy(&f.pki, f.v1.addr.port(), false).to_string()),
        inbound_targets: vec![f.v1.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let relay = CountingRelay::start(store.inbound()).await;
    let buyer = TestProxy::start(ProxyOptions {
        credentials: Some(f.pki.issue("bookbuyer", "bookbuyer")),
        ..Default::default()
    })
    .await;
    let mut config = client_config(f, None, None);
    config["endpoints"][0]["endpoints"][0]["address"] = relay.addr.to_string().into();
    buyer.apply(&config.to_string());
    (buyer, store, relay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_connection_keeps_its_own_upstream_connections() {
    let f = Fixture::start().await;
    let (buyer, _store, relay) = pair(&f).await;
    let mut a = Http1Conn::connect(buyer.outbound()).await.unwrap();
    let mut b = Http1Conn::connect(buyer.outbound()).await.unwrap();
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    // One after the other: a shared pool would hand the one idle
    // connection to whichever client asks next.
    for _ in 0..3 {
        seen_a.push(app_connection(&a.get(HOST, "/books", &[]).await.unwrap()));
        seen_b.push(app_connection(&b.get(HOST, "/books", &[]).await.unwrap()));
    }
    assert!(seen_a.iter().all(|c| *c == seen_a[0]), "{seen_a:?}");
    assert!(seen_b.iter().all(|c| *c == seen_b[0]), "{seen_b:?}");
    assert_ne!(seen_a[0], seen_b[0]);
    assert_eq!(relay.connections(), 2, "one between the proxies per client");
    assert_eq!(f.v1.connections(), 2, "one to the app per client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_per_request_reuses_the_upstream_connection_it_left() {
    let f = Fixture::start().await;
    let (buyer, store, relay) = pair(&f).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let answer = http1_get(buyer.outbound(), HOST, "/books").await.unwrap();
        seen.push(app_connection(&answer));
        // Parked when the client's connection has closed: wait for it, so
        // that the next request finds it. The server's proxy keeps its
        // connection to the app: the one between the proxies stays open.
        eventually("the upstream connection is parked", || async {
            let parked = (
                buyer.shared.parked_connections(),
                store.shared.parked_connections(),
            );
            (parked == (1, 0)).then_some(())
        })
        .await;
    }
    assert!(seen.iter().all(|c| *c == seen[0]), "{seen:?}");
    assert_eq!(relay.connections(), 1);
    assert_eq!(f.v1.connections(), 1);
}

/// A plaintext upstream that answers one request per connection and then
/// closes it, though its answer says nothing about closing (as a server
/// whose idle timeout fires between two requests).
struct OneShotApp {
    addr: SocketAddr,
    closed: Arc<AtomicUsize>,
}

impl OneShotApp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let closed = Arc::new(AtomicUsize::new(0));
        let counter = closed.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    drop(stream);
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self { addr, closed }
    }
}

fn plain_service(addr: SocketAddr) -> String {
    json!({
        "mesh": {"egress": false},
        "endpoints": [{"key": "shop/store:80", "namespace": "shop", "service": "store",
            "endpoints": [{"address": addr.to_string(), "pod": "store-0",
                "workloadKind": "Deployment", "workloadName": "store"}]}],
        "outbound": [{"key": "shop/store:80", "namespace": "shop", "name": "store", "port": 80,
            "hostnames": ["store"], "endpoints": "shop/store:80"}]
    })
    .to_string()
}

async fn plain_client(upstream: SocketAddr) -> TestProxy {
    TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_yaml: Some(plain_service(upstream)),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_the_upstream_closed_is_replaced_before_the_request() {
    let app = OneShotApp::start().await;
    let client = plain_client(app.addr).await;
    let mut conn = Http1Conn::connect(client.outbound()).await.unwrap();
    for round in 1..=3 {
        let answer = conn.get("store", "/", &[]).await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok"),
            "{answer:?}"
        );
        eventually("the upstream closed its connection", || async {
            (app.closed.load(Ordering::SeqCst) == round).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_the_client_abandons_closes_its_upstream_connection() {
    let app = HttpApp::start("store").await;
    let client = plain_client(app.addr).await;
    let mut stream = TcpStream::connect(client.outbound()).await.unwrap();
    stream
        .write_all(b"GET /books/stream HTTP/1.1\r\nHost: store\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    drop(stream);
    // The rest of that response is never read from that connection: it is
    // closed, and the next request goes on a new one.
    eventually("the abandoned upstream connection is closed", || async {
        (app.open_connections() == 0).then_some(())
    })
    .await;
    let answer = http1_get(client.outbound(), "store", "/books")
        .await
        .unwrap();
    assert_eq!(answer.body, "store GET /books ");
    assert_eq!(app_connection(&answer), "2");
    eventually("the second connection is parked", || async {
        (client.shared.parked_connections() == 1).then_some(())
    })
    .await;
    // A whole streamed response leaves its connection to the next request.
    let mut conn = Http1Conn::connect(client.outbound()).await.unwrap();
    let whole = conn.get("store", "/books/stream", &[]).await.unwrap();
    assert_eq!(whole.body.len(), STREAM_CHUNKS * 16 * 1024);
    let next = conn.get("store", "/books", &[]).await.unwrap();
    assert_eq!(app_connection(&next), app_connection(&whole));
    assert_eq!(app.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_to_an_endpoint_gone_from_the_config_is_closed() {
    let (old, new) = (HttpApp::start("old").await, HttpApp::start("new").await);
    let client = plain_client(old.addr).await;
    let mut conn = Http1Conn::connect(client.outbound()).await.unwrap();
    let answer = conn.get("store", "/", &[]).await.unwrap();
    assert!(answer.body.starts_with("old "), "{answer:?}");
    client.apply(&plain_service(new.addr));
    let answer = conn.get("store", "/", &[]).await.unwrap();
    assert!(answer.body.starts_with("new "), "{answer:?}");
    eventually("the old endpoint's connection is closed", || async {
        (old.open_connections() == 0).then_some(())
    })
    .await;
    assert_eq!(new.open_connections(), 1);
}
