use osm_tests::{
    ProxyOptions, TestProxy,
    client::Http1Conn,
    mesh::{Fixture, NS, client_config, store_policy},
};
use serde_json::json;

const HOST: &str = "bookstore.bookstore:14001";

async fn count(f: &Fixture, n: usize, headers: &[(&str, &str)]) -> (usize, usize) {
    let (v1_before, v2_before) = (f.v1.requests(), f.v2.requests());
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    for _ in 0..n {
        let answer = conn.get(HOST, "/books", headers).await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    (f.v1.requests() - v1_before, f.v2.requests() - v2_before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_90_10_lands_within_three_points() {
    let f = Fixture::start().await;
    f.buyer
        .apply(&client_config(&f, Some((90, 10)), None).to_string());
    let (v1, v2) = count(&f, 1000, &[]).await;
    assert_eq!(v1 + v2, 1000);
    let share = v2 as f64 / 10.0;
    assert!(
        (7.0..=13.0).contains(&share),
        "v2 got {share}% (v1 {v1}, v2 {v2})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_backend_gets_nothing() {
    let f = Fixture::start().await;
    f.buyer
        .apply(&client_config(&f, Some((0, 100)), None).to_string());
    assert_eq!(count(&f, 200, &[]).await, (0, 200));
    f.buyer
        .apply(&client_config(&f, Some((100, 0)), None).to_string());
    assert_eq!(count(&f, 200, &[]).await, (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_header_match_follows_the_split_and_the_rest_go_to_the_root() {
    let f = Fixture::start().await;
    let matches =
        json!([{"name": "bookstore/ab/firefox", "headers": {"user-agent": ".*Firefox.*"}}]);
    f.buyer
        .apply(&client_config(&f, Some((0, 100)), Some(matches)).to_string());
    // Root bookstore's own endpoints are v1's in this fixture.
    assert_eq!(
        count(&f, 50, &[("user-agent", "Mozilla/5.0 Firefox/120")]).await,
        (0, 50)
    );
    assert_eq!(count(&f, 50, &[("user-agent", "curl/8")]).await, (50, 0));
    assert_eq!(count(&f, 20, &[]).await, (20, 0));
}

/// A request the server's proxy could not hand to its application (the
/// app is gone: a pod stopping, an app restarting) is sent again by the
/// client's proxy to another endpoint, whatever its method, without any
/// retry policy (issue 20: the soak's 502s during app kills).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_an_app_never_got_is_sent_to_another_endpoint() {
    let f = Fixture::start().await;
    // A third bookstore proxy whose application's port is closed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let gone = TestProxy::start(ProxyOptions {
        credentials: Some(f.pki.issue(NS, "bookstore-v1")),
        config_yaml: Some(store_policy(&f.pki, closed.port(), false).to_string()),
        inbound_targets: vec![closed],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    // bookstore's endpoints: that proxy and bookstore-v2's.
    let mut config = client_config(&f, None, None);
    let mut dead = config["endpoints"][0]["endpoints"][0].clone();
    dead["address"] = json!(gone.inbound().to_string());
    config["endpoints"][0]["endpoints"] =
        json!([dead, config["endpoints"][1]["endpoints"][0].clone()]);
    f.buyer.apply(&config.to_string());
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    for i in 0..30 {
        let answer = conn.get(HOST, "/books", &[]).await.unwrap();
        assert_eq!(answer.status, 200, "GET {i}: {answer:?}");
    }
    let resent = |f: &Fixture| {
        osm_tests::metric_value(
            &f.buyer.metrics(),
            "osm_request_unprocessed_resent_total",
            &[("destination_service", "bookstore")],
        )
    };
    let after_gets = resent(&f);
    assert!(after_gets >= 1.0, "resent {after_gets}");
    // A POST with a body is not kept, so it is not resent: the dead
    // endpoint's answer says why, and marks it unprocessed.
    let mut posts = Vec::new();
    for _ in 0..20 {
        let req = http::Request::post("/books")
            .header("host", HOST)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        posts.push(conn.send(req).await.unwrap());
    }
    let failed: Vec<_> = posts.iter().filter(|a| a.status == 502).collect();
    assert!(
        failed
            .iter()
            .all(|a| a.headers.get("x-osm-unprocessed").is_some()),
        "{failed:?}"
    );
    assert!(f.v2.requests() >= 30, "v2 answered {}", f.v2.requests());
}
