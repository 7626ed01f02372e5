//! What the Job controller does, as a plan (pure): a Job runs pods of its
//! template until `completions` of them succeeded (default 1), at most
//! `parallelism` at a time (default 1), and gives up once more than
//! `backoffLimit` of them failed (default 6). Its pods are named
//! `<job>-<5 characters>` and owned by it; a deleted Job's pods go. A pod
//! succeeds when its app containers exit 0 (its native sidecars, the
//! proxy, are then stopped: see `pod::run_pod`).

use serde_json::{Value, json};

use super::deployments::NewPod;
use crate::store::Key;

/// A pod as the plan sees it.
#[derive(Debug, Clone)]
pub struct JobPod {
    pub key: Key,
    /// The Job that owns it.
    pub job: String,
    pub phase: String,
}

impl JobPod {
    /// None for a pod no Job owns.
    pub fn of(key: Key, pod: &Value) -> Option<Self> {
        Some(Self {
            job: job_owner(pod)?,
            phase: pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending")
                .to_string(),
            key,
        })
    }
}

/// The Job that controls a pod.
pub fn job_owner(pod: &Value) -> Option<String> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "Job" && o["controller"] == true)?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

#[derive(Debug, Default)]
pub struct JobPlan {
    pub create: Vec<NewPod>,
    pub delete: Vec<Key>,
    /// Each Job's status as it should be stored.
    pub statuses: Vec<(Key, Value)>,
}

fn count(job: &Value, pointer: &str, default: u64) -> u64 {
    job.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or(default)
}

/// The pod a Job's template makes.
fn pod_for(job: &Value, key: &Key, name: &str) -> Value {
    let job_name = key.name.as_str();
    super::deployments::pod_from(
        job,
        name,
        &[
            ("job-name", job_name),
            ("batch.kubernetes.io/job-name", job_name),
        ],
        json!({"apiVersion": "batch/v1", "kind": "Job", "name": job_name}),
    )
}

/// The plan for every Job against the pods that exist.
pub fn plan(jobs: &[&Value], pods: &[JobPod], mut new_name: impl FnMut() -> String) -> JobPlan {
    let mut out = JobPlan::default();
    for job in jobs {
        let Some(key) = Key::of(job) else {
            continue;
        };
        let mine: Vec<&JobPod> = pods
            .iter()
            .filter(|p| p.key.namespace == key.namespace && p.job == key.name)
            .collect();
        let phase = |want: &str| mine.iter().filter(|p| p.phase == want).count() as u64;
        let (succeeded, failed) = (phase("Succeeded"), phase("Failed"));
        let active = mine.len() as u64 - succeeded - failed;
        let completions = count(job, "/spec/completions", 1);
        let parallelism = count(job, "/spec/parallelism", 1);
        let backoff_limit = count(job, "/spec/backoffLimit", 6);
        let (complete, gave_up) = (succeeded >= completions, failed > backoff_limit);
        if !complete && !gave_up {
            let wanted = parallelism.min(completions - succeeded);
            for _ in active..wanted {
                let name = format!("{}-{}", key.name, new_name());
                out.create.push(NewPod(pod_for(job, &key, &name)));
            }
        }
        let mut status = json!({"active": active, "succeeded": succeeded, "failed": failed});
        if complete {
            status["conditions"] = json!([{"type": "Complete", "status": "True"}]);
        } else if gave_up {
            status["conditions"] = json!([{
                "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }]);
        }
        out.statuses.push((key, status));
    }
    // Pods of a Job that is gone.
    for pod in pods {
        let owner = Key::new("Job", &pod.key.namespace, &pod.job);
        if !jobs.iter().any(|j| Key::of(j).as_ref() == Some(&owner)) {
            out.delete.push(pod.key.clone());
        }
    }
    out
}

/// kubectl's STATUS and COMPLETIONS columns of a stored Job (pure).
pub fn job_columns(job: &Value) -> (String, String) {
    let condition = job
        .pointer("/status/conditions/0/type")
        .and_then(Value::as_str);
    let status = match condition {
        Some("Complete") => "Complete",
        Some("Failed") => "Failed",
        _ => "Running",
    };
    (
        status.to_string(),
        format!(
            "{}/{}",
            count(job, "/status/succeeded", 0),
            count(job, "/spec/completions", 1)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(completions: u64, parallelism: u64) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "namespace": "shop", "uid": "j1"},
               "spec": {"completions": completions, "parallelism": parallelism, "backoffLimit": 1,
                        "template": {"metadata": {"labels": {"app": "migrate"}},
                                     "spec": {"restartPolicy": "Never", "containers": [{"name": "app"}]}}}})
    }

    fn pod(name: &str, job: &str, phase: &str) -> JobPod {
        JobPod {
            key: Key::new("Pod", "shop", name),
            job: job.into(),
            phase: phase.into(),
        }
    }

    #[test]
    fn jobs_run_pods_until_done_or_out_of_retries() {
        let names = || {
            let mut i = 0;
            move || {
                i += 1;
                format!("p{i}")
            }
        };
        // (job, pods, pods created, pods deleted, status, columns)
        type Case = (
            Value,
            Vec<JobPod>,
            usize,
            usize,
            Value,
            (&'static str, &'static str),
        );
        let cases: Vec<Case> = vec![
            (
                job(1, 1),
                vec![],
                1,
                0,
                json!({"active": 0, "succeeded": 0, "failed": 0}),
                ("Running", "0/1"),
            ),
            (
                job(1, 1),
                vec![pod("a", "migrate", "Running")],
                0,
                0,
                json!({"active": 1, "succeeded": 0, "failed": 0}),
                ("Running", "0/1"),
            ),
            (
                job(3, 2),
                vec![pod("a", "migrate", "Succeeded")],
                2,
                0,
                json!({"active": 0, "succeeded": 1, "failed": 0}),
                ("Running", "1/3"),
            ),
            (
                job(1, 1),
                vec![pod("a", "migrate", "Succeeded")],
                0,
                0,
                json!({"active": 0, "succeeded": 1, "failed": 0, "conditions": [{"type": "Complete", "status": "True"}]}),
                ("Complete", "1/1"),
            ),
            (
                job(1, 1),
                vec![pod("a", "migrate", "Failed")],
                1,
                0,
                json!({"active": 0, "succeeded": 0, "failed": 1}),
                ("Running", "0/1"),
            ),
            (
                job(1, 1),
                vec![pod("a", "migrate", "Failed"), pod("b", "migrate", "Failed")],
                0,
                0,
                json!({"active": 0, "succeeded": 0, "failed": 2, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
                ("Failed", "0/1"),
            ),
            (
                job(1, 1),
                vec![pod("x", "gone", "Running")],
                1,
                1,
                json!({"active": 0, "succeeded": 0, "failed": 0}),
                ("Running", "0/1"),
            ),
        ];
        for (i, (job, pods, created, deleted, status, columns)) in cases.into_iter().enumerate() {
            let plan = plan(&[&job], &pods, names());
            assert_eq!(plan.create.len(), created, "case {i}");
            assert_eq!(plan.delete.len(), deleted, "case {i}");
            assert_eq!(plan.statuses[0].1, status, "case {i}");
            let mut stored = job.clone();
            stored["status"] = status;
            let (s, c) = job_columns(&stored);
            assert_eq!((s.as_str(), c.as_str()), columns, "case {i}");
        }
        let made = &plan(&[&job(1, 1)], &[], names()).create[0].0;
        assert_eq!(made["metadata"]["name"], "migrate-p1");
        assert_eq!(made["metadata"]["labels"]["job-name"], "migrate");
        assert_eq!(made["metadata"]["labels"]["app"], "migrate");
        assert_eq!(made["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(made["spec"]["restartPolicy"], "Never");
        assert_eq!(job_owner(made).as_deref(), Some("migrate"));
    }
}
