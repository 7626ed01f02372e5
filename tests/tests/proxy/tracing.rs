//! Tracing through a client and a server proxy: one span each, one trace,
//! parent links, the context the application receives, sampling, and a
//! collector that is down.

use osm_tests::{
    client::Http1Conn,
    collector::{ReceivedSpan, SpanCollector},
    eventually,
    mesh::{Fixture, client_config, store_policy},
    metric_value,
};
use serde_json::{Value, json};

/// Turns tracing on in the bookbuyer's and bookstore-v1's proxies.
fn trace_to(f: &Fixture, port: u16, endpoint: &str, fraction: f64) {
    let tracing = json!({
        "address": "127.0.0.1", "port": port, "endpoint": endpoint, "sampledFraction": fraction,
    });
    let mut client = client_config(f, None, None);
    client["mesh"]["tracing"] = tracing.clone();
    f.buyer.apply(&client.to_string());
    let mut store = store_policy(&f.pki, f.v1.addr.port(), false);
    store["mesh"]["tracing"] = tracing;
    f.store_v1.apply(&store.to_string());
}

async fn get(f: &Fixture, headers: &[(&str, &str)]) -> u16 {
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    conn.get("bookstore:14001", "/books", headers)
        .await
        .unwrap()
        .status
}

/// The spans of `trace_id`, once both proxies' have arrived.
async fn trace_of(collector: &SpanCollector, trace_id: &str) -> (ReceivedSpan, ReceivedSpan) {
    eventually("both proxies' spans reach the collector", || async {
        let spans: Vec<ReceivedSpan> = collector
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect();
        let client = spans.iter().find(|s| s.kind == "CLIENT")?.clone();
        let server = spans.iter().find(|s| s.kind == "SERVER")?.clone();
        Some((client, server))
    })
    .await
}

/// (trace id, span id, flags) of the traceparent the application got.
fn app_traceparent(f: &Fixture) -> (String, String, String) {
    let headers = f.v1.last_headers().unwrap();
    let value = headers["traceparent"].to_str().unwrap().to_string();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

fn tag<'a>(span: &'a ReceivedSpan, key: &str) -> &'a Value {
    span.tags.get(key).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_gets_a_client_and_a_server_span_in_one_trace() {
    let f = Fixture::start().await;
    let collector = SpanCollector::start().await;
    trace_to(&f, collector.addr.port(), "/api/v2/spans", 1.0);

    // No context from the application: the client's proxy starts a trace.
    assert_eq!(get(&f, &[]).await, 200);
    let (trace_id, app_parent, flags) = app_traceparent(&f);
    assert_eq!(flags, "01");
    let (client, server) = trace_of(&collector, &trace_id).await;
    assert_eq!(client.parent_id, None);
    assert_eq!(server.parent_id.as_deref(), Some(client.id.as_str()));
    // The application continues from the server span.
    assert_eq!(app_parent, server.id);
    assert_eq!(client.service, "bookbuyer.bookbuyer");
    assert_eq!(server.service, "bookstore-v1.bookstore");
    assert_eq!(tag(&client, "http.status_code"), "200");
    assert_eq!(tag(&client, "source_name"), "bookbuyer");
    assert_eq!(tag(&client, "destination_name"), "bookstore-v1");
    assert_eq!(tag(&client, "destination_pod"), "bookstore-v1-pod");
    assert_eq!(
        tag(&client, "peer.identity"),
        "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1"
    );
    assert_eq!(tag(&server, "destination_name"), "bookstore-v1");
    assert_eq!(
        tag(&server, "peer.identity"),
        "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"
    );
    assert_eq!(
        tag(&server, "osm.authorization"),
        "bookstore/bookbuyer-access"
    );

    // A context from the application (B3, sampled): continued, in B3 too.
    let incoming_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let b3 = format!("{incoming_trace}-00f067aa0ba902b7-1");
    assert_eq!(get(&f, &[("b3", b3.as_str())]).await, 200);
    let (client, server) = trace_of(&collector, incoming_trace).await;
    assert_eq!(client.parent_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(server.parent_id.as_deref(), Some(client.id.as_str()));
    let headers = f.v1.last_headers().unwrap();
    assert_eq!(
        headers["b3"].to_str().unwrap(),
        format!("{incoming_trace}-{}-1-{}", server.id, client.id)
    );
    // The proxy starts no traceparent beside the application's own format.
    assert!(headers.get("traceparent").is_none());

    let text = f.buyer.metrics();
    assert!(
        metric_value(&text, "osm_trace_spans_exported_total", &[]) >= 2.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_zero_exports_nothing_but_keeps_a_callers_decision() {
    let f = Fixture::start().await;
    let collector = SpanCollector::start().await;
    trace_to(&f, collector.addr.port(), "/v1/traces", 0.0);
    for _ in 0..20 {
        assert_eq!(get(&f, &[]).await, 200);
        // The decision travels: the application is told not to sample.
        let (_, _, flags) = app_traceparent(&f);
        assert_eq!(flags, "00");
    }
    // A caller that decided to sample is followed: its spans come after
    // every span the 20 requests could have queued, so once they are in,
    // anything else would be too.
    let marker = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{marker}-b7ad6b7169203331-01");
    assert_eq!(get(&f, &[("traceparent", traceparent.as_str())]).await, 200);
    let (client, _) = trace_of(&collector, marker).await;
    assert_eq!(client.parent_id.as_deref(), Some("b7ad6b7169203331"));
    let others: Vec<_> = collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id != marker)
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_requests_nothing_and_is_counted() {
    let f = Fixture::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    trace_to(&f, port, "/api/v2/spans", 1.0);
    for _ in 0..10 {
        assert_eq!(get(&f, &[]).await, 200);
    }
    eventually("failed exports are counted", || async {
        let text = f.buyer.metrics();
        (metric_value(
            &text,
            "osm_trace_spans_dropped_total",
            &[("reason", "export_failed")],
        ) >= 1.0)
            .then_some(())
    })
    .await;
    // And tracing off again: headers pass through untouched.
    let mut client = client_config(&f, None, None);
    client["mesh"]["tracing"] = Value::Null;
    f.buyer.apply(&client.to_string());
    f.store_v1
        .apply(&store_policy(&f.pki, f.v1.addr.port(), false).to_string());
    assert_eq!(get(&f, &[]).await, 200);
    assert!(f.v1.last_headers().unwrap().get("traceparent").is_none());
}
