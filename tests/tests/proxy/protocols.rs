use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use osm_tests::{
    ProxyOptions, TestProxy,
    apps::{HttpApp, ServerFirstApp},
    client::{Http1Conn, Http2Conn, websocket_upgrade},
    mesh::{Fixture, VIP},
    pki::{Pki, spiffe},
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_through_both_proxies_keeps_headers_and_body_and_delivers_once() {
    let f = Fixture::start().await;
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    let req = Request::post("/books/new")
        .header("host", "bookstore.bookstore:14001")
        .header("x-test", "hello")
        .header("x-custom", "kept")
        .body(Full::new(Bytes::from_static(b"a book")))
        .unwrap();
    let answer = conn.send(req).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "bookstore-v1 POST /books/new a book");
    assert_eq!(answer.headers["x-app"], "bookstore-v1");
    assert_eq!(answer.headers["x-echo"], "hello");
    let seen = f.v1.last_headers().unwrap();
    assert_eq!(seen["x-custom"], "kept");
    assert_eq!(seen["host"], "bookstore.bookstore:14001");
    assert_eq!(f.v1.requests(), 1, "delivered exactly once");
    // The same keep-alive connection carries a second request.
    let answer = conn
        .get("bookstore.bookstore:14001", "/books", &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(f.v1.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_grpc_trailers_pass_through() {
    let f = Fixture::start().await;
    // The second outbound listener stands for traffic intercepted to the VIP.
    let mut conn = Http2Conn::connect(f.buyer.addrs.outbound[1]).await.unwrap();
    let req = Request::post(format!("http://{VIP}:14001/grpc"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-test", "h2")
        .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x02hi")))
        .unwrap();
    let answer = conn.send(req).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["x-echo"], "h2");
    assert!(
        answer.body.starts_with("bookstore-v1 POST /grpc"),
        "{}",
        answer.body
    );
    let trailers = answer.trailers.expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-trailer"], "bookstore-v1");
    let seen = f.v1.last_headers().unwrap();
    assert_eq!(seen["content-type"], "application/grpc");
    assert_eq!(f.v1.requests(), 1);

    // Many concurrent streams share the one connection.
    let mut handles = Vec::new();
    for i in 0..20 {
        let mut conn = Http2Conn::connect(f.buyer.addrs.outbound[1]).await.unwrap();
        handles.push(tokio::spawn(async move {
            let req = Request::get(format!("http://bookstore.bookstore:14001/books/{i}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            conn.send(req).await.unwrap().status
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(f.v1.requests(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_through_both_proxies() {
    let f = Fixture::start().await;
    let (mut stream, head) =
        websocket_upgrade(f.buyer.outbound(), "bookstore.bookstore:14001", "/ws").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"ping-1"[..], b"second frame"] {
        stream.write_all(message).await.unwrap();
        let mut echo = vec![0u8; message.len()];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_first_tcp_is_forwarded_over_mtls() {
    let pki = Pki::default();
    let db = ServerFirstApp::start(b"220 db ready\r\n").await;
    let server = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("data", "mysql")),
        config_yaml: Some(
            json!({
                "trustBundle": {"pem": pki.bundle_pem()},
                "inbound": [{"port": db.addr.port(), "protocol": "PROTOCOL_TCP_SERVER_FIRST", "authorizations": [
                    {"name": "data/warehouse", "sources": [spiffe("shop", "warehouse")], "all": {}}
                ]}]
            })
            .to_string(),
        ),
        inbound_targets: vec![db.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let vip = "10.96.0.33:3306";
    let client_config = json!({
        "mesh": {"detectTimeoutMs": 200},
        "trustBundle": {"pem": pki.bundle_pem()},
        "endpoints": [{"key": "data/mysql:3306", "endpoints": [
            {"address": server.inbound().to_string(), "identity": spiffe("data", "mysql")}
        ]}],
        // Detect on the client side: the client says nothing first, so the
        // proxy must give up detecting and forward TCP.
        "outbound": [{"key": "data/mysql:3306", "port": 3306, "vips": ["10.96.0.33"], "endpoints": "data/mysql:3306"}]
    })
    .to_string();
    for (sa, allowed) in [("warehouse", true), ("bookthief", false)] {
        let client = TestProxy::start(ProxyOptions {
            credentials: Some(pki.issue("shop", sa)),
            config_yaml: Some(client_config.clone()),
            outbound_targets: vec![Some(vip.parse().unwrap())],
            ..Default::default()
        })
        .await;
        let mut stream = tokio::net::TcpStream::connect(client.outbound())
            .await
            .unwrap();
        let mut banner = vec![0u8; 14];
        let read = tokio::time::timeout(osm_tests::patience(), stream.read_exact(&mut banner))
            .await
            .unwrap();
        if allowed {
            read.unwrap();
            assert_eq!(&banner, b"220 db ready\r\n");
            stream.write_all(b"SELECT 1").await.unwrap();
            let mut echo = [0u8; 8];
            stream.read_exact(&mut echo).await.unwrap();
            assert_eq!(&echo, b"SELECT 1");
        } else {
            assert!(read.is_err(), "{sa} must not get the banner");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tcp_connection_is_closed_when_its_authorization_is_removed() {
    let pki = Pki::default();
    let db = ServerFirstApp::start(b"220 db ready\r\n").await;
    let server_config = |sources: Vec<String>| {
        json!({
            "trustBundle": {"pem": pki.bundle_pem()},
            "inbound": [{"port": db.addr.port(), "protocol": "PROTOCOL_TCP_SERVER_FIRST", "authorizations": [
                {"name": "data/warehouse", "sources": sources, "all": {}}
            ]}]
        })
        .to_string()
    };
    let server = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("data", "mysql")),
        config_yaml: Some(server_config(vec![spiffe("shop", "warehouse")])),
        inbound_targets: vec![db.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "warehouse")),
        config_yaml: Some(
            json!({
                "trustBundle": {"pem": pki.bundle_pem()},
                "endpoints": [{"key": "data/mysql:3306", "endpoints": [
                    {"address": server.inbound().to_string(), "identity": spiffe("data", "mysql")}
                ]}],
                "outbound": [{"key": "data/mysql:3306", "port": 3306, "vips": ["10.96.0.33"],
                    "protocol": "PROTOCOL_TCP_SERVER_FIRST", "endpoints": "data/mysql:3306"}]
            })
            .to_string(),
        ),
        outbound_targets: vec![Some("10.96.0.33:3306".parse().unwrap())],
        ..Default::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(client.outbound())
        .await
        .unwrap();
    let mut banner = vec![0u8; 14];
    tokio::time::timeout(osm_tests::patience(), stream.read_exact(&mut banner))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&banner, b"220 db ready\r\n");

    // The TrafficTarget goes: the connection already open is cut.
    server.apply(&server_config(vec![]));
    let mut rest = Vec::new();
    let read = tokio::time::timeout(osm_tests::patience(), stream.read_to_end(&mut rest))
        .await
        .expect("the connection stayed open after its authorization was removed");
    assert!(read.is_err() || rest.is_empty(), "{rest:?}");
    assert!(
        server.metrics().contains("kind=\"revoked\""),
        "{}",
        server.metrics()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_destinations_are_refused_without_egress_and_passed_through_with_it() {
    let pki = Pki::default();
    let outside = HttpApp::start("outside").await;
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "buyer")),
        config_yaml: Some(
            json!({"trustBundle": {"pem": pki.bundle_pem()}, "mesh": {"egress": false}})
                .to_string(),
        ),
        outbound_targets: vec![Some(outside.addr)],
        ..Default::default()
    })
    .await;
    let host = outside.addr.to_string();
    let answer = osm_tests::client::http1_get(client.outbound(), &host, "/x")
        .await
        .unwrap();
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(
        answer.body.contains("egress is disabled"),
        "{}",
        answer.body
    );
    assert_eq!(outside.requests(), 0);

    client.apply(
        &json!({"trustBundle": {"pem": pki.bundle_pem()}, "mesh": {"egress": true}}).to_string(),
    );
    let answer = osm_tests::client::http1_get(client.outbound(), &host, "/x")
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "outside GET /x ");
    assert_eq!(outside.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_connection_is_closed_when_the_config_stops_allowing_it() {
    let pki = Pki::default();
    let outside = HttpApp::start("outside").await;
    let egress = |on: bool| {
        json!({"trustBundle": {"pem": pki.bundle_pem()}, "mesh": {"egress": on}}).to_string()
    };
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "buyer")),
        config_yaml: Some(egress(true)),
        outbound_targets: vec![Some(outside.addr)],
        ..Default::default()
    })
    .await;
    let host = outside.addr.to_string();
    // A keep-alive client, passed through while egress is on.
    let mut conn = Http1Conn::connect(client.outbound()).await.unwrap();
    assert_eq!(conn.get(&host, "/a", &[]).await.unwrap().status, 200);

    client.apply(&egress(false));
    // The proxy closes the kept connection (and counts it): the next
    // request on it fails instead of still reaching the outside.
    let deadline = tokio::time::Instant::now() + osm_tests::patience();
    while !client.metrics().contains("reason=\"revoked\"") {
        assert!(tokio::time::Instant::now() < deadline, "never revoked");
        tokio::task::yield_now().await;
    }
    let closed = conn.get(&host, "/b", &[]).await;
    assert!(
        closed.is_err(),
        "the passthrough outlived the config: {closed:?}"
    );
    let answer = osm_tests::client::http1_get(client.outbound(), &host, "/c")
        .await
        .unwrap();
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(outside.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_silent_past_the_detect_timeout_is_still_served_by_host() {
    let f = Fixture::start().await;
    let mut config = osm_tests::mesh::client_config(&f, None, None);
    config["mesh"]["detectTimeoutMs"] = json!(20);
    f.buyer.apply(&config.to_string());
    // Connect, stay silent well past the detection timeout, then speak.
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let answer = conn
        .get("bookstore.bookstore:14001", "/books", &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

fn client_hello(sni: &str) -> Vec<u8> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_rules_admit_their_hosts_names_and_ranges_only() {
    let pki = Pki::default();
    let web = HttpApp::start("web").await;
    let echo = ServerFirstApp::start(b"").await;
    let config = json!({
        "trustBundle": {"pem": pki.bundle_pem()},
        "mesh": {"egress": false},
        "egress": [
            {"name": "shop/web", "hosts": ["LocalHost."], "ports": [{"number": web.addr.port(), "protocol": "http"}]},
            {"name": "shop/tls", "hosts": ["localhost"], "ports": [{"number": echo.addr.port(), "protocol": "https"}]}
        ]
    });
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "buyer")),
        config_yaml: Some(config.to_string()),
        outbound_targets: vec![Some(web.addr), Some(echo.addr)],
        ..Default::default()
    })
    .await;
    let (to_web, to_echo) = (client.addrs.outbound[0], client.addrs.outbound[1]);

    // HTTP: by Host and port. (Admitted names must resolve: `localhost`,
    // from /etc/hosts, so nothing is sent to a DNS server; the proxy
    // connects to what the name resolves to.)
    let allowed = osm_tests::client::http1_get(to_web, "localhost", "/x")
        .await
        .unwrap();
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.body, "web GET /x ");
    let other = osm_tests::client::http1_get(to_web, "evil.example", "/x")
        .await
        .unwrap();
    assert_eq!(other.status, 403);
    assert_eq!(web.requests(), 1);

    // TLS: by the ClientHello's server name; the bytes pass through untouched.
    for (sni, admitted) in [("localhost", true), ("gitlab.com", false)] {
        let hello = client_hello(sni);
        let mut stream = tokio::net::TcpStream::connect(to_echo).await.unwrap();
        stream.write_all(&hello).await.unwrap();
        let mut echoed = vec![0u8; hello.len()];
        let read = tokio::time::timeout(osm_tests::patience(), stream.read_exact(&mut echoed))
            .await
            .unwrap();
        if admitted {
            read.unwrap();
            assert_eq!(echoed, hello, "{sni}");
        } else {
            assert!(read.is_err(), "{sni} must be refused");
        }
    }

    // TCP: by address range and port.
    let mut by_range = config.clone();
    by_range["egress"] = json!([{"name": "shop/db", "cidrs": ["127.0.0.0/8"], "ports": [{"number": echo.addr.port(), "protocol": "tcp"}]}]);
    client.apply(&by_range.to_string());
    let mut stream = tokio::net::TcpStream::connect(to_echo).await.unwrap();
    stream.write_all(b"\x00\x01binary").await.unwrap();
    let mut echoed = [0u8; 8];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"\x00\x01binary");
}

/// Regression (issue 14, item 3): an Egress rule for a host let the
/// application reach any address while presenting that host. The proxy now
/// connects only to an address the rule's host resolves to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_rule_pins_the_destination_to_its_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::default();
    let good = HttpApp::start("good").await; // 127.0.0.1:P, what `localhost` resolves to
    let port = good.addr.port();
    // Another server on the same port of another loopback address.
    let evil_addr: std::net::SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let evil = tokio::net::TcpListener::bind(evil_addr).await.unwrap();
    let evil_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits = evil_hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = evil.accept().await {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil")
                .await;
        }
    });
    let config = json!({
        "trustBundle": {"pem": pki.bundle_pem()},
        "mesh": {"egress": false},
        "egress": [{"name": "shop/localhost", "hosts": ["localhost"],
                    "ports": [{"number": port, "protocol": "http"}]}],
    })
    .to_string();
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "buyer")),
        config_yaml: Some(config),
        // The application connected to 127.0.0.2 but says Host: localhost.
        outbound_targets: vec![Some(evil_addr)],
        ..Default::default()
    })
    .await;
    let host = format!("localhost:{port}");
    let answer = osm_tests::client::http1_get(client.outbound(), &host, "/x")
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "good GET /x ", "reached the rule's host");
    assert_eq!(evil_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}
