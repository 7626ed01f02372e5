use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(*name, HeaderValue::from_str(value).unwrap());
    }
    h
}

const TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const SPAN: u64 = 0x00f067aa0ba902b7;
const W3C: Formats = Formats::NEW;

/// (name, request headers, what they say)
type Case = (&'static str, Vec<(&'static str, &'static str)>, Incoming);

fn parent(sampled: Option<bool>, formats: Formats) -> Incoming {
    Incoming::Parent {
        trace_id: TRACE,
        span_id: SPAN,
        sampled,
        formats,
    }
}

#[test]
fn extract_reads_each_format_and_refuses_malformed_ones() {
    let b3_multi = Formats {
        b3_multi: true,
        ..Formats::default()
    };
    let b3_single = Formats {
        b3_single: true,
        ..Formats::default()
    };
    let none = Formats::default();
    let cases: Vec<Case> = vec![
        ("nothing", vec![], Incoming::None { formats: none }),
        (
            "w3c sampled",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            parent(Some(true), W3C),
        ),
        (
            "w3c not sampled, other flags ignored",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
            )],
            parent(Some(false), W3C),
        ),
        (
            "a later version with more fields",
            vec![(
                "traceparent",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes",
            )],
            parent(Some(true), W3C),
        ),
        (
            "version 00 with more fields",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "version ff",
            vec![(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "upper case hex",
            vec![(
                "traceparent",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "all-zero trace id",
            vec![(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "all-zero span id",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "short span id",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01",
            )],
            Incoming::None { formats: W3C },
        ),
        (
            "b3 multi, 128-bit, sampled",
            vec![
                ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-sampled", "1"),
            ],
            parent(Some(true), b3_multi),
        ),
        (
            "b3 multi, 64-bit, deferred",
            vec![
                ("x-b3-traceid", "a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
            ],
            Incoming::Parent {
                trace_id: 0xa3ce929d0e0e4736,
                span_id: SPAN,
                sampled: None,
                formats: Formats {
                    b3_short_trace_id: true,
                    ..b3_multi
                },
            },
        ),
        (
            "b3 multi debug flag",
            vec![
                ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-flags", "1"),
                ("x-b3-sampled", "0"),
            ],
            parent(Some(true), b3_multi),
        ),
        (
            "b3 multi sampled only",
            vec![("x-b3-sampled", "0")],
            Incoming::Decision {
                sampled: false,
                formats: b3_multi,
            },
        ),
        (
            "b3 multi with a bad span id",
            vec![
                ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("x-b3-spanid", "xyz"),
                ("x-b3-sampled", "1"),
            ],
            Incoming::None { formats: b3_multi },
        ),
        (
            "b3 single with parent",
            vec![(
                "b3",
                "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3ac9a4f6e3b90",
            )],
            parent(Some(true), b3_single),
        ),
        (
            "b3 single deferred",
            vec![("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")],
            parent(None, b3_single),
        ),
        (
            "b3 single deny",
            vec![("b3", "0")],
            Incoming::Decision {
                sampled: false,
                formats: b3_single,
            },
        ),
        (
            "b3 single with a bad sampling state",
            vec![("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-x")],
            Incoming::None { formats: b3_single },
        ),
        (
            "w3c wins over b3, and both are kept",
            vec![
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                ),
                ("b3", "1111111111111111-2222222222222222-1"),
            ],
            parent(
                Some(false),
                Formats {
                    w3c: true,
                    b3_single: true,
                    ..Formats::default()
                },
            ),
        ),
        (
            "a malformed traceparent falls back to b3",
            vec![
                ("traceparent", "garbage"),
                ("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
            ],
            parent(
                Some(true),
                Formats {
                    w3c: true,
                    b3_single: true,
                    ..Formats::default()
                },
            ),
        ),
    ];
    for (name, pairs, want) in cases {
        assert_eq!(extract(&headers(&pairs)), want, "{name}");
    }
}

#[test]
fn inject_writes_every_format_the_request_carried() {
    let span = Written {
        trace_id: TRACE,
        span_id: 0x1111111111111111,
        parent_id: Some(SPAN),
        sampled: true,
    };
    let mut h = headers(&[
        ("tracestate", "vendor=x"),
        ("x-b3-flags", "1"),
        ("x-b3-traceid", "a3ce929d0e0e4736"),
    ]);
    inject(
        &mut h,
        &span,
        Formats {
            w3c: true,
            b3_single: true,
            b3_multi: true,
            b3_short_trace_id: true,
        },
    );
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        get("traceparent").as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")
    );
    assert_eq!(
        get("b3").as_deref(),
        Some("a3ce929d0e0e4736-1111111111111111-1-00f067aa0ba902b7")
    );
    assert_eq!(get("x-b3-traceid").as_deref(), Some("a3ce929d0e0e4736"));
    assert_eq!(get("x-b3-spanid").as_deref(), Some("1111111111111111"));
    assert_eq!(
        get("x-b3-parentspanid").as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert_eq!(get("x-b3-sampled").as_deref(), Some("1"));
    assert_eq!(get("x-b3-flags"), None);
    // A continued trace keeps the vendors' state.
    assert_eq!(get("tracestate").as_deref(), Some("vendor=x"));

    // What is written reads back as the same span.
    assert_eq!(
        extract(&h),
        Incoming::Parent {
            trace_id: TRACE,
            span_id: 0x1111111111111111,
            sampled: Some(true),
            formats: Formats {
                w3c: true,
                b3_single: true,
                b3_multi: true,
                b3_short_trace_id: false,
            },
        }
    );
}

#[test]
fn a_new_trace_is_w3c_only_and_drops_an_orphan_tracestate() {
    let mut h = headers(&[("traceparent", "broken"), ("tracestate", "vendor=x")]);
    let span = Written {
        trace_id: 7,
        span_id: 9,
        parent_id: None,
        sampled: false,
    };
    inject(&mut h, &span, Formats::NEW);
    assert_eq!(
        h.get("traceparent").unwrap(),
        "00-00000000000000000000000000000007-0000000000000009-00"
    );
    assert!(h.get("tracestate").is_none());
    assert!(h.get("b3").is_none() && h.get("x-b3-traceid").is_none());
}
