use osm_tests::{
    client::Http1Conn,
    mesh::{Fixture, store_policy},
};
use serde_json::json;

const HOST: &str = "bookstore.bookstore:14001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_route_rate_limits_answer_with_their_status() {
    let f = Fixture::start().await;
    let mut policy = store_policy(&f.pki, f.v1.addr.port(), false);
    policy["inbound"][0]["httpRateLimit"] = json!({
        "bucket": {"tokens": 2, "intervalMs": 3_600_000, "burst": 1},
        "statusCode": 503,
        "responseHeaders": {"x-limited": "yes"}
    });
    policy["inbound"][0]["routeRateLimits"] = json!([
        {"pathRegex": "/books/special", "limit": {"bucket": {"tokens": 1, "intervalMs": 3_600_000}}}
    ]);
    f.store_v1.apply(&policy.to_string());

    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    // The route's own bucket holds one request.
    assert_eq!(
        conn.get(HOST, "/books/special", &[]).await.unwrap().status,
        200
    );
    let limited = conn.get(HOST, "/books/special", &[]).await.unwrap();
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.body, "osm-proxy: rate limited\n");
    // The port's bucket: tokens + burst = 3 requests (the first special one took one).
    assert_eq!(conn.get(HOST, "/books/1", &[]).await.unwrap().status, 200);
    assert_eq!(conn.get(HOST, "/books/2", &[]).await.unwrap().status, 200);
    let over = conn.get(HOST, "/books/3", &[]).await.unwrap();
    assert_eq!(over.status, 503);
    assert_eq!(over.headers["x-limited"], "yes");
    assert_eq!(f.v1.requests(), 3, "limited requests never reach the app");
    // Denied requests spend no tokens: the thief's 403 is still a 403.
    let thief = osm_tests::client::http1_get(f.thief.outbound(), HOST, "/books/1")
        .await
        .unwrap();
    assert_eq!(thief.status, 403);
    let metrics = f.store_v1.metrics();
    assert_eq!(
        osm_tests::metric_value(
            &metrics,
            "osm_inbound_denied_total",
            &[("kind", "rate-limited")]
        ),
        2.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_rate_limit_closes_excess_connections() {
    let f = Fixture::start().await;
    let mut policy = store_policy(&f.pki, f.v1.addr.port(), false);
    policy["inbound"][0]["tcpRateLimit"] = json!({"tokens": 1, "intervalMs": 3_600_000});
    f.store_v1.apply(&policy.to_string());
    // The buyer's proxy pools one connection to bookstore-v1: many requests
    // ride it, and the limit is not hit.
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    for i in 0..5 {
        assert_eq!(
            conn.get(HOST, &format!("/books/{i}"), &[])
                .await
                .unwrap()
                .status,
            200
        );
    }
    // The thief's proxy needs a second connection: it is closed (502).
    let thief = osm_tests::client::http1_get(f.thief.outbound(), HOST, "/books/1")
        .await
        .unwrap();
    assert_eq!(thief.status, 502, "{thief:?}");
    let metrics = f.store_v1.metrics();
    assert_eq!(
        osm_tests::metric_value(
            &metrics,
            "osm_inbound_denied_total",
            &[("kind", "connection-rate-limited")]
        ),
        1.0,
        "{metrics}"
    );
}
