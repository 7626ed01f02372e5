//! Per-request decisions of the proxy, without I/O.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method};
use osm_api::v1::HttpMatch;
use osm_proxy::{
    config::{Protocol, build_snapshot, parse_config},
    identity::SpiffeId,
    policy::{
        Authorization, HttpRequestView, InboundPolicy, Traffic, authorize_http,
        matcher::HttpMatcher,
    },
    routing::{choose_backend, choose_endpoint, service_by_authority, split::WeightedChoice},
    upstream::EndpointRegistry,
};

fn id(sa: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", "bookstore", sa)
}

fn policy(rules: usize) -> InboundPolicy {
    let authorizations = (0..rules)
        .map(|i| Authorization {
            name: format!("bookstore/tt-{i}").into(),
            sources: [id(&format!("client-{i}")), id("bookbuyer")].into(),
            traffic: Traffic::Http(vec![
                HttpMatcher::compile(&HttpMatch {
                    name: "a".into(),
                    path_regex: format!("/api/v{i}/.*"),
                    methods: vec!["GET".into(), "POST".into()],
                    headers: Default::default(),
                })
                .unwrap(),
            ]),
        })
        .collect();
    InboundPolicy::new(14001, Protocol::Http1, authorizations, vec![])
}

fn authorization(c: &mut Criterion) {
    let headers = HeaderMap::new();
    for rules in [1, 10, 100] {
        let p = policy(rules);
        let source = id("bookbuyer");
        let last = format!("/api/v{}/books", rules - 1);
        for (case, path) in [("last_matches", last.as_str()), ("denied", "/other")] {
            let view = HttpRequestView {
                method: &Method::GET,
                path,
                query: None,
                authority: None,
                headers: &headers,
            };
            c.bench_function(&format!("authorize_http/{rules}_rules/{case}"), |b| {
                b.iter(|| {
                    authorize_http(false, 14001, Some(black_box(&p)), black_box(&source), &view)
                })
            });
        }
    }
}

fn routing(c: &mut Criterion) {
    let mut config = serde_json::json!({"endpoints": [], "outbound": []});
    for i in 0..1000 {
        let key = format!("ns{i}/svc{i}:80");
        config["endpoints"].as_array_mut().unwrap().push(serde_json::json!({
            "key": key,
            "endpoints": (0..3).map(|e| serde_json::json!({"address": format!("10.1.{}.{}:8080", i % 250, e + 1)})).collect::<Vec<_>>()
        }));
        config["outbound"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "key": key, "port": 80, "endpoints": key,
                "hostnames": [format!("svc{i}.ns{i}"), format!("svc{i}.ns{i}.svc.cluster.local")],
                "vips": [format!("10.96.{}.{}", i / 250, i % 250)],
                "split": [{"endpoints": key, "weight": 90}, {"endpoints": key, "weight": 10}],
            }));
    }
    let parsed = parse_config("bench.json", &config.to_string()).unwrap();
    let snapshot = build_snapshot(parsed, 1, &EndpointRegistry::default()).unwrap();
    c.bench_function("route/lookup_by_authority/1000_services", |b| {
        b.iter(|| {
            service_by_authority(&snapshot, black_box("svc500.ns500.svc.cluster.local.:80"))
                .unwrap()
        })
    });
    let service = service_by_authority(&snapshot, "svc1.ns1").unwrap().clone();
    let headers = HeaderMap::new();
    let view = HttpRequestView {
        method: &Method::GET,
        path: "/",
        query: None,
        authority: None,
        headers: &headers,
    };
    c.bench_function("route/choose_backend_and_endpoint", |b| {
        b.iter(|| {
            let set = choose_backend(&service, Some(&view), fastrand_u64());
            black_box(choose_endpoint(set));
        })
    });
    let weights = WeightedChoice::new(&[50, 30, 15, 5]).unwrap();
    c.bench_function("split/pick_of_4", |b| {
        b.iter(|| weights.pick(black_box(123_456_789)))
    });
}

fn fastrand_u64() -> u64 {
    // Deterministic enough for a bench; avoids a dependency.
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^ (x >> 31)
}

/// Gateway API route matching: 100 rules (prefixes, exact paths, header
/// and query matches), a request matched by the last in precedence and one
/// matched by none.
fn route_rules(c: &mut Criterion) {
    use osm_api::v1::{self, route_match::PathKind};
    use osm_proxy::routing::http_route::{RouteMatches, compile_matches};
    let mut all = Vec::new();
    for i in 0..100 {
        let m = v1::RouteMatch {
            path_kind: if i % 2 == 0 {
                PathKind::PathPrefix
            } else {
                PathKind::PathExact
            } as i32,
            path: format!("/api/v{i}/books"),
            method: if i % 3 == 0 {
                "GET".into()
            } else {
                String::new()
            },
            headers: vec![v1::ValueMatch {
                name: "x-tenant".into(),
                value: format!("t{i}"),
                regex: false,
            }],
            query_params: vec![],
        };
        all.extend(compile_matches("routes", i, &[m]).expect("valid"));
    }
    let table = RouteMatches::new(all);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-tenant", "t98".parse().expect("value"));
    let method = http::Method::GET;
    let hit = HttpRequestView {
        method: &method,
        path: "/api/v98/books/1",
        query: Some("a=1"),
        authority: None,
        headers: &headers,
    };
    let miss = HttpRequestView {
        path: "/other",
        ..hit
    };
    c.bench_function("route rules: 100, matched late", |b| {
        b.iter(|| std::hint::black_box(table.select(std::hint::black_box(&hit))).is_some())
    });
    c.bench_function("route rules: 100, none matches", |b| {
        b.iter(|| std::hint::black_box(table.select(std::hint::black_box(&miss))).is_none())
    });
}

criterion_group!(
    benches,
    authorization,
    routing,
    route_rules,
    tracing,
    access_log
);
criterion_main!(benches);

/// What tracing costs a proxy per request: the request path (read and
/// write the trace context, record the span) and the exporter's encoding
/// of one span (Zipkin v2 JSON, in batches of 512).
fn tracing(c: &mut Criterion) {
    use osm_proxy::telemetry::{
        metrics::{Metrics, PodInfo},
        trace::{Format, Kind, Settings, Tracer, encode},
    };
    let pod = PodInfo {
        namespace: "bookbuyer".into(),
        kind: "Deployment".into(),
        name: "bookbuyer".into(),
        pod: "bookbuyer-5d8f9-abcde".into(),
    };
    let metrics = Metrics::new(&pod);
    let tracer = Tracer::new(&pod, metrics.trace_counters());
    let request = || {
        http::Request::get("http://bookstore.bookstore:14001/books/1")
            .header("user-agent", "bench")
            .body(())
            .unwrap()
    };
    c.bench_function("trace/off", |b| {
        b.iter(|| black_box(tracer.start(Kind::Client, &mut request())))
    });
    for (name, fraction) in [("trace/sampled_1pct", 0.01), ("trace/sampled_100pct", 1.0)] {
        tracer.configure(Some(Settings {
            // Nothing listens: the exporter's failures do not matter here.
            host: "127.0.0.1".into(),
            port: 9,
            path: "/api/v2/spans".into(),
            format: Format::ZipkinV2,
            sampled_fraction: fraction,
        }));
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut req = request();
                if let Some(span) = tracer.start(Kind::Client, &mut req) {
                    tracer.finish(
                        span,
                        200,
                        Some("10.0.0.7:14001".parse().unwrap()),
                        [
                            ("destination_name", "bookstore-v1".to_string()),
                            (
                                "peer.identity",
                                "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1".to_string(),
                            ),
                        ],
                    );
                }
                // Keep the buffer from filling (a full one drops spans
                // cheaply and would flatter the figure).
                if fastrand_u64().is_multiple_of(512) {
                    black_box(tracer.take_waiting());
                }
                black_box(req)
            })
        });
    }
    // The exporter thread takes spans too (every interval): collect from
    // the queue after each span until a whole batch is in hand.
    let mut spans = Vec::new();
    for _ in 0..100_000 {
        if spans.len() >= 512 {
            break;
        }
        let mut req = request();
        let span = tracer.start(Kind::Client, &mut req).unwrap();
        tracer.finish(
            span,
            200,
            None,
            [(
                "peer.identity",
                "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1".to_string(),
            )],
        );
        spans.extend(tracer.take_waiting());
    }
    spans.truncate(512);
    assert_eq!(spans.len(), 512, "a batch of spans to encode");
    c.bench_function("trace/encode_zipkin_per_512_spans", |b| {
        b.iter(|| black_box(encode::body(Format::ZipkinV2, &spans)))
    });
}

/// What the access log costs a proxy per request on its path: the line
/// started from the request, filled in from the outcome, and appended
/// (formatted) when the response body is done; the writer thread writes to
/// nowhere. `off` is the log configured off (what remains: one check).
fn access_log(c: &mut Criterion) {
    use std::sync::Arc;

    use osm_proxy::telemetry::{
        access_log::{AccessLog, HttpEntry, LogFormat},
        body_bytes::{LineStart, when_sent},
    };
    let peer: Arc<str> = "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1".into();
    let service: Arc<str> = "bookstore/bookstore:14001".into();
    let upstream: std::net::SocketAddr = "10.0.0.7:14001".parse().unwrap();
    for (name, format) in [
        ("access_log/off", LogFormat::Off),
        ("access_log/json", LogFormat::Json),
        ("access_log/text", LogFormat::Text),
    ] {
        let log = AccessLog::start(Box::new(std::io::sink()), metrics::Counter::noop(), format);
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut req = parsed_request();
                let line = LineStart::of(&log, &mut req, tokio::time::Instant::now());
                let response = http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(&[b'x'; 1024]),
                ));
                let logged = when_sent(line, &log, response, |parts| HttpEntry {
                    response_flags: "-",
                    peer_identity: Some(peer.clone()),
                    response_code: 200,
                    upstream_service: Some(service.clone()),
                    upstream_host: Some(upstream),
                    ..HttpEntry::of(parts, "outbound")
                });
                // The body is done: its line is written as it goes.
                drop(black_box(logged));
                black_box(req)
            })
        });
    }
}

/// A request as hyper's HTTP/1 parser makes one: its URI and header values
/// share the bytes of the head as read from the socket (cloning them is a
/// reference count, as in the proxy; values built from `&str` would be
/// copied when first cloned).
fn parsed_request() -> http::Request<()> {
    const HEAD: &[u8] =
        b"/books/1bookstore.bookstore:14001bench/1.06f0c2b1e-3f43-4c55-9a35-0d7c3c1f9a2b";
    let mut read = bytes::BytesMut::with_capacity(8192);
    read.extend_from_slice(HEAD);
    let head = read.split_to(HEAD.len()).freeze();
    let value =
        |at: std::ops::Range<usize>| http::HeaderValue::from_maybe_shared(head.slice(at)).unwrap();
    let mut req = http::Request::new(());
    *req.uri_mut() = http::Uri::from_maybe_shared(head.slice(0..8)).unwrap();
    let headers = req.headers_mut();
    headers.insert(http::header::HOST, value(8..33));
    headers.insert(http::header::USER_AGENT, value(33..42));
    headers.insert("x-request-id", value(42..HEAD.len()));
    req
}
