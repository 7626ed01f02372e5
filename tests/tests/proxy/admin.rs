use bytes::Bytes;
use http::Request;
use osm_proxy::logging::LogFilter as _;
use osm_tests::{
    client::{http1_get, send_streaming},
    eventually,
    mesh::Fixture,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_report_readiness_config_and_certificates() {
    let f = Fixture::start().await;
    let admin = f.buyer.addrs.admin;
    let ready = http1_get(admin, "localhost", "/ready").await.unwrap();
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(
        http1_get(admin, "localhost", "/live").await.unwrap().status,
        200
    );

    let dump = http1_get(admin, "localhost", "/config_dump").await.unwrap();
    assert_eq!(dump.status, 200);
    let dump: serde_json::Value = serde_json::from_str(&dump.body).unwrap();
    assert_eq!(dump["version"], 1);
    assert_eq!(
        dump["config"]["outbound"][0]["key"],
        "bookstore/bookstore:14001"
    );

    let certs = http1_get(admin, "localhost", "/certs").await.unwrap();
    let certs: serde_json::Value = serde_json::from_str(&certs.body).unwrap();
    assert_eq!(
        certs["identity"],
        "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"
    );
    assert_eq!(
        certs["chain"][0]["uri_sans"][0],
        "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"
    );
    assert_eq!(
        certs["chain"][0]["dns_sans"][0],
        "bookbuyer.bookbuyer.cluster.local"
    );
    assert_eq!(certs["trust_bundle"].as_array().unwrap().len(), 1);
    assert!(!certs.to_string().contains("PRIVATE KEY"));

    let metrics = http1_get(f.buyer.addrs.metrics, "localhost", "/stats/prometheus")
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("osm_config_reloads_total"),
        "{}",
        metrics.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_without_certificate_is_not_ready() {
    let proxy = osm_tests::TestProxy::start(osm_tests::ProxyOptions::default()).await;
    let ready = http1_get(proxy.addrs.admin, "localhost", "/ready")
        .await
        .unwrap();
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body,
        "not ready: waiting for a certificate and trust bundle and a config\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_finishes_in_flight_requests() {
    let f = Fixture::start().await;
    let Fixture { buyer, v1, .. } = f;
    let outbound = buyer.outbound();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let in_flight = tokio::spawn(async move {
        let req = Request::post("/books/new")
            .header("host", "bookstore.bookstore:14001")
            .body(osm_tests::client::StreamingBody::new(rx))
            .unwrap();
        send_streaming(outbound, req).await
    });
    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    eventually("the request reached the app", || async {
        (v1.requests() == 1).then_some(())
    })
    .await;

    let stopping = tokio::spawn(buyer.stop());
    eventually("new connections are refused", || async {
        tokio::net::TcpStream::connect(outbound)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    tx.send(Bytes::from_static(b"second")).await.unwrap();
    drop(tx);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "bookstore-v1 POST /books/new first second");
    stopping.await.unwrap();
}

/// A log filter that remembers what it was set to.
struct RecordingFilter(std::sync::Mutex<String>);

impl osm_proxy::logging::LogFilter for RecordingFilter {
    fn current(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    fn set(&self, filter: &str) -> Result<(), osm_proxy::logging::FilterError> {
        if filter.contains('!') {
            return Err(osm_proxy::logging::FilterError::Invalid {
                filter: filter.to_string(),
                reason: "no '!' in filters".into(),
            });
        }
        *self.0.lock().unwrap() = filter.to_string();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filter_can_be_read_and_changed() {
    let filter = std::sync::Arc::new(RecordingFilter(std::sync::Mutex::new("info".into())));
    let proxy = osm_tests::TestProxy::start(osm_tests::ProxyOptions {
        log_filter: Some(filter.clone()),
        ..Default::default()
    })
    .await;
    let admin = proxy.addrs.admin;
    assert_eq!(
        http1_get(admin, "localhost", "/logging")
            .await
            .unwrap()
            .body,
        "info\n"
    );
    let mut conn = osm_tests::client::Http1Conn::connect(admin).await.unwrap();
    let post = |uri: &str| {
        Request::post(uri)
            .header("host", "localhost")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap()
    };
    let set = conn
        .send(post("/logging?level=osm_proxy=debug"))
        .await
        .unwrap();
    assert_eq!(
        (set.status, set.body.as_str()),
        (200, "log filter: osm_proxy=debug\n")
    );
    assert_eq!(filter.current(), "osm_proxy=debug");
    let bad = conn.send(post("/logging?level=bad!")).await.unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(filter.current(), "osm_proxy=debug");
    let missing = conn.send(post("/logging")).await.unwrap();
    assert_eq!(missing.status, 400);
}

/// MeshConfig `sidecar.logLevel` reaches running proxies through their
/// config: applied when the config's level changes, so a filter set
/// through `/logging` holds until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_sets_the_log_level_when_it_changes() {
    let filter = std::sync::Arc::new(RecordingFilter(std::sync::Mutex::new("info".into())));
    let proxy = osm_tests::TestProxy::start(osm_tests::ProxyOptions {
        log_filter: Some(filter.clone()),
        ..Default::default()
    })
    .await;
    let config = |level: &str| format!("{{\"mesh\": {{\"logLevel\": \"{level}\"}}}}");
    proxy.apply(&config("debug"));
    assert_eq!(filter.current(), "debug");
    filter.set("trace").unwrap(); // as /logging would
    proxy.apply(&config("debug"));
    assert_eq!(filter.current(), "trace", "unchanged config level: kept");
    proxy.apply(&config("warn"));
    assert_eq!(filter.current(), "warn");
    proxy.apply("{}");
    assert_eq!(filter.current(), "warn", "no level named: left alone");
}
