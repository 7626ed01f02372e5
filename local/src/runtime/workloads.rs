//! The workload controllers' passes over the store (Deployment, Job,
//! StatefulSet): each plans from the objects (`deployments`, `jobs`,
//! `statefulsets`, pure) and this applies the plan.

use std::time::Instant;

use anyhow::Context as _;
use serde_json::Value;

use super::{
    Runtime, availability,
    deployments::{self, PodInfo},
    jobs, statefulsets,
};
use crate::store::{Key, Stored};

impl Runtime {
    /// The workload controllers' passes: Deployments, Jobs, StatefulSets.
    pub(super) async fn run_workloads(&mut self, objects: &[Stored]) -> anyhow::Result<()> {
        // Whether every running proxy has the controller's latest config,
        // once per pass (rollouts wait on it: `availability`).
        let caught_up = self
            .availability
            .proxies_caught_up(&availability::meshed_pods(objects));
        self.run_deployments(objects, caught_up).await;
        self.run_jobs(objects).await?;
        self.run_statefulsets(objects, caught_up).await
    }

    async fn run_deployments(&mut self, objects: &[Stored], caught_up: bool) {
        let deployments: Vec<&Value> = objects
            .iter()
            .filter(|s| s.key.kind == "Deployment")
            .map(|s| &s.value)
            .collect();
        let pods: Vec<PodInfo> = objects
            .iter()
            .filter(|s| s.key.kind == "Pod")
            .map(|s| {
                let ready = self
                    .availability
                    .available(&s.key, Instant::now(), caught_up);
                PodInfo::of(s.key.clone(), &s.value, ready)
            })
            .collect();
        let plan = deployments::plan(&deployments, &pods, deployments::random_suffix);
        self.change_pods(plan.delete, plan.create, "deployment")
            .await;
    }

    /// Deletes and creates what a workload controller's plan says (`by`
    /// names the controller in the log).
    async fn change_pods(&self, delete: Vec<Key>, create: Vec<deployments::NewPod>, by: &str) {
        for key in delete {
            tracing::info!(pod = %key, by, "deleting");
            if let Err(e) = self.api.delete_key(&key) {
                tracing::warn!(pod = %key, error = %format!("{e:#}"), "cannot delete");
            }
        }
        for new in create {
            let name = Key::of(&new.0).map(|k| k.to_string()).unwrap_or_default();
            if let Err(e) = self.api.create_pod(new.0).await {
                tracing::warn!(pod = %name, by, error = %format!("{e:#}"), "cannot create a pod");
            }
        }
    }

    async fn run_statefulsets(
        &mut self,
        objects: &[Stored],
        caught_up: bool,
    ) -> anyhow::Result<()> {
        let sets: Vec<&Value> = objects
            .iter()
            .filter(|s| s.key.kind == "StatefulSet")
            .map(|s| &s.value)
            .collect();
        let pods: Vec<statefulsets::SetPod> = objects
            .iter()
            .filter(|s| s.key.kind == "Pod")
            .filter_map(|s| {
                let ready = self
                    .availability
                    .available(&s.key, Instant::now(), caught_up);
                statefulsets::SetPod::of(s.key.clone(), &s.value, ready)
            })
            .collect();
        if sets.is_empty() && pods.is_empty() {
            return Ok(());
        }
        let plan = statefulsets::plan(&sets, &pods);
        self.change_pods(plan.delete, plan.create, "statefulset")
            .await;
        let statuses: Vec<(Key, Value)> = sets
            .iter()
            .filter_map(|set| Some((Key::of(set)?, statefulsets::status(set, &pods))))
            .collect();
        self.write_workload_statuses(statuses)
    }

    /// Writes a workload controller's statuses into its objects, when
    /// they changed.
    fn write_workload_statuses(&self, statuses: Vec<(Key, Value)>) -> anyhow::Result<()> {
        for (key, status) in statuses {
            let _lock = self.api.store.lock()?;
            if let Some(mut stored) = self.api.store.get(&key)?
                && stored.get("status") != Some(&status)
            {
                stored["status"] = status;
                self.api
                    .store
                    .put(&stored)
                    .with_context(|| format!("{key}: status"))?;
            }
        }
        Ok(())
    }

    async fn run_jobs(&mut self, objects: &[Stored]) -> anyhow::Result<()> {
        let jobs: Vec<&Value> = objects
            .iter()
            .filter(|s| s.key.kind == "Job")
            .map(|s| &s.value)
            .collect();
        let pods: Vec<jobs::JobPod> = objects
            .iter()
            .filter(|s| s.key.kind == "Pod")
            .filter_map(|s| jobs::JobPod::of(s.key.clone(), &s.value))
            .collect();
        if jobs.is_empty() && pods.is_empty() {
            return Ok(());
        }
        let plan = jobs::plan(&jobs, &pods, deployments::random_suffix);
        self.change_pods(plan.delete, plan.create, "job").await;
        self.write_workload_statuses(plan.statuses)
    }
}
