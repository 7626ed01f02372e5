//! Gateway API route rules enforced by a real client-side proxy: matches
//! with the specification's precedence, weighted backends, header
//! modifiers, redirects, rewrites, and the proxy's own 404 and 500.

use std::time::Duration;

use osm_tests::{
    ProxyOptions, TestProxy,
    apps::HttpApp,
    client::Http1Conn,
    flaky::{Fault, FlakyApp},
    metric_value,
    pki::Pki,
};
use serde_json::{Value, json};

const HOST: &str = "echo.shop";

fn set(key: &str, addr: std::net::SocketAddr, pod: &str) -> Value {
    json!({"key": key, "namespace": "shop", "service": pod, "endpoints": [
        {"address": addr.to_string(), "pod": pod, "workloadKind": "Deployment", "workloadName": pod}]})
}

async fn proxy(routes: Value, sets: Vec<Value>) -> TestProxy {
    let config = json!({
        "mesh": {"egress": false},
        "endpoints": sets,
        "outbound": [{
            "key": "shop/echo:80", "namespace": "shop", "name": "echo", "port": 80,
            "hostnames": [HOST], "endpoints": "shop/v1:80", "routes": routes,
        }],
    });
    TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "client")),
        config_yaml: Some(config.to_string()),
        ..Default::default()
    })
    .await
}

fn backend(key: &str, weight: u32) -> Value {
    json!({"endpoints": key, "weight": weight})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_follow_the_most_specific_matching_rule() {
    let (v1, v2) = (HttpApp::start("v1").await, HttpApp::start("v2").await);
    let routes = json!([
        {"name": "shop/echo/0", "backends": [backend("shop/v1:80", 1)]},
        {"name": "shop/echo/1", "matches": [{"pathKind": "PATH_PREFIX", "path": "/v2"}], "backends": [backend("shop/v2:80", 1)]},
        {"name": "shop/echo/2", "matches": [{"pathKind": "PATH_EXACT", "path": "/v2/exact"}], "backends": [backend("shop/v1:80", 1)]},
        {"name": "shop/echo/3", "matches": [{"pathKind": "PATH_PREFIX", "path": "/v2", "headers": [{"name": "version", "value": "one"}]}],
         "backends": [backend("shop/v1:80", 1)]},
        {"name": "shop/echo/4", "matches": [{"pathKind": "PATH_PREFIX", "path": "/q", "queryParams": [{"name": "animal", "value": "whale"}]}],
         "backends": [backend("shop/v2:80", 1)]},
    ]);
    let p = proxy(
        routes,
        vec![
            set("shop/v1:80", v1.addr, "v1"),
            set("shop/v2:80", v2.addr, "v2"),
        ],
    )
    .await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("/", &[], "v1 GET / "),
        ("/v2/x", &[], "v2 GET /v2/x "),
        ("/v2exact", &[], "v1 GET /v2exact "),
        ("/v2/exact", &[], "v1 GET /v2/exact "),
        ("/v2/x", &[("version", "one")], "v1 GET /v2/x "),
        ("/q?animal=whale", &[], "v2 GET /q "),
        ("/q?animal=dolphin", &[], "v1 GET /q "),
    ];
    for (path, headers, body) in cases {
        let answer = conn.get(HOST, path, headers).await.unwrap();
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.body, *body, "{path} {headers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_requests_by_count() {
    let (v1, v2) = (HttpApp::start("v1").await, HttpApp::start("v2").await);
    let routes = json!([{"name": "shop/echo/0",
        "backends": [backend("shop/v1:80", 70), backend("shop/v2:80", 30), backend("shop/v3:80", 0)]}]);
    let p = proxy(
        routes,
        vec![
            set("shop/v1:80", v1.addr, "v1"),
            set("shop/v2:80", v2.addr, "v2"),
        ],
    )
    .await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();
    for _ in 0..500 {
        assert_eq!(conn.get(HOST, "/", &[]).await.unwrap().status, 200);
    }
    let share = v2.requests() as f64 / 5.0;
    assert!((24.0..=36.0).contains(&share), "v2 got {share}%");
    assert_eq!(v1.requests() + v2.requests(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_modify_redirect_and_rewrite() {
    let v1 = HttpApp::start("v1").await;
    let routes = json!([
        {"name": "shop/echo/headers", "matches": [{"pathKind": "PATH_PREFIX", "path": "/headers"}],
         "filters": [
            {"requestHeaderModifier": {"set": [{"name": "x-set", "value": "set"}], "add": [{"name": "x-add", "value": "added"}], "remove": ["x-remove"]}},
            {"responseHeaderModifier": {"add": [{"name": "x-response", "value": "route"}]}}],
         "backends": [{"endpoints": "shop/v1:80", "weight": 1,
            "filters": [{"requestHeaderModifier": {"add": [{"name": "x-backend", "value": "v1"}]}}]}]},
        {"name": "shop/echo/redirect", "matches": [{"pathKind": "PATH_PREFIX", "path": "/old"}],
         "filters": [{"requestRedirect": {"prefixMatch": "/new", "statusCode": 301}}]},
        {"name": "shop/echo/https", "matches": [{"pathKind": "PATH_EXACT", "path": "/secure"}],
         "filters": [{"requestRedirect": {"scheme": "https", "hostname": "example.org"}}]},
        {"name": "shop/echo/rewrite", "matches": [{"pathKind": "PATH_PREFIX", "path": "/prefix/one"}],
         "filters": [{"urlRewrite": {"prefixMatch": "/one", "hostname": "rewritten.shop"}}],
         "backends": [backend("shop/v1:80", 1)]},
    ]);
    let p = proxy(routes, vec![set("shop/v1:80", v1.addr, "v1")]).await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();

    let answer = conn
        .get(
            HOST,
            "/headers",
            &[("x-set", "old"), ("x-add", "mine"), ("x-remove", "gone")],
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-response"], "route");
    let seen = v1.last_headers().unwrap();
    assert_eq!(seen["x-set"], "set");
    let added: Vec<_> = seen.get_all("x-add").iter().collect();
    assert_eq!(added, ["mine", "added"]);
    assert!(seen.get("x-remove").is_none());
    assert_eq!(seen["x-backend"], "v1");

    let moved = conn.get(HOST, "/old/page?x=1", &[]).await.unwrap();
    assert_eq!(moved.status, 301);
    assert_eq!(moved.headers["location"], "http://echo.shop/new/page?x=1");
    let secure = conn.get(HOST, "/secure", &[]).await.unwrap();
    assert_eq!(secure.status, 302);
    assert_eq!(secure.headers["location"], "https://example.org/secure");

    let rewritten = conn.get(HOST, "/prefix/one/two", &[]).await.unwrap();
    assert_eq!(rewritten.body, "v1 GET /one/two ");
    assert_eq!(v1.last_headers().unwrap()["host"], "rewritten.shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_answers_no_match_no_backend_and_timeouts_itself() {
    let slow = FlakyApp::start("slow").await;
    slow.set(Fault::Delay(Duration::from_secs(30)));
    let routes = json!([
        {"name": "shop/echo/none", "matches": [{"pathKind": "PATH_PREFIX", "path": "/none"}], "backends": []},
        {"name": "shop/echo/zero", "matches": [{"pathKind": "PATH_PREFIX", "path": "/zero"}], "backends": [backend("shop/v1:80", 0)]},
        {"name": "shop/echo/missing", "matches": [{"pathKind": "PATH_PREFIX", "path": "/missing"}], "backends": [backend("shop/nowhere:80", 1)]},
        {"name": "shop/echo/slow", "matches": [{"pathKind": "PATH_PREFIX", "path": "/slow"}], "backends": [backend("shop/v1:80", 1)],
         "requestTimeoutMs": 300},
    ]);
    let p = proxy(routes, vec![set("shop/v1:80", slow.addr, "slow")]).await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();
    assert_eq!(conn.get(HOST, "/elsewhere", &[]).await.unwrap().status, 404);
    for path in ["/none", "/zero", "/missing"] {
        let answer = conn.get(HOST, path, &[]).await.unwrap();
        assert_eq!(answer.status, 500, "{path}: {answer:?}");
    }
    let started = std::time::Instant::now();
    assert_eq!(conn.get(HOST, "/slow", &[]).await.unwrap().status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(slow.requests(), 1, "only the slow request reached the app");
}

/// A rule's `retry` (GEP-1731) retries its requests on the codes it
/// lists, instead of the service's policy; a rule without one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_retries_by_its_own_policy() {
    let app = FlakyApp::start("store").await;
    let routes = json!([
        {"name": "shop/echo/retried", "matches": [{"pathKind": "PATH_PREFIX", "path": "/retried"}],
         "backends": [backend("shop/v1:80", 1)],
         "retry": {"retryOn": ["connect-failure", "reset", "retriable-status-codes"], "numRetries": 2,
                   "backoffBaseMs": 1, "retriableStatusCodes": [503]}},
        {"name": "shop/echo/plain", "backends": [backend("shop/v1:80", 1)]},
    ]);
    let p = proxy(routes, vec![set("shop/v1:80", app.addr, "store")]).await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();

    app.set(Fault::FirstN { n: 2, status: 503 });
    let answer = conn.get(HOST, "/retried", &[]).await.unwrap();
    assert_eq!(answer.status, 200, "two 503s, two retries: {answer:?}");
    assert_eq!(app.requests(), 3);

    app.set(Fault::FirstN { n: 1, status: 503 });
    let answer = conn.get(HOST, "/plain", &[]).await.unwrap();
    assert_eq!(
        answer.status, 503,
        "no retry policy on this rule: {answer:?}"
    );
    assert_eq!(app.requests(), 4);

    app.set(Fault::FirstN { n: 1, status: 500 });
    let answer = conn.get(HOST, "/retried", &[]).await.unwrap();
    assert_eq!(answer.status, 500, "500 is not a listed code: {answer:?}");
    assert_eq!(app.requests(), 5);
}

/// `RequestMirror`: a copy of each request (body included) reaches the
/// mirror, its answer dropped; the client gets the backend's answer, even
/// when the mirror is slow; a share of 0 copies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_get_copies_and_the_client_does_not_wait_for_them() {
    let (v1, mirror, never) = (
        FlakyApp::start("v1").await,
        FlakyApp::start("mirror").await,
        FlakyApp::start("never").await,
    );
    mirror.set(Fault::Delay(Duration::from_secs(5)));
    let routes = json!([{
        "name": "shop/echo/0",
        "filters": [
            {"requestMirror": {"endpoints": "shop/mirror:80", "perMillion": 1_000_000}},
            {"requestMirror": {"endpoints": "shop/never:80", "perMillion": 0}},
        ],
        "backends": [backend("shop/v1:80", 1)],
    }]);
    let p = proxy(
        routes,
        vec![
            set("shop/v1:80", v1.addr, "v1"),
            set("shop/mirror:80", mirror.addr, "mirror"),
            set("shop/never:80", never.addr, "never"),
        ],
    )
    .await;
    let mut conn = Http1Conn::connect(p.outbound()).await.unwrap();
    let started = std::time::Instant::now();
    let order = http::Request::post("/orders")
        .header("host", HOST)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"one order",
        )))
        .unwrap();
    let answer = conn.send(order).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body.starts_with("v1 "), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the client waited for the slow mirror"
    );
    let began = std::time::Instant::now();
    while mirror.bodies().is_empty() && began.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mirror.bodies(), [bytes::Bytes::from_static(b"one order")]);
    assert_eq!(v1.bodies(), [bytes::Bytes::from_static(b"one order")]);
    assert_eq!(never.requests(), 0);
    // The copy is counted once its (slow) answer came.
    let answered = || {
        metric_value(
            &p.metrics(),
            "osm_request_mirrors_total",
            &[
                ("destination_set", "shop/mirror:80"),
                ("outcome", "answered"),
            ],
        )
    };
    let began = std::time::Instant::now();
    while answered() < 1.0 && began.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered(), 1.0, "{}", p.metrics());
}
