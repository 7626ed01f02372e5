use serde_json::json;

use super::*;

#[test]
fn a_pod_is_available_a_moment_after_its_readiness_is_written() {
    let key = Key::new("Pod", "ns", "web-1");
    let t0 = Instant::now();
    let mut a = Availability::default();
    a.controller(Some(t0), true, None, t0 - SETTLED_AFTER);
    assert!(!a.available(&key, t0, true));
    a.written(&key, true, t0);
    assert!(!a.available(&key, t0 + Duration::from_millis(500), true));
    // Written ready again: the first time counts.
    a.written(&key, true, t0 + Duration::from_millis(600));
    assert!(a.available(&key, t0 + AVAILABLE_AFTER, true));
    a.written(&key, false, t0 + Duration::from_secs(2));
    assert!(!a.available(&key, t0 + Duration::from_secs(3), true));
    a.written(&key, true, t0 + Duration::from_secs(3));
    a.forget(&key);
    assert!(!a.available(&key, t0 + Duration::from_secs(9), true));
}

#[test]
fn the_controller_is_up_since_this_process_was_first_found_ready() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    // (process started, ready, previously up since, now, up since)
    let table = [
        (None, false, None, t0, None),
        (None, true, Some(t0), t0 + s(1), None),
        (Some(t0), false, None, t0 + s(1), None),
        (Some(t0), true, None, t0 + s(1), Some(t0 + s(1))),
        (Some(t0), true, Some(t0 + s(1)), t0 + s(5), Some(t0 + s(1))),
        // Killed and started again between two looks: counts afresh.
        (
            Some(t0 + s(3)),
            true,
            Some(t0 + s(1)),
            t0 + s(4),
            Some(t0 + s(4)),
        ),
        (Some(t0 + s(3)), false, Some(t0 + s(1)), t0 + s(4), None),
    ];
    for (i, (started, ready, previous, now, expected)) in table.into_iter().enumerate() {
        assert_eq!(
            controller_up_since(started, ready, previous, now),
            expected,
            "row {i}"
        );
    }
}

#[test]
fn no_pod_is_available_while_the_controller_is_away_or_just_back() {
    let key = Key::new("Pod", "ns", "web-2");
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut a = Availability::default();
    a.written(&key, true, t0);
    // Never seen up.
    assert!(!a.available(&key, t0 + s(5), true));
    a.controller(Some(t0), true, None, t0 + s(5));
    assert!(!a.available(&key, t0 + s(6), true), "back 1 s ago");
    assert!(a.available(&key, t0 + s(7), true));
    // Killed: nothing is available until it is back and settled.
    a.controller(None, false, None, t0 + s(8));
    assert!(!a.available(&key, t0 + s(8), true));
    a.controller(Some(t0 + s(9)), true, None, t0 + s(9));
    assert!(!a.available(&key, t0 + s(10), true));
    assert!(a.available(&key, t0 + s(11), true));
}

#[test]
fn a_pod_waits_for_every_proxy_to_catch_up_but_not_forever() {
    let key = Key::new("Pod", "ns", "web-3");
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut a = Availability::default();
    let meshed: BTreeSet<String> = ["ns/client".to_string(), "ns/web-3".to_string()].into();
    a.written(&key, true, t0);
    // The client's proxy has not reconnected to the new controller.
    a.controller(Some(t0), true, Some(["ns/web-3".to_string()].into()), t0);
    let caught_up = a.proxies_caught_up(&meshed);
    assert!(!caught_up);
    assert!(!a.available(&key, t0 + s(3), caught_up));
    assert!(
        a.available(&key, t0 + CATCH_UP_LIMIT, caught_up),
        "a proxy that never catches up holds a pod back only so long"
    );
    // Back, and it acknowledged its config.
    a.controller(Some(t0), true, Some(meshed.clone()), t0 + s(3));
    assert!(a.proxies_caught_up(&meshed));
    assert!(a.available(&key, t0 + s(3), a.proxies_caught_up(&meshed)));
    // What proxies were caught up with is forgotten with the controller.
    a.controller(None, false, Some(meshed.clone()), t0 + s(4));
    assert!(!a.proxies_caught_up(&meshed));
    assert!(!a.proxies_caught_up(&BTreeSet::new()), "not known at all");
}

#[test]
fn meshed_pods_are_those_with_a_ready_proxy_not_being_deleted() {
    let pod = |name: &str, proxy_ready: bool, deleting: bool, list: &str| {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "ns"},
            "status": {list: [{"name": "osm-proxy", "ready": proxy_ready}, {"name": "app", "ready": true}]},
        });
        if deleting {
            value["metadata"]["deletionTimestamp"] = json!("2026-12-03T00:00:00Z");
        }
        Stored {
            key: Key::new("Pod", "ns", name),
            value,
        }
    };
    let objects = vec![
        pod("native", true, false, "initContainerStatuses"),
        pod("classic", true, false, "containerStatuses"),
        pod("starting", false, false, "initContainerStatuses"),
        pod("leaving", true, true, "initContainerStatuses"),
        Stored {
            key: Key::new("Pod", "ns", "plain"),
            value: json!({"status": {"containerStatuses": [{"name": "app", "ready": true}]}}),
        },
    ];
    assert_eq!(
        meshed_pods(&objects),
        ["ns/classic".to_string(), "ns/native".to_string()].into()
    );
}

#[test]
fn synced_pods_are_read_from_the_controllers_debug_list() {
    let body = json!([
        {"namespace": "ns", "pod": "a", "sentVersion": "7", "ackedVersion": "7"},
        {"namespace": "ns", "pod": "b", "sentVersion": "8", "ackedVersion": "7"},
        {"namespace": "ns", "pod": "c", "sentVersion": "", "ackedVersion": ""},
    ]);
    assert_eq!(
        synced_pods(body.to_string().as_bytes()),
        Some(["ns/a".to_string()].into())
    );
    assert_eq!(synced_pods(b"not found\n"), None);
}
