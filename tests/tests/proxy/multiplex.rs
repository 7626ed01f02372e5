//! HTTP/1.1 between proxies over one HTTP/2 connection: what it carries,
//! what it leaves to HTTP/1.1, and a peer that does not offer it.

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Full;
use osm_tests::{
    ProxyOptions, TestProxy,
    client::{Answer, Http1Conn, websocket_upgrade},
    eventually,
    mesh::{Fixture, NS, client_config, store_policy},
    relay::CountingRelay,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "bookstore.bookstore:14001";
/// Requests held in flight together (the app answers `/books/slow` after
/// 300 ms, so each needs a connection of its own over HTTP/1.1).
const TOGETHER: usize = 4;

/// A bookbuyer proxy and a bookstore-v1 proxy, each with multiplexing on or
/// off, the hop between them through a relay that counts its connections.
struct Pair {
    buyer: TestProxy,
    store: TestProxy,
    relay: CountingRelay,
}

async fn pair(f: &Fixture, client_multiplexes: bool, server_multiplexes: bool) -> Pair {
    let store = TestProxy::start(ProxyOptions {
        credentials: Some(f.pki.issue(NS, "bookstore-v1")),
        config_yaml: Some(store_policy(&f.pki, f.v1.addr.port(), false).to_string()),
        inbound_targets: vec![f.v1.addr],
        outbound_targets: vec![],
        multiplex_http1: server_multiplexes,
        ..Default::default()
    })
    .await;
    let relay = CountingRelay::start(store.inbound()).await;
    let buyer = TestProxy::start(ProxyOptions {
        credentials: Some(f.pki.issue("bookbuyer", "bookbuyer")),
        multiplex_http1: client_multiplexes,
        ..Default::default()
    })
    .await;
    let mut config = client_config(f, None, None);
    config["endpoints"][0]["endpoints"][0]["address"] = relay.addr.to_string().into();
    buyer.apply(&config.to_string());
    // One request first: requests that find no connection at all each
    // open one (whether the peer multiplexes is known only once one is
    // open), and the extra ones close. The counts below are of requests
    // that find the first connection open.
    let mut conn = Http1Conn::connect(buyer.outbound()).await.unwrap();
    assert_eq!(conn.get(HOST, "/books", &[]).await.unwrap().status, 200);
    drop(conn);
    if !client_multiplexes {
        // Without multiplexing the client's connection kept that one;
        // closed, it parks it for the requests below.
        eventually("the first connection is parked", || async {
            (buyer.shared.parked_connections() == 1).then_some(())
        })
        .await;
    }
    Pair {
        buyer,
        store,
        relay,
    }
}

/// `TOGETHER` slow POSTs, each on a client connection of its own, sent at
/// once; checks every answer is its own request's.
async fn slow_posts_together(pair: &Pair) {
    let outbound = pair.buyer.outbound();
    let sent: Vec<_> = (0..TOGETHER)
        .map(|i| {
            tokio::spawn(async move {
                let mut conn = Http1Conn::connect(outbound).await.unwrap();
                let req = Request::post(format!("/books/slow/{i}"))
                    .header("host", HOST)
                    .header("x-test", format!("request-{i}"))
                    .body(Full::new(Bytes::from(format!("body {i}"))))
                    .unwrap();
                conn.send(req).await.unwrap()
            })
        })
        .collect();
    for (i, sent) in sent.into_iter().enumerate() {
        let answer: Answer = sent.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.body,
            format!("bookstore-v1 POST /books/slow/{i} body {i}")
        );
        assert_eq!(answer.headers["x-echo"], format!("request-{i}").as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_together_share_one_connection_between_the_proxies() {
    let f = Fixture::start().await;
    let pair = pair(&f, true, true).await;
    slow_posts_together(&pair).await;
    assert_eq!(
        pair.relay.connections(),
        1,
        "one connection between the proxies"
    );
    // The application and the server's log see HTTP/1.1, as sent.
    assert_eq!(f.v1.versions(), vec![Version::HTTP_11; 1 + TOGETHER]);
    let logged = eventually("the inbound access log", || async {
        let lines = pair.store.access_log_lines();
        (lines.len() > TOGETHER).then_some(lines)
    })
    .await;
    for line in &logged {
        assert_eq!(line["protocol"], "HTTP/1.1", "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_0_goes_on_a_connection_of_its_own_and_stays_http1_0() {
    let f = Fixture::start().await;
    let pair = pair(&f, true, true).await;
    slow_posts_together(&pair).await;
    let mut stream = tokio::net::TcpStream::connect(pair.buyer.outbound())
        .await
        .unwrap();
    stream
        .write_all(format!("GET /books/old HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with("bookstore-v1 GET /books/old "), "{answer}");
    assert_eq!(f.v1.versions().last(), Some(&Version::HTTP_10));
    assert_eq!(
        pair.relay.connections(),
        2,
        "the multiplexed one and its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_does_not_multiplex_gets_one_connection_per_request_in_flight() {
    let f = Fixture::start().await;
    // (client multiplexes, server multiplexes): only both together do.
    for (client, server) in [(true, false), (false, true), (false, false)] {
        let pair = pair(&f, client, server).await;
        slow_posts_together(&pair).await;
        assert_eq!(
            pair.relay.connections(),
            TOGETHER,
            "client {client}, server {server}"
        );
    }
    assert_eq!(f.v1.versions(), vec![Version::HTTP_11; 3 * (1 + TOGETHER)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_goes_on_a_connection_of_its_own() {
    let f = Fixture::start().await;
    let pair = pair(&f, true, true).await;
    let (mut stream, head) = websocket_upgrade(pair.buyer.outbound(), HOST, "/ws").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    assert_eq!(
        pair.relay.connections(),
        2,
        "the multiplexed one (warm-up) and the upgrade's own"
    );
}
