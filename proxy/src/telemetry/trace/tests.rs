use super::*;

const W3C: Formats = Formats::NEW;

fn parent(sampled: Option<bool>) -> Incoming {
    Incoming::Parent {
        trace_id: 5,
        span_id: 6,
        sampled,
        formats: W3C,
    }
}

#[test]
fn the_decision_is_made_once_where_the_trace_starts() {
    let b3 = Formats {
        b3_single: true,
        ..Formats::default()
    };
    let cases = [
        // (incoming, fraction, roll, plan)
        (parent(Some(false)), 1.0, 0.0, Plan::PassThrough),
        (
            Incoming::Decision {
                sampled: false,
                formats: b3,
            },
            1.0,
            0.0,
            Plan::PassThrough,
        ),
        (
            parent(Some(true)),
            0.0,
            0.5,
            Plan::Span {
                parent: Some((5, 6)),
                sampled: true,
                formats: W3C,
            },
        ),
        // Deferred by the sender: the fraction decides.
        (
            parent(None),
            0.25,
            0.2,
            Plan::Span {
                parent: Some((5, 6)),
                sampled: true,
                formats: W3C,
            },
        ),
        (
            parent(None),
            0.25,
            0.3,
            Plan::Span {
                parent: Some((5, 6)),
                sampled: false,
                formats: W3C,
            },
        ),
        (
            Incoming::Decision {
                sampled: true,
                formats: b3,
            },
            0.0,
            0.9,
            Plan::Span {
                parent: None,
                sampled: true,
                formats: Formats { w3c: true, ..b3 },
            },
        ),
        // No context: a new trace, written even when not sampled so the
        // next proxy keeps the decision.
        (
            Incoming::None {
                formats: Formats::default(),
            },
            0.0,
            0.0,
            Plan::Span {
                parent: None,
                sampled: false,
                formats: W3C,
            },
        ),
        (
            Incoming::None {
                formats: Formats::default(),
            },
            1.0,
            0.999,
            Plan::Span {
                parent: None,
                sampled: true,
                formats: W3C,
            },
        ),
    ];
    for (i, (incoming, fraction, roll, want)) in cases.into_iter().enumerate() {
        assert_eq!(plan(incoming, fraction, roll), want, "case {i}");
    }
}

#[test]
fn settings_refuse_what_validation_refuses() {
    let ok = v1::Tracing {
        address: "jaeger.osm-system.svc.cluster.local".into(),
        port: 9411,
        endpoint: "/api/v2/spans".into(),
        sampled_fraction: 0.5,
    };
    let s = Settings::from_config(&ok).unwrap();
    assert_eq!(s.format, Format::ZipkinV2);
    assert_eq!(s.collector(), "jaeger.osm-system.svc.cluster.local:9411");
    for bad in [
        v1::Tracing {
            address: String::new(),
            ..ok.clone()
        },
        v1::Tracing {
            port: 0,
            ..ok.clone()
        },
        v1::Tracing {
            port: 70000,
            ..ok.clone()
        },
        v1::Tracing {
            endpoint: "api/v2/spans".into(),
            ..ok.clone()
        },
        v1::Tracing {
            sampled_fraction: 1.5,
            ..ok.clone()
        },
        v1::Tracing {
            sampled_fraction: f64::NAN,
            ..ok.clone()
        },
    ] {
        assert!(Settings::from_config(&bad).is_err(), "{bad:?}");
    }
}

fn tracer() -> Tracer {
    let counter = || metrics::Counter::noop();
    Tracer::new(
        &PodInfo {
            namespace: "bookbuyer".into(),
            kind: "Deployment".into(),
            name: "bookbuyer".into(),
            pod: "bookbuyer-1".into(),
        },
        export::Counters {
            exported: counter(),
            queue_full: counter(),
            export_failed: counter(),
        },
    )
}

fn settings(fraction: f64) -> Settings {
    Settings {
        host: "127.0.0.1".into(),
        port: 9,
        path: "/api/v2/spans".into(),
        format: Format::ZipkinV2,
        sampled_fraction: fraction,
    }
}

#[test]
fn tracing_off_leaves_requests_untouched() {
    let t = tracer();
    let mut req = Request::get("http://bookstore/").body(()).unwrap();
    assert!(t.start(Kind::Client, &mut req).is_none());
    assert!(req.headers().is_empty());
}

#[test]
fn a_sampled_request_continues_its_trace_with_a_new_span() {
    let t = tracer();
    t.configure(Some(settings(0.0)));
    let mut req = Request::get("http://bookstore/books")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(())
        .unwrap();
    let span = t.start(Kind::Client, &mut req).expect("sampled upstream");
    assert_eq!(span.written.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(span.written.parent_id, Some(0x00f067aa0ba902b7));
    let written = req.headers()["traceparent"].to_str().unwrap();
    assert_eq!(
        written,
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01",
            span.written.span_id
        )
    );
    assert_eq!(span.name, "GET bookstore");
}

#[test]
fn an_unsampled_new_trace_is_written_but_not_recorded() {
    let t = tracer();
    t.configure(Some(settings(0.0)));
    let mut req = Request::get("http://bookstore/").body(()).unwrap();
    assert!(t.start(Kind::Client, &mut req).is_none());
    let written = req.headers()["traceparent"].to_str().unwrap();
    assert!(
        written.starts_with("00-") && written.ends_with("-00"),
        "{written}"
    );
    // The next proxy reads the decision and leaves the request alone.
    let before = req.headers().clone();
    assert!(t.start(Kind::Server, &mut req).is_none());
    assert_eq!(req.headers(), &before);
}
