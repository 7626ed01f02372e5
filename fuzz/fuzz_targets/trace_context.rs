//! Trace context from request headers (traceparent, tracestate, b3,
//! x-b3-*): no input panics, and whatever the proxy writes back reads as
//! the span it wrote, with a decision consistent with what came in.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "headers.rs"]
mod headers;
use osm_proxy::telemetry::trace::{
    Plan,
    context::{Formats, Incoming, Written, extract, inject},
    plan,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut headers = headers::from_lines(text);
    let incoming = extract(&headers);
    let roll = (data.len() % 100) as f64 / 100.0;
    let Plan::Span {
        parent,
        sampled,
        formats,
    } = plan(incoming, 0.5, roll)
    else {
        // Only an explicit "do not sample" is passed through.
        assert!(matches!(
            incoming,
            Incoming::Parent {
                sampled: Some(false),
                ..
            } | Incoming::Decision { sampled: false, .. }
        ));
        return;
    };
    let written = Written {
        trace_id: parent.map(|(t, _)| t).unwrap_or(0x1234),
        span_id: 0x5678,
        parent_id: parent.map(|(_, s)| s),
        sampled,
    };
    inject(&mut headers, &written, formats);
    assert_ne!(
        formats,
        Formats::default(),
        "a span is always written somewhere"
    );
    match extract(&headers) {
        Incoming::Parent {
            trace_id,
            span_id,
            sampled: read,
            ..
        } => {
            let width = if formats.b3_short_trace_id && !formats.w3c {
                u64::MAX as u128
            } else {
                u128::MAX
            };
            assert_eq!(trace_id, written.trace_id & width);
            assert_eq!(span_id, written.span_id);
            assert_eq!(read, Some(sampled));
        }
        other => panic!("wrote {written:?} in {formats:?}, read {other:?}"),
    }
});
