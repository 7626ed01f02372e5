use super::*;

fn meshed_pod(status: &PodStatus) -> Value {
    json!({
        "spec": {
            "initContainers": [{"name": "osm-init"}, {"name": "osm-proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
        },
        "status": status.to_json("10.213.0.1".parse().unwrap()),
    })
}

fn c(name: &str, state: State, ready: bool, sidecar: bool) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        started: ready,
        state,
        ready,
        sidecar,
        ..Default::default()
    }
}

#[test]
fn the_limits_column_says_whether_limits_are_enforced() {
    let pod = |limits: Value, status: Value| {
        json!({"spec": {"containers": [{"name": "app", "resources": {"limits": limits}}]},
               "status": {"containerStatuses": status}})
    };
    let running = |resources: Value| {
        let mut s = json!({"name": "app", "state": {"running": {}}});
        if !resources.is_null() {
            s["resources"] = resources;
        }
        json!([s])
    };
    let cases = [
        (pod(json!({}), running(Value::Null)), "<none>"),
        (pod(json!({"memory": "64Mi"}), json!([])), "<pending>"),
        (
            pod(
                json!({"memory": "64Mi"}),
                json!([{"name": "app", "state": {"waiting": {}}}]),
            ),
            "<pending>",
        ),
        (
            pod(
                json!({"memory": "64Mi"}),
                running(json!({"limits": {"memory": "64Mi"}})),
            ),
            "enforced",
        ),
        (
            pod(json!({"memory": "64Mi"}), running(Value::Null)),
            "not enforced",
        ),
    ];
    for (p, want) in cases {
        assert_eq!(limits_column(&p), want, "{p}");
    }
}

#[test]
fn a_written_status_reads_back_as_it_was_but_for_events() {
    let running = State::Running { since: "t1".into() };
    let mut written = PodStatus {
        phase: "Running".into(),
        message: Some("why".into()),
        pod_ip: Some("10.213.0.9".parse().unwrap()),
        started_at: "t0".into(),
        init: vec![
            c(
                "osm-init",
                State::Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                },
                false,
                false,
            ),
            c("osm-proxy", running.clone(), true, true),
        ],
        containers: vec![c("app", running, true, false)],
        ..Default::default()
    };
    written.containers[0].restarts = 2;
    written.containers[0].last_state = Some(State::Terminated {
        exit_code: 137,
        reason: "Error".into(),
    });
    let base = PodStatus {
        init: vec![
            c("osm-init", State::default(), false, false),
            c("osm-proxy", State::default(), false, true),
        ],
        containers: vec![c("app", State::default(), false, false)],
        ..Default::default()
    };
    let json = written.to_json("10.213.0.1".parse().unwrap());
    assert_eq!(base.clone().restored(&json), written);
    // A container the stored status does not name stays as the spec
    // starts it; a name the spec lacks is ignored.
    let mut partial = json.clone();
    partial["containerStatuses"][0]["name"] = json!("gone");
    assert_eq!(base.clone().restored(&partial).containers, base.containers);
}

#[test]
fn a_meshed_pod_reads_like_kubectl_through_its_life() {
    let done = State::Terminated {
        exit_code: 0,
        reason: "Completed".into(),
    };
    let running = State::Running { since: "t".into() };
    let mut s = PodStatus {
        phase: "Pending".into(),
        init: vec![
            c("osm-init", State::default(), false, false),
            c("osm-proxy", State::default(), false, true),
        ],
        containers: vec![c("app", State::default(), false, false)],
        ..Default::default()
    };
    assert_eq!(
        ready_and_status(&meshed_pod(&s)),
        ("0/2".into(), "Init:0/2".into(), 0)
    );
    s.init[0].state = done.clone();
    s.init[1] = c("osm-proxy", running.clone(), true, true);
    s.containers[0] = c(
        "app",
        State::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "exit 1".into(),
        },
        false,
        false,
    );
    s.containers[0].restarts = 3;
    assert_eq!(
        ready_and_status(&meshed_pod(&s)),
        ("1/2".into(), "CrashLoopBackOff".into(), 3)
    );
    s.phase = "Running".into();
    s.containers[0] = c("app", running, true, false);
    assert!(s.ready());
    assert_eq!(
        ready_and_status(&meshed_pod(&s)),
        ("2/2".into(), "Running".into(), 0)
    );
}
