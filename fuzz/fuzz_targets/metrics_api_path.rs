//! Request paths of the TrafficMetrics aggregated API, as any caller past
//! the front-proxy check may send them: no path panics, what parses is
//! answered with a TrafficMetrics object or list (or discovery), and a
//! refused path's message names the path or the kinds kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::traffic_metrics::api::{ApiRequest, answer, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    match parse(path) {
        Ok(request) => {
            let doc = answer(&request, &[], "t", "30s");
            let kind = doc["kind"].as_str().unwrap_or_default();
            match request {
                ApiRequest::Metrics { .. } => assert!(
                    kind == "TrafficMetrics" || kind == "TrafficMetricsList",
                    "{path}: {doc}"
                ),
                _ => assert!(kind.starts_with("API"), "{path}: {doc}"),
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
