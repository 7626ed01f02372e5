//! Retries, timeouts, circuit breaking and outlier detection, enforced by
//! a real client-side proxy in front of applications that fail on command.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use osm_tests::{
    ProxyOptions, TestProxy,
    apps::ServerFirstApp,
    client::{Answer, Http1Conn},
    eventually,
    flaky::{Fault, FlakyApp},
    metric_value,
    pki::Pki,
};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const KEY: &str = "shop/store:80";
const HOST: &str = "store.shop";

/// A client proxy whose service `store` has `apps` as its endpoints
/// (plaintext, outside the mesh: the mechanism under test is the client
/// side's) and the settings in `service`.
fn config(apps: &[(String, String)], service: Value) -> String {
    let endpoints: Vec<Value> = apps
        .iter()
        .map(|(addr, pod)| {
            json!({"address": addr, "pod": pod, "workloadKind": "Deployment", "workloadName": "store"})
        })
        .collect();
    let mut outbound = json!({
        "key": KEY, "namespace": "shop", "name": "store", "port": 80,
        "hostnames": [HOST], "endpoints": KEY,
    });
    for (k, v) in service.as_object().unwrap() {
        outbound[k] = v.clone();
    }
    json!({
        "mesh": {"egress": false},
        "endpoints": [{"key": KEY, "namespace": "shop", "service": "store", "endpoints": endpoints}],
        "outbound": [outbound],
    })
    .to_string()
}

fn http_apps(apps: &[&FlakyApp]) -> Vec<(String, String)> {
    apps.iter()
        .map(|a| (a.addr.to_string(), a.name.clone()))
        .collect()
}

async fn client(yaml: String) -> TestProxy {
    TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_yaml: Some(yaml),
        ..Default::default()
    })
    .await
}

async fn get(proxy: &TestProxy) -> Answer {
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    conn.get(HOST, "/", &[]).await.unwrap()
}

fn retries(metrics: &str) -> f64 {
    metric_value(
        metrics,
        "osm_request_retries_total",
        &[("destination_service", "store")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tries_are_retried_and_the_request_counts_once() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::FirstN { n: 2, status: 503 });
    let retry = json!({"retry": {"retryOn": ["5xx"], "numRetries": 3, "backoffBaseMs": 1}});
    let proxy = client(config(&http_apps(&[&app]), retry)).await;
    let answer = get(&proxy).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(app.requests(), 3, "two failures, then success");
    let metrics = proxy.metrics();
    assert_eq!(retries(&metrics), 2.0, "{metrics}");
    assert_eq!(
        metric_value(
            &metrics,
            "osm_request_total",
            &[("destination_name", "store")]
        ),
        1.0,
        "a retried request counts once: {metrics}"
    );

    // More failures than retries: the last answer is the client's.
    app.set(Fault::FirstN { n: 10, status: 503 });
    let answer = get(&proxy).await;
    assert_eq!(answer.status, 503);
    assert_eq!(app.requests(), 3 + 4, "the first try and three retries");

    // A status the conditions do not name is not retried.
    app.set(Fault::FirstN { n: 1, status: 404 });
    assert_eq!(get(&proxy).await.status, 404);
    assert_eq!(app.requests(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retry_policy_a_failure_is_answered_as_it_is() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::FirstN { n: 1, status: 503 });
    let proxy = client(config(&http_apps(&[&app]), json!({}))).await;
    assert_eq!(get(&proxy).await.status, 503);
    assert_eq!(app.requests(), 1);
    assert_eq!(retries(&proxy.metrics()), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_sends_the_same_body_and_resets_are_retried() {
    let app = FlakyApp::start("store-0").await;
    let retry = json!({"retry": {"retryOn": ["5xx"], "numRetries": 2, "backoffBaseMs": 1}});
    let proxy = client(config(&http_apps(&[&app]), retry)).await;
    app.set(Fault::FirstN { n: 1, status: 502 });
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    let body = "order=42&book=dune";
    let request = Request::post("/orders")
        .header("host", HOST)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let answer = conn.send(request).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, format!("store-0 {body}"));
    assert_eq!(app.bodies(), [Bytes::from(body), Bytes::from(body)]);

    // A connection closed without an answer is retried too; a reset
    // every time ends in 502 after the retries.
    app.set(Fault::Reset);
    let answer = get(&proxy).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(app.requests(), 2 + 3);
}

/// A destination that fails every request: retries stay within the budget
/// (a fifth of the requests, plus ten a second), not `numRetries` times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_bounds_the_load_on_a_failing_service() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::Always { status: 503 });
    let retry = json!({"retry": {"retryOn": ["5xx"], "numRetries": 3, "backoffBaseMs": 1}});
    let proxy = client(config(&http_apps(&[&app]), retry)).await;
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    let sent = 600;
    let started = Instant::now();
    for _ in 0..sent {
        assert_eq!(conn.get(HOST, "/", &[]).await.unwrap().status, 503);
    }
    let seconds = started.elapsed().as_secs_f64().ceil().min(10.0);
    let received = app.requests() as f64;
    let bound = sent as f64 * 1.2 + 10.0 * 10.0_f64.max(seconds);
    assert!(
        received <= bound,
        "{received} requests reached the app for {sent} sent (bound {bound})"
    );
    assert!(
        received < sent as f64 * 2.0,
        "without a budget it would be {}",
        sent * 4
    );
    let skipped = metric_value(
        &proxy.metrics(),
        "osm_request_retries_skipped_total",
        &[("reason", "budget")],
    );
    assert!(skipped > 0.0, "the budget refused retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_is_answered_504_and_cancelled_upstream() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::Delay(Duration::from_secs(30)));
    let proxy = client(config(
        &http_apps(&[&app]),
        json!({"requestTimeoutMs": 300}),
    ))
    .await;
    let started = Instant::now();
    let answer = get(&proxy).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 504, "{answer:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        answer.headers["osm-proxy-error"]
            .to_str()
            .unwrap()
            .contains("request timeout of 300ms"),
        "{answer:?}"
    );
    eventually("the application sees the request cancelled", || async {
        (app.cancelled() == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_requests_are_refused_at_once() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::Delay(Duration::from_millis(1500)));
    let proxy = client(config(
        &http_apps(&[&app]),
        json!({"limits": {"maxRequests": 1}}),
    ))
    .await;
    let outbound = proxy.outbound();
    let slow = tokio::spawn(async move {
        let mut conn = Http1Conn::connect(outbound).await.unwrap();
        conn.get(HOST, "/", &[]).await.unwrap()
    });
    eventually("the first request reached the app", || async {
        (app.requests() == 1).then_some(())
    })
    .await;
    let started = Instant::now();
    let refused = get(&proxy).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "refused at once, not after the slow one"
    );
    assert_eq!(
        refused.headers["osm-proxy-error"],
        "osm-proxy: shop/store:80: the max-requests limit is reached"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(
        app.requests(),
        1,
        "the refused request never left the proxy"
    );
    assert_eq!(
        metric_value(
            &proxy.metrics(),
            "osm_outbound_refused_total",
            &[("reason", "max-requests")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_requests_wait_for_a_place_up_to_their_limit() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::Delay(Duration::from_millis(800)));
    let proxy = client(config(
        &http_apps(&[&app]),
        json!({"limits": {"maxRequests": 1, "maxPendingRequests": 1}}),
    ))
    .await;
    let outbound = proxy.outbound();
    let spawn = || {
        tokio::spawn(async move {
            let mut conn = Http1Conn::connect(outbound).await.unwrap();
            conn.get(HOST, "/", &[]).await.unwrap().status
        })
    };
    let first = spawn();
    eventually("the first request reached the app", || async {
        (app.requests() == 1).then_some(())
    })
    .await;
    let second = spawn();
    eventually(
        "the second request holds the only pending place",
        || async {
            let snapshot = proxy.shared.config();
            let service = &snapshot.outbound_by_host.get(HOST)?[0].service;
            (service.endpoints.breaker.as_ref()?.pending() == 1).then_some(())
        },
    )
    .await;
    let third = get(&proxy).await;
    assert_eq!(third.status, 503, "{third:?}");
    assert!(
        third.headers["osm-proxy-error"]
            .to_str()
            .unwrap()
            .contains("max-pending-requests"),
        "{third:?}"
    );
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(second.await.unwrap(), 200, "the waiting one got its turn");
    assert_eq!(app.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_beyond_max_connections_are_closed() {
    let app = ServerFirstApp::start(b"220 ready\r\n").await;
    let yaml = {
        let mut c: Value = serde_json::from_str(&config(
            &[(app.addr.to_string(), "db-0".into())],
            json!({"protocol": "PROTOCOL_TCP_SERVER_FIRST", "vips": ["127.0.96.30"], "limits": {"maxConnections": 1}}),
        ))
        .unwrap();
        c["outbound"][0]["hostnames"] = json!([]);
        c.to_string()
    };
    let proxy = TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_yaml: Some(yaml),
        outbound_targets: vec![Some("127.0.96.30:80".parse().unwrap())],
        ..Default::default()
    })
    .await;
    let banner = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer or a close")
            .unwrap_or(0);
        (s, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let first = tokio::net::TcpStream::connect(proxy.outbound())
        .await
        .unwrap();
    let (first, text) = banner(first).await;
    assert_eq!(text, "220 ready\r\n");
    let second = tokio::net::TcpStream::connect(proxy.outbound())
        .await
        .unwrap();
    let (_, text) = banner(second).await;
    assert_eq!(text, "", "the second connection is closed");
    assert_eq!(
        metric_value(
            &proxy.metrics(),
            "osm_outbound_refused_total",
            &[("reason", "max-connections")]
        ),
        1.0
    );
    drop(first);
    eventually("a place frees when the first closes", || async {
        let s = tokio::net::TcpStream::connect(proxy.outbound())
            .await
            .ok()?;
        let (_, text) = banner(s).await;
        (text == "220 ready\r\n").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_ejected_then_tried_again() {
    let bad = FlakyApp::start("store-bad").await;
    let good = FlakyApp::start("store-good").await;
    // Failing fast makes an endpoint look cheap to the latency-aware
    // balancer: without detection it would draw most of the traffic.
    bad.set(Fault::Always { status: 500 });
    good.set(Fault::Delay(Duration::from_millis(5)));
    let outlier = json!({"outlierDetection": {
        "consecutive5xx": 3, "baseEjectionTimeMs": 1000, "maxEjectionPercent": 50}});
    let proxy = client(config(&http_apps(&[&bad, &good]), outlier)).await;
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    let mut send = async |n: usize| {
        for _ in 0..n {
            conn.get(HOST, "/", &[]).await.unwrap();
        }
    };
    send(60).await;
    assert_eq!(bad.requests(), 3, "ejected after three failures in a row");
    assert_eq!(good.requests(), 57);
    let metrics = proxy.metrics();
    assert_eq!(
        metric_value(&metrics, "osm_outlier_ejections_total", &[]),
        1.0,
        "{metrics}"
    );

    // Back after the ejection time, failing again: ejected again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(60).await;
    assert_eq!(bad.requests(), 6, "tried again, and ejected again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_max_ejection_percent_of_endpoints_are_ejected() {
    let a = FlakyApp::start("store-a").await;
    let b = FlakyApp::start("store-b").await;
    a.set(Fault::Always { status: 500 });
    b.set(Fault::Always { status: 500 });
    let outlier = json!({"outlierDetection": {
        "consecutive5xx": 2, "baseEjectionTimeMs": 30000, "maxEjectionPercent": 50}});
    let proxy = client(config(&http_apps(&[&a, &b]), outlier)).await;
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    for _ in 0..40 {
        assert_eq!(conn.get(HOST, "/", &[]).await.unwrap().status, 500);
    }
    let (ra, rb) = (a.requests(), b.requests());
    assert_eq!(ra + rb, 40);
    assert!(
        ra.min(rb) <= 2 && ra.max(rb) >= 38,
        "one ejected, the other kept serving: {ra} and {rb}"
    );
    assert_eq!(
        metric_value(&proxy.metrics(), "osm_outlier_ejections_total", &[]),
        1.0
    );
}

/// Egress rules that name an UpstreamTrafficSetting get its limits: HTTP
/// requests to the rule's host, TCP connections to its address range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_rules_are_held_to_their_upstream_settings() {
    let web = FlakyApp::start("web").await;
    web.set(Fault::Delay(Duration::from_millis(1500)));
    let db = ServerFirstApp::start(b"220 db\r\n").await;
    let limits = json!({"maxRequests": 1, "maxConnections": 1});
    let config = json!({
        "mesh": {"egress": false},
        "egress": [
            {"name": "shop/web", "hosts": ["localhost"], "ports": [{"number": web.addr.port(), "protocol": "http"}], "limits": limits},
            {"name": "shop/db", "cidrs": ["127.0.0.0/8"], "ports": [{"number": db.addr.port(), "protocol": "tcp"}], "limits": limits}
        ]
    });
    let proxy = TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_yaml: Some(config.to_string()),
        outbound_targets: vec![Some(web.addr), Some(db.addr)],
        ..Default::default()
    })
    .await;
    let (to_web, to_db) = (proxy.addrs.outbound[0], proxy.addrs.outbound[1]);
    let slow = tokio::spawn(async move {
        let mut conn = Http1Conn::connect(to_web).await.unwrap();
        conn.get("localhost", "/", &[]).await.unwrap().status
    });
    eventually("the first request reached the web app", || async {
        (web.requests() == 1).then_some(())
    })
    .await;
    let mut conn = Http1Conn::connect(to_web).await.unwrap();
    let refused = conn.get("localhost", "/", &[]).await.unwrap();
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.headers["osm-proxy-error"],
        "osm-proxy: egress:shop/web: the max-requests limit is reached"
    );
    assert_eq!(slow.await.unwrap(), 200);

    let read = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 32];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer or a close")
            .unwrap_or(0);
        (s, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let (_first, text) = read(tokio::net::TcpStream::connect(to_db).await.unwrap()).await;
    assert_eq!(text, "220 db\r\n");
    let (_, text) = read(tokio::net::TcpStream::connect(to_db).await.unwrap()).await;
    assert_eq!(text, "", "a second connection to the range is closed");
    let metrics = proxy.metrics();
    for reason in ["max-requests", "max-connections"] {
        assert_eq!(
            metric_value(
                &metrics,
                "osm_outbound_refused_total",
                &[("reason", reason)]
            ),
            1.0,
            "{reason}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_retired_after_max_requests_per_connection() {
    let app = FlakyApp::start("store-0").await;
    let proxy = client(config(
        &http_apps(&[&app]),
        json!({"limits": {"maxRequestsPerConnection": 2}}),
    ))
    .await;
    let mut conn = Http1Conn::connect(proxy.outbound()).await.unwrap();
    for _ in 0..6 {
        assert_eq!(conn.get(HOST, "/", &[]).await.unwrap().status, 200);
    }
    assert_eq!(app.requests(), 6);
    assert_eq!(app.connections(), 3, "two requests per upstream connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_past_the_backend_request_timeout_is_answered_504() {
    let app = FlakyApp::start("store-0").await;
    app.set(Fault::Delay(Duration::from_secs(30)));
    let proxy = client(config(
        &http_apps(&[&app]),
        json!({"backendRequestTimeoutMs": 200}),
    ))
    .await;
    let started = Instant::now();
    let answer = get(&proxy).await;
    assert_eq!(answer.status, 504, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        answer.headers["osm-proxy-error"]
            .to_str()
            .unwrap()
            .contains("no response within 200ms"),
        "{answer:?}"
    );
}
