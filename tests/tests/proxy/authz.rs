use osm_tests::{
    ProxyOptions, TestProxy,
    apps::HttpApp,
    client::{Http1Conn, http1_get},
    mesh::{Fixture, V1_KEY, client_config, store_policy},
    pki::{Pki, spiffe},
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "bookstore.bookstore:14001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smi_policy_allows_listed_routes_and_denies_the_rest() {
    let f = Fixture::start().await;
    let mut buyer = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    let ok = buyer.get(HOST, "/books/1", &[]).await.unwrap();
    assert_eq!(ok.status, 200);

    // Allowed source, path not in the route group.
    let other_path = buyer.get(HOST, "/admin", &[]).await.unwrap();
    assert_eq!(other_path.status, 403);
    assert!(
        other_path.body.contains(
            "no rule allows spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer to GET /admin"
        ),
        "{}",
        other_path.body
    );
    // Allowed source and path, method not listed.
    let req = http::Request::delete("/books/1")
        .header("host", HOST)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(buyer.send(req).await.unwrap().status, 403);

    // An identity that no rule lists.
    let thief = http1_get(f.thief.outbound(), HOST, "/books/1")
        .await
        .unwrap();
    assert_eq!(thief.status, 403);
    assert!(
        thief.body.contains("bookthief is not an allowed source"),
        "{}",
        thief.body
    );
    assert_eq!(
        f.v1.requests(),
        1,
        "only the allowed request reached the app"
    );
}

/// Regressions (issue 14, items 4-6): a rule sees the request the
/// application gets. `/books/../admin` passed a `/books.*` rule and reached
/// the app as `/admin`-to-be; an encoded dot segment, two authorities, a
/// client-made identity header and an upgrade to anything but WebSocket
/// passed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_judge_the_request_the_application_gets() {
    let f = Fixture::start().await;
    let mut buyer = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    let traversal = buyer.get(HOST, "/books/../admin", &[]).await.unwrap();
    assert_eq!(traversal.status, 403, "{}", traversal.body);
    assert!(traversal.body.contains("GET /admin"), "{}", traversal.body);
    let encoded = buyer.get(HOST, "/books/%2e%2e/admin", &[]).await.unwrap();
    assert_eq!(encoded.status, 400, "{}", encoded.body);
    assert!(
        encoded.body.contains("encoded dot segment"),
        "{}",
        encoded.body
    );
    let merged = buyer.get(HOST, "/books//1", &[]).await.unwrap();
    assert_eq!(merged.status, 200);
    assert!(merged.body.ends_with("GET /books/1 "), "{}", merged.body);

    // The identity header is the proxy's, whatever the client wrote.
    let forged = buyer
        .get(
            HOST,
            "/books/2",
            &[(
                "x-forwarded-client-cert",
                "URI=spiffe://cluster.local/ns/bookstore/sa/admin",
            )],
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 200);
    let seen = f.v1.last_headers().unwrap();
    assert_eq!(
        seen.get_all("x-forwarded-client-cert")
            .iter()
            .collect::<Vec<_>>(),
        ["URI=spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"]
    );

    // An upgrade to something else than WebSocket goes on as plain HTTP.
    let h2c = http::Request::get("/books/3")
        .header("host", HOST)
        .header("connection", "upgrade")
        .header("upgrade", "h2c")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let h2c = buyer.send(h2c).await.unwrap();
    assert_eq!(h2c.status, 200, "not switched: {}", h2c.body);
    assert!(f.v1.last_headers().unwrap().get("upgrade").is_none());

    // Two authorities: refused before any routing.
    let mut other = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    let confused = http::Request::get("http://bookstore-v2.bookstore:14001/books/4")
        .header("host", HOST)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let confused = other.send(confused).await.unwrap();
    assert_eq!(confused.status, 400, "{}", confused.body);
    assert!(confused.body.contains("differ"), "{}", confused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_mode_admits_any_mesh_identity() {
    let f = Fixture::start().await;
    assert_eq!(
        http1_get(f.thief.outbound(), HOST, "/anything")
            .await
            .unwrap()
            .status,
        403
    );
    f.store_v1
        .apply(&store_policy(&f.pki, f.v1.addr.port(), true).to_string());
    assert_eq!(
        http1_get(f.thief.outbound(), HOST, "/anything")
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_are_refused_by_the_inbound_side() {
    let f = Fixture::start().await;
    // An HTTP client outside the mesh is told why, with a 403.
    let mut stream = tokio::net::TcpStream::connect(f.store_v1.inbound())
        .await
        .unwrap();
    stream
        .write_all(b"GET /books/1 HTTP/1.1\r\nHost: bookstore\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(osm_tests::patience(), stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("only mesh mTLS is accepted"), "{text}");
    // Counted by the client's address and this pod, for TrafficMetrics to
    // tell whose requests these were.
    let metrics = f.store_v1.metrics();
    assert_eq!(
        osm_tests::metric_value(
            &metrics,
            "osm_inbound_plaintext_refused_requests_total",
            &[
                ("source_ip", "127.0.0.1"),
                ("destination_name", "bookstore-v1"),
                ("response_code", "403"),
            ],
        ),
        1.0,
        "{metrics}"
    );
    // Other plaintext bytes get nothing but a closed connection.
    let mut stream = tokio::net::TcpStream::connect(f.store_v1.inbound())
        .await
        .unwrap();
    stream.write_all(b"\x00\x01binary hello\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(osm_tests::patience(), stream.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        read.is_err() || buf.is_empty(),
        "plaintext got an answer: {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(f.v1.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_sources_may_connect_in_plaintext() {
    let pki = Pki::default();
    let app = HttpApp::start("frontend").await;
    let server = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("web", "frontend")),
        config_yaml: Some(
            json!({"trustBundle": {"pem": pki.bundle_pem()},
                   "inbound": [{"port": app.addr.port(), "plaintextSources": ["127.0.0.0/8"]}]})
            .to_string(),
        ),
        inbound_targets: vec![app.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let answer = http1_get(server.inbound(), "frontend", "/").await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "frontend GET / ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_proving_another_identity_is_refused() {
    let f = Fixture::start().await;
    // Point bookstore-v1's endpoint at bookstore-v2's proxy: its certificate
    // proves bookstore-v2, not the identity the config expects.
    let mut config = client_config(&f, None, None);
    config["endpoints"][0]["endpoints"][0]["address"] = json!(f.store_v2.inbound().to_string());
    assert_eq!(config["endpoints"][0]["key"], V1_KEY);
    f.buyer.apply(&config.to_string());
    let answer = http1_get(f.buyer.outbound(), HOST, "/books/1")
        .await
        .unwrap();
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.body.contains("bookstore-v2"), "{}", answer.body);
    assert_eq!(f.v2.requests(), 0);
    assert_eq!(f.v1.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_are_refused() {
    let f = Fixture::start().await;
    let rogue_ca = Pki::new("rogue");
    let rogue = TestProxy::start(ProxyOptions {
        // Claims to be bookbuyer, but its CA is not in the trust bundle.
        credentials: Some(rogue_ca.issue("bookbuyer", "bookbuyer")),
        config_yaml: None,
        ..Default::default()
    })
    .await;
    let mut config = client_config(&f, None, None);
    config["trustBundle"]["pem"] =
        json!(format!("{}{}", rogue_ca.bundle_pem(), f.pki.bundle_pem()));
    rogue.apply(&config.to_string());
    let answer = http1_get(rogue.outbound(), HOST, "/books/1").await.unwrap();
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(f.v1.requests(), 0);
    let _ = spiffe("a", "b");
}
