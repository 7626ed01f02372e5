use osm_tests::{
    client::Http1Conn,
    mesh::{Fixture, client_config},
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
