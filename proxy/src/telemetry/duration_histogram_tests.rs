use super::*;

#[test]
fn a_sample_is_counted_in_the_first_bucket_whose_bound_holds_it() {
    let inf = BUCKETS_MS.len();
    // (sample ms, bucket index)
    let table = [
        (-1.0, 0),
        (0.0, 0),
        (0.5, 0),
        (0.51, 1),
        (1.0, 1),
        (3.0, 3),
        (10000.0, inf - 1),
        (10000.5, inf),
        (f64::INFINITY, inf),
        (f64::NAN, inf),
    ];
    for (sample, bucket) in table {
        assert_eq!(bucket_of(sample), bucket, "sample {sample}");
    }
}

fn labels(pod: &str) -> Vec<Label> {
    vec![
        Label::new("destination_pod", pod.to_string()),
        Label::new("response_code", "200"),
    ]
}

/// The text the Prometheus exporter wrote for this family before (its
/// format, line for line), so dashboards and tests read it the same.
#[test]
fn renders_as_the_exporter_did() {
    let family = DurationHistograms::new(
        "osm_request_duration_ms",
        "Time to headers",
        Duration::from_secs(60),
    );
    let counts = family.register(labels("p\"1"));
    counts.record(1.5);
    counts.record(700.25);
    family.register(labels("p\"1")).record(0.25);
    let mut text = String::new();
    family.render(&mut text);
    let l = r#"destination_pod="p\"1",response_code="200""#;
    let mut want = String::from(
        "# HELP osm_request_duration_ms Time to headers\n# TYPE osm_request_duration_ms histogram\n",
    );
    let cumulative = [1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3];
    let bounds = [
        "0.5", "1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "2000", "5000",
        "10000", "+Inf",
    ];
    for (le, n) in bounds.iter().zip(cumulative) {
        want.push_str(&format!(
            "osm_request_duration_ms_bucket{{{l},le=\"{le}\"}} {n}\n"
        ));
    }
    want.push_str(&format!("osm_request_duration_ms_sum{{{l}}} 702\n"));
    want.push_str(&format!("osm_request_duration_ms_count{{{l}}} 3\n\n"));
    assert_eq!(text, want);

    let empty = DurationHistograms::new("d", "h", Duration::from_secs(60));
    empty.register(vec![]).record(2.0);
    let mut text = String::new();
    empty.render(&mut text);
    assert!(text.contains("d_bucket{le=\"2\"} 1\n"), "{text}");
    assert!(text.contains("\nd_sum 2\nd_count 1\n"), "{text}");
}

#[test]
fn a_series_unchanged_for_the_idle_time_is_dropped_and_starts_anew() {
    let idle = Duration::from_secs(60);
    let family = DurationHistograms::new("d", "h", idle);
    let quiet = family.register(labels("quiet"));
    let busy = family.register(labels("busy"));
    quiet.record(1.0);
    busy.record(1.0);
    let start = Instant::now();
    family.expire(start);
    busy.record(1.0);
    family.expire(start + idle / 2);
    family.expire(start + idle + Duration::from_secs(1));
    let mut text = String::new();
    family.render(&mut text);
    assert!(!text.contains("quiet"), "{text}");
    assert!(
        text.contains("d_count{destination_pod=\"busy\",response_code=\"200\"} 2"),
        "{text}"
    );

    // The old handle no longer reaches a scrape; a new one counts from zero.
    quiet.record(1.0);
    family.register(labels("quiet")).record(1.0);
    let mut text = String::new();
    family.render(&mut text);
    assert!(
        text.contains("d_count{destination_pod=\"quiet\",response_code=\"200\"} 1"),
        "{text}"
    );

    // Nothing left: nothing rendered.
    family.expire(start + idle * 10);
    let mut text = String::new();
    family.render(&mut text);
    assert_eq!(text, "");
}
