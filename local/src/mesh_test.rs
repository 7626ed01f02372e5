//! `osm local test`: mesh policies tested in one command, as a CI step
//! without a cluster. A fresh local mesh of its own comes up, the
//! manifests are applied, every pod gets ready and every proxy runs what
//! the controller sent it, then each expected connection is tried from a
//! pod of its workload; the table is printed and the mesh torn down,
//! whatever happened.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::Value;

use crate::{
    expectations::{Expectation, Outcome, meets, outcome_of, parse, report, split_from},
    lifecycle,
    manifests::{check, read_inputs},
    pods::exec_command,
    runtime::{deployments::owned_by, status::ready_and_status},
    state::{Instance, StateDir},
    store::Stored,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub manifests: Vec<PathBuf>,
    pub expectations: PathBuf,
    pub instance: Instance,
    /// For the pods to get ready and the proxies in sync.
    pub ready_timeout: Duration,
    /// How long a connection is retried until it meets its expectation
    /// (policy changes take effect within seconds).
    pub settle: Duration,
    /// Leave the mesh up (its state directory is printed).
    pub keep: bool,
}

/// Runs the plan; true when every expectation was met.
pub async fn run(plan: &Plan) -> anyhow::Result<bool> {
    // Everything is read and checked before anything starts.
    let origin = plan.expectations.display().to_string();
    let text = std::fs::read_to_string(&plan.expectations)
        .with_context(|| format!("cannot read {origin}"))?;
    let rows = parse(&origin, &text).map_err(anyhow::Error::msg)?;
    let outcome = check(read_inputs(&plan.manifests)?, None);
    if !outcome.errors.is_empty() {
        anyhow::bail!("invalid manifests:\n  {}", outcome.errors.join("\n  "));
    }
    let root = std::env::temp_dir().join(format!(
        "osm-local-test.{}.{}",
        plan.instance.name,
        std::process::id()
    ));
    let state = StateDir::new(&root);
    let result = async {
        lifecycle::up(&state, Some(plan.instance.clone()), Vec::new()).await?;
        let api = crate::api_server(&state)?;
        let mut failed = Vec::new();
        for line in api.apply(&outcome.objects).await {
            match line {
                Ok(l) => println!("{l}"),
                Err(e) => failed.push(e),
            }
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "the manifests could not be applied:\n  {}",
                failed.join("\n  ")
            );
        }
        wait_ready(&state, plan.ready_timeout).await?;
        wait_in_sync(&state, &plan.instance, plan.ready_timeout).await?;
        let mut results = Vec::new();
        for row in &rows {
            let got = attempt(&state, &plan.instance, row, plan.settle).await?;
            results.push((row.clone(), got));
        }
        let (table, failures) = report(&results);
        print!("{table}");
        Ok(failures == 0)
    }
    .await;
    if plan.keep {
        println!(
            "the mesh is left up: OSM_LOCAL_STATE_DIR={} osm local ...",
            root.display()
        );
    } else if let Err(e) = lifecycle::down(&state).await {
        eprintln!("warning: tearing the test mesh down: {e:#}");
    }
    result
}

/// Every pod ready, and every Deployment with its replicas.
async fn wait_ready(state: &StateDir, timeout: Duration) -> anyhow::Result<()> {
    let store = crate::store::Store::new(state.api(), state.api_lock());
    let began = Instant::now();
    loop {
        let all = store.list()?;
        let unready = unready(&all);
        if unready.is_empty() {
            return Ok(());
        }
        if began.elapsed() > timeout {
            anyhow::bail!(
                "not ready after {}s: {} (see `osm local describe pod` with --keep)",
                timeout.as_secs(),
                unready.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What is not ready yet, as `namespace/name (STATUS)` (pure).
pub fn unready(all: &[Stored]) -> Vec<String> {
    let is_ready = |pod: &Value| {
        let (ready, _, _) = ready_and_status(pod);
        ready.split_once('/').is_some_and(|(a, b)| a == b)
    };
    let mut out = Vec::new();
    // A pod that finished is done, not unready; so is a Job's failed pod
    // (the Job retries it with another).
    let finished = |pod: &Value| match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => true,
        Some("Failed") => crate::runtime::jobs::job_owner(pod).is_some(),
        _ => false,
    };
    for s in all.iter().filter(|s| s.key.kind == "Pod") {
        if !is_ready(&s.value) && !finished(&s.value) {
            let (_, status, _) = ready_and_status(&s.value);
            out.push(format!("pod {}/{} ({status})", s.key.namespace, s.key.name));
        }
    }
    for d in all.iter().filter(|s| s.key.kind == "Deployment") {
        let want = d
            .value
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let ready = all
            .iter()
            .filter(|p| p.key.kind == "Pod" && p.key.namespace == d.key.namespace)
            .filter(|p| owned_by(&p.value, &d.key.name) && is_ready(&p.value))
            .count() as u64;
        if ready < want {
            out.push(format!(
                "deployment {}/{} ({ready}/{want})",
                d.key.namespace, d.key.name
            ));
        }
    }
    out
}

/// Every meshed pod's proxy connected, and every proxy running what it
/// was sent (the controller's own count, twice in a row).
async fn wait_in_sync(
    state: &StateDir,
    instance: &Instance,
    timeout: Duration,
) -> anyhow::Result<()> {
    let store = crate::store::Store::new(state.api(), state.api_lock());
    let meshed = store
        .list()?
        .iter()
        .filter(|s| s.key.kind == "Pod")
        .filter(|s| {
            s.value
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["name"] == "osm-proxy"))
        })
        .count() as u64;
    let began = Instant::now();
    let mut in_a_row = 0;
    loop {
        let text = crate::http::get(
            instance.controller_admin(),
            "/metrics",
            Duration::from_secs(2),
        )
        .await
        .map(|a| String::from_utf8_lossy(&a.body).into_owned())
        .unwrap_or_default();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        let synced = value("osm_controller_connected_proxies ").is_some_and(|n| n as u64 >= meshed)
            && value("osm_controller_proxies_out_of_sync ") == Some(0.0);
        in_a_row = if synced { in_a_row + 1 } else { 0 };
        if in_a_row >= 2 {
            return Ok(());
        }
        if began.elapsed() > timeout {
            anyhow::bail!(
                "the proxies were not in sync with the controller after {}s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Tries one connection until it meets its expectation or `settle` has
/// passed; what it got last.
async fn attempt(
    state: &StateDir,
    instance: &Instance,
    row: &Expectation,
    settle: Duration,
) -> anyhow::Result<Outcome> {
    let (namespace, target) = split_from(&row.from).context("checked when read")?;
    let command = ["httpget", "-X", row.method.as_str(), row.to.as_str()].map(String::from);
    let began = Instant::now();
    loop {
        let output = exec_command(state, instance, namespace, &target, None, &command)?
            .output()
            .context("cannot run httpget in the pod")?;
        let got = outcome_of(
            crate::shim::exit_code(output.status),
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
        );
        if meets(row.expect, &got) || began.elapsed() >= settle {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Key;

    fn stored(kind: &str, name: &str, value: Value) -> Stored {
        Stored {
            key: Key::new(kind, "shop", name),
            value,
        }
    }

    #[test]
    fn unready_names_pods_and_deployments_short_of_their_replicas() {
        let pod = |name: &str, ready: bool| {
            stored(
                "Pod",
                name,
                json!({
                    "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc"}]},
                    "spec": {"containers": [{"name": "app"}]},
                    "status": {"phase": "Running", "containerStatuses": [
                        {"name": "app", "ready": ready, "state": {"running": {}}}]},
                }),
            )
        };
        let deployment = stored(
            "Deployment",
            "web",
            json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 2}}),
        );
        let all = [deployment.clone(), pod("web-1", true), pod("web-2", false)];
        let got = unready(&all);
        assert!(
            got.contains(&"pod shop/web-2 (Running)".to_string()),
            "{got:?}"
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].starts_with("deployment shop/web ("), "{got:?}");
        assert!(unready(&[pod("web-1", true)]).is_empty());
        let job_pod = |phase: &str, owner: &str| {
            stored(
                "Pod",
                "migrate-x",
                json!({
                    "metadata": {"name": "migrate-x", "namespace": "shop",
                                 "ownerReferences": [{"kind": owner, "name": "migrate", "controller": true}]},
                    "spec": {"containers": [{"name": "app"}]},
                    "status": {"phase": phase, "containerStatuses": [
                        {"name": "app", "ready": false, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
                }),
            )
        };
        assert!(unready(&[job_pod("Succeeded", "Job")]).is_empty());
        assert!(
            unready(&[job_pod("Failed", "Job")]).is_empty(),
            "the Job retries it"
        );
        assert_eq!(unready(&[job_pod("Failed", "ReplicaSet")]).len(), 1);
    }
}
