//! The daemon restarts, the pods do not (issue 19, item 5): after a crash
//! (SIGKILL, then `osm local up`) and after `osm local restart`, every
//! pod has the same container processes, address and restart counts, and
//! traffic flows through the restart. A container that ends while no
//! daemon runs is seen to have ended, with its exit code, and restarted.

use std::{collections::BTreeMap, path::Path, time::Duration};

use osm_tests::local::{LocalMesh, ready, wait_for};
use serde_json::Value;

const NAMESPACES: [&str; 4] = ["bookbuyer", "bookstore", "bookthief", "bookwarehouse"];

/// Every pod's address, restart counts and readiness.
fn pods(mesh: &LocalMesh) -> BTreeMap<String, (String, Vec<u64>, bool)> {
    let mut out = BTreeMap::new();
    for ns in NAMESPACES {
        for pod in mesh.pods(ns) {
            let restarts = ["/status/initContainerStatuses", "/status/containerStatuses"]
                .iter()
                .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
                .flatten()
                .map(|c| c["restartCount"].as_u64().unwrap_or(0))
                .collect();
            out.insert(
                format!("{ns}/{}", pod["metadata"]["name"].as_str().unwrap_or("")),
                (
                    pod["status"]["podIP"].as_str().unwrap_or("").to_string(),
                    restarts,
                    ready(&pod),
                ),
            );
        }
    }
    out
}

/// Each container's pid file (pid and kernel start time), by path.
fn processes(state: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![state.join("pods")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pid") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.insert(path.display().to_string(), text.trim().to_string());
            }
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
    })
}

fn kill(pid: i32, signal: &str) {
    let out = std::process::Command::new("kill")
        .args([signal, "--", &pid.to_string()])
        .output()
        .expect("kill runs");
    assert!(out.status.success(), "kill {signal} {pid}: {out:?}");
}

/// Kills the daemon with SIGKILL, as a crash would.
fn crash_daemon(mesh: &LocalMesh) {
    let file = mesh.state_dir().join("run/daemon.pid");
    let pid: i32 = std::fs::read_to_string(&file)
        .expect("the daemon's pid file")
        .trim()
        .parse()
        .expect("a pid");
    kill(pid, "-KILL");
    wait_for("the daemon to be gone", Duration::from_secs(10), || {
        (!alive(pid)).then_some(())
    });
}

fn all_ready(mesh: &LocalMesh) -> bool {
    pods(mesh).values().all(|(_, _, ready)| *ready)
}

/// `bought` counts bookbuyer's successful purchases; it must grow while
/// the daemon is away and after each restart.
pub fn daemon_restarts_keep_pods(mesh: &LocalMesh, bought: impl Fn() -> u64) {
    let patience = Duration::from_secs(30);
    let grows = |what: &str| {
        let from = bought();
        wait_for(what, patience, || (bought() >= from + 2).then_some(()));
    };
    let state = mesh.state_dir().to_path_buf();
    wait_for("every demo pod ready", patience, || {
        all_ready(mesh).then_some(())
    });
    let before = pods(mesh);
    let started = processes(&state);
    assert!(started.len() >= 8, "{started:?}");

    // A crash: the pods run on without a daemon, and the next `up` keeps them.
    crash_daemon(mesh);
    grows("bookbuyer to buy while no daemon runs");
    let out = mesh.ok(&["local", "up"]);
    assert!(out.contains("starting the local mesh"), "{out}");
    grows("bookbuyer to buy after the daemon came back");
    assert_eq!(
        processes(&state),
        started,
        "container processes were replaced"
    );
    wait_for("every pod ready after the restart", patience, || {
        all_ready(mesh).then_some(())
    });
    assert_eq!(
        pods(mesh),
        before,
        "addresses, restarts or readiness changed"
    );

    // An upgrade: `osm local restart` hands over to a new daemon.
    let out = mesh.ok(&["local", "restart"]);
    assert!(
        out.contains("its pods keep running") && out.contains("is up"),
        "{out}"
    );
    grows("bookbuyer to buy after osm local restart");
    assert_eq!(processes(&state), started, "restart replaced processes");
    assert_eq!(pods(mesh), before);

    // A container that ends while no daemon runs: the next daemon reads
    // its exit code from its shim and restarts it.
    let thief = before
        .keys()
        .find(|k| k.starts_with("bookthief/"))
        .expect("a bookthief pod")
        .clone();
    let app_restarts = |pod: &Value| -> Option<(u64, Value)> {
        let app = pod["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "bookthief")?
            .clone();
        Some((app["restartCount"].as_u64()?, app))
    };
    let (restarts, _) = app_restarts(&mesh.pods("bookthief")[0]).expect("bookthief's status");
    let pid_file = state.join("pods").join(&thief).join("bookthief.pid");
    let shim: i32 = std::fs::read_to_string(&pid_file)
        .expect("bookthief's pid file")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid");
    crash_daemon(mesh);
    // SIGTERM to the container's process group: the app ends (143), the
    // shim stays to record it.
    kill(-shim, "-TERM");
    wait_for("bookthief's shim to end", patience, || {
        (!alive(shim)).then_some(())
    });
    mesh.ok(&["local", "up"]);
    let pod = wait_for("bookthief restarted once", patience, || {
        let pod = mesh.pods("bookthief").into_iter().next()?;
        let (count, app) = app_restarts(&pod)?;
        (count == restarts + 1 && ready(&pod)).then_some(app)
    });
    assert_eq!(
        pod["lastState"]["terminated"]["exitCode"], 143,
        "the exit code the shim recorded: {pod}"
    );
    grows("bookbuyer to buy after the last restart");
}
