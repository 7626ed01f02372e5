//! A pod's run as its tasks share it: the pod, its address and
//! directory, its volumes and sources, and its status, which every
//! container's task updates.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::{Shared, Sources, volumes};
use crate::{
    apiserver::now_rfc3339,
    runtime::{
        cgroups,
        launch::{Launch, PodContext, launch},
        status::{ContainerStatus, PodStatus, State},
    },
};

/// Where in the status a container is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Init(usize),
    App(usize),
}

pub(super) struct PodRun {
    pub(super) shared: Arc<Shared>,
    pub(super) pod: Pod,
    pub(super) ip: Ipv4Addr,
    pub(super) netns: String,
    pub(super) dir: PathBuf,
    pub(super) volumes: Mutex<BTreeMap<String, PathBuf>>,
    pub(super) sources: Mutex<Sources>,
    /// What each configMap/secret volume holds, to follow changes.
    pub(super) written: Mutex<BTreeMap<String, volumes::Written>>,
    pub(super) status: Arc<Mutex<PodStatus>>,
}

impl PodRun {
    pub(super) fn sources(&self) -> Sources {
        self.sources
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(super) fn update(&self, slot: Slot, f: impl FnOnce(&mut ContainerStatus)) {
        if let Ok(mut s) = self.status.lock() {
            let c = match slot {
                Slot::Init(i) => s.init.get_mut(i),
                Slot::App(i) => s.containers.get_mut(i),
            };
            if let Some(c) = c {
                f(c);
            }
        }
    }

    /// Records an event about the pod (kubectl's Events).
    pub(super) fn event(&self, warning: bool, reason: &str, message: &str) {
        if let Ok(mut s) = self.status.lock() {
            s.events.record(warning, reason, message, &now_rfc3339());
        }
    }

    /// A container's process started: its event and state.
    pub(super) fn started(&self, slot: Slot, container: &Container) {
        self.event(
            false,
            "Started",
            &format!("Started container {}", container.name),
        );
        self.update(slot, |c| {
            c.state = State::Running {
                since: now_rfc3339(),
            }
        });
    }

    pub(super) fn set_phase(&self, phase: &str, message: Option<String>) {
        if let Ok(mut s) = self.status.lock() {
            s.phase = phase.into();
            s.message = message;
        }
    }

    pub(super) fn launch(&self, container: &Container) -> Result<Launch, String> {
        let volumes = self.volumes.lock().map(|v| v.clone()).unwrap_or_default();
        // Read at each start, as the kubelet resolves env at each start.
        let sources = self.sources();
        launch(
            container,
            &PodContext {
                pod: &self.pod,
                netns: &self.netns,
                pod_ip: self.ip,
                host_ip: self.shared.instance.gateway(),
                volumes: &volumes,
                config_maps: &sources.0,
                secrets: &sources.1,
                bin_dir: &self.shared.bin_dir,
                hidden: std::slice::from_ref(&self.shared.state.root),
            },
        )
    }

    /// The container's process, or None with the reason in its status
    /// (it cannot start until the pod changes).
    pub(super) fn launch_or_report(&self, slot: Slot, container: &Container) -> Option<Launch> {
        match self.launch(container) {
            Ok(l) => Some(l),
            Err(message) => {
                self.event(
                    true,
                    "Failed",
                    &format!("Error: {message} (container {})", container.name),
                );
                self.update(slot, |c| {
                    c.state = State::Waiting {
                        reason: "CreateContainerConfigError".into(),
                        message,
                    }
                });
                None
            }
        }
    }

    /// What runs a command inside a running container as its user (exec
    /// probes).
    pub(super) fn exec_in(&self, container: &Container) -> Result<Vec<String>, String> {
        let mut prefix = super::process::enter_container(&self.dir, &container.name)
            .ok_or_else(|| format!("container {} is not running", container.name))?;
        let (uid, gid) = crate::runtime::launch::run_as(container, &self.pod);
        if uid != 0 {
            prefix.extend([
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ]);
        }
        Ok(prefix)
    }

    fn cgroup_leaf(&self, container: &Container) -> String {
        format!(
            "{}.{}",
            self.pod.metadata.uid.as_deref().unwrap_or_default(),
            container.name
        )
    }

    /// The container's cgroups, made with its limits: none when it has
    /// none, or when the host cannot enforce them (a warning event says
    /// why, and its status shows no enforced limits).
    pub(super) fn limit(&self, slot: Slot, container: &Container) -> Vec<PathBuf> {
        let made = cgroups::limits_of(container).and_then(|limits| {
            if limits.is_empty() {
                return Ok(Vec::new());
            }
            match &self.shared.cgroups {
                Ok(hierarchy) => hierarchy.create(&self.cgroup_leaf(container), limits),
                Err(why) => Err(why.clone()),
            }
        });
        let enforced = container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| serde_json::to_value(l).ok());
        match made {
            Ok(dirs) => {
                self.update(slot, |c| {
                    c.enforced_limits = enforced.filter(|_| !dirs.is_empty());
                });
                dirs
            }
            Err(why) => {
                self.event(
                    true,
                    "LimitsNotEnforced",
                    &format!(
                        "resources.limits of container {} are not enforced: {why}",
                        container.name
                    ),
                );
                self.update(slot, |c| c.enforced_limits = None);
                Vec::new()
            }
        }
    }

    /// The cgroups of a container an earlier daemon started.
    pub(super) fn existing_cgroups(&self, container: &Container) -> Vec<PathBuf> {
        match &self.shared.cgroups {
            Ok(hierarchy) => hierarchy.existing(&self.cgroup_leaf(container)),
            Err(_) => Vec::new(),
        }
    }

    pub(super) fn grace(&self) -> Duration {
        let asked = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        // Local mode is for trying things: never wait long on shutdown.
        Duration::from_secs(u64::try_from(asked).unwrap_or(0).min(10))
    }
}
