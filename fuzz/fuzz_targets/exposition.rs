//! A proxy's metrics text as the controller and `osm local get
//! trafficmetrics` read it: no input panics, counts stay finite and
//! non-negative, and the aggregation over whatever was read never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::traffic_metrics::{Kind, from_exposition, traffic_metrics};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let series = from_exposition(text);
    for s in &series {
        assert!(s.count.is_finite() && s.count >= 0.0, "{s:?}");
    }
    for kind in [Kind::Pod, Kind::Deployment, Kind::Namespace] {
        for edges in [false, true] {
            let list = traffic_metrics(&series, kind, "bookstore", None, edges, "t", "30s");
            assert_eq!(list["kind"], "TrafficMetricsList");
        }
    }
});
