//! A proxy's metrics text as the controller and `osm local get
//! trafficmetrics` read it: no input panics, counts stay finite and
//! non-negative (requests and refused plaintext requests alike), a window
//! between two readings never goes negative, and the aggregation over
//! whatever was read never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::traffic_metrics::{Kind, read_exposition, scrape::delta, traffic_metrics};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input twice: as a first reading, and its second half as a later one.
    let (series, refused) = read_exposition(text);
    for s in &series {
        assert!(s.count.is_finite() && s.count >= 0.0, "{s:?}");
    }
    for r in &refused {
        assert!(r.count.is_finite() && r.count >= 0.0, "{r:?}");
    }
    let middle = (text.len() / 2..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let later = read_exposition(&text[middle..]).0;
    for d in delta(&series, &later) {
        assert!(d.count.is_finite() && d.count > 0.0, "{d:?}");
        assert!(d.buckets.iter().all(|(_, n)| *n >= 0.0), "{d:?}");
    }
    for kind in [Kind::Pod, Kind::Deployment, Kind::Namespace] {
        for edges in [false, true] {
            let list = traffic_metrics(&series, kind, "bookstore", None, edges, "t", "30s");
            assert_eq!(list["kind"], "TrafficMetricsList");
        }
    }
});
