//! One pod's life, as a kubelet runs it: network namespace and veth,
//! hosts file, volumes, init containers in order (a restartable one, the
//! proxy, keeps running and must pass its startup probe before the next
//! starts), then the app containers, each restarted by policy with
//! back-off and probed for readiness; on deletion, apps stop before
//! sidecars, and the namespace goes.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use osm_controller::token::LocalTokens;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub mod adopt;
mod host_path;
mod probing;
pub mod process;
mod run;
mod safe_files;
mod supervise;
mod termination;
mod volumes;

use self::{
    adopt::{Adoption, PodRecord, Takeover},
    run::{PodRun, Slot},
    supervise::{run_to_completion, supervise},
    volumes::{materialize_volumes, refresh_volumes, write_tokens},
};
use super::{
    net,
    status::{ContainerStatus, PodStatus, State},
};
use crate::{
    apiserver::now_rfc3339,
    state::{Instance, StateDir},
};

/// What every pod needs from the runtime.
pub struct Shared {
    pub state: StateDir,
    pub instance: Instance,
    pub bin_dir: PathBuf,
    pub tokens: LocalTokens,
    /// Where containers' limits are enforced, or why they cannot be.
    pub cgroups: Result<super::cgroups::Hierarchy, String>,
}

/// The cluster's ConfigMaps and Secrets, as of a pass of the reconciler
/// (a new value only when one of them changed).
pub type Sources = Arc<(Vec<ConfigMap>, Vec<Secret>)>;

/// A running pod, as the reconciler holds it.
pub struct PodHandle {
    pub uid: String,
    pub ip: Ipv4Addr,
    pub netns: String,
    pub status: Arc<Mutex<PodStatus>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    sources: watch::Sender<Sources>,
}

impl PodHandle {
    /// Hands the pod the cluster's ConfigMaps and Secrets: its mounted
    /// configMap and secret volumes follow them.
    pub fn update_sources(&self, sources: &Sources) {
        self.sources.send_if_modified(|held| {
            let changed = !Arc::ptr_eq(held, sources);
            if changed {
                *held = sources.clone();
            }
            changed
        });
    }

    pub fn snapshot(&self) -> PodStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts stopping the pod.
    pub fn terminate(&self) {
        self.cancel.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

fn statuses(containers: &[Container], sidecars: bool) -> Vec<ContainerStatus> {
    containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            sidecar: sidecars && c.restart_policy.as_deref() == Some("Always"),
            ..Default::default()
        })
        .collect()
}

/// How a pod's run begins.
enum Begin {
    /// A new pod: network, volumes, init containers, apps; `hosts` is its
    /// first hosts file.
    Fresh { hosts: String },
    /// A pod an earlier daemon started.
    Adopted(Takeover),
}

/// Starts a pod; `hosts` is its first hosts file.
pub fn start(
    shared: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    hosts: String,
    sources: Sources,
) -> PodHandle {
    let status = new_status(&pod);
    begin(shared, pod, ip, status, Begin::Fresh { hosts }, sources)
}

/// Keeps a pod an earlier daemon started, from the status it wrote.
pub fn adopt(shared: Arc<Shared>, pod: Pod, adoption: Adoption, sources: Sources) -> PodHandle {
    let status = new_status(&pod).restored(&adoption.status);
    let ip = adoption.ip;
    begin(
        shared,
        pod,
        ip,
        status,
        Begin::Adopted(adoption.takeover),
        sources,
    )
}

fn new_status(pod: &Pod) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    PodStatus {
        phase: "Pending".into(),
        started_at: now_rfc3339(),
        init: statuses(spec.init_containers.as_deref().unwrap_or_default(), true),
        containers: statuses(&spec.containers, false),
        ..Default::default()
    }
}

fn begin(
    shared: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    status: PodStatus,
    how: Begin,
    sources: Sources,
) -> PodHandle {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let netns = shared.instance.netns(&namespace, &name);
    let status = Arc::new(Mutex::new(status));
    let cancel = CancellationToken::new();
    let run = Arc::new(PodRun {
        dir: shared.state.pod_dir(&namespace, &name),
        shared,
        pod,
        ip,
        netns: netns.clone(),
        volumes: Mutex::new(BTreeMap::new()),
        sources: Mutex::new(sources.clone()),
        written: Mutex::new(BTreeMap::new()),
        status: status.clone(),
    });
    let (sources, updates) = watch::channel(sources);
    let task = tokio::spawn(run_pod(run, how, updates, cancel.clone()));
    PodHandle {
        uid,
        ip,
        netns,
        status,
        cancel,
        task,
        sources,
    }
}

async fn run_pod(
    run: Arc<PodRun>,
    how: Begin,
    updates: watch::Receiver<Sources>,
    cancel: CancellationToken,
) {
    let key = format!(
        "{}/{}",
        run.pod.metadata.namespace.as_deref().unwrap_or_default(),
        run.pod.metadata.name.as_deref().unwrap_or_default()
    );
    if let Err(e) = run_pod_inner(&run, how, updates, &cancel).await {
        tracing::warn!(pod = %key, error = %format!("{e:#}"), "pod failed");
        run.set_phase("Failed", Some(format!("{e:#}")));
        cancel.cancelled().await;
    }
    if let Err(e) = net::delete_netns(&run.netns).await {
        tracing::warn!(pod = %key, error = %format!("{e:#}"), "cannot remove the pod's network namespace");
    }
    let _ = std::fs::remove_dir_all(&run.dir);
    tracing::info!(pod = %key, "pod stopped");
}

async fn run_pod_inner(
    run: &Arc<PodRun>,
    how: Begin,
    mut updates: watch::Receiver<Sources>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let instance = &run.shared.instance;
    let uid = run.pod.metadata.uid.clone().unwrap_or_default();
    // Network namespace, veth and hosts file of an adopted pod are the
    // earlier daemon's, in use: left as they are.
    let mut adopted = match how {
        Begin::Fresh { hosts } => {
            let veth = instance.host_veth(&uid);
            net::create_pod_network(instance, &run.netns, &veth, run.ip).await?;
            net::write_hosts(&run.netns, &hosts)?;
            None
        }
        Begin::Adopted(takeover) => Some(takeover),
    };
    if let Ok(mut s) = run.status.lock() {
        s.pod_ip = Some(run.ip);
    }
    std::fs::create_dir_all(run.dir.join("logs"))?;
    adopt::write_record(&run.dir, &PodRecord { uid, ip: run.ip })?;
    if adopted == Some(Takeover::Finished) {
        // A finished pod keeps its status and runs nothing.
        cancel.cancelled().await;
        return Ok(());
    }
    let mut processes = match adopted.take() {
        Some(Takeover::Running { processes }) => Some(processes),
        _ => None,
    };
    let adopting = processes.is_some();
    let mut kept = |name: &str| processes.as_mut().and_then(|p| p.remove(name));
    let tokens = materialize_volumes(run).map_err(anyhow::Error::msg)?;
    if let Ok(mut v) = run.volumes.lock() {
        *v = tokens.volumes;
    }

    let spec = run.pod.spec.clone().unwrap_or_default();
    let restart = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let mut sidecars = Vec::new();
    for (i, container) in spec.init_containers.iter().flatten().enumerate() {
        if container.restart_policy.as_deref() == Some("Always") {
            let child = CancellationToken::new();
            let task = tokio::spawn(supervise(
                run.clone(),
                Slot::Init(i),
                container.clone(),
                "Always".into(),
                kept(&container.name),
                child.clone(),
            ));
            sidecars.push((child, task));
            // The next container starts once this one has started.
            loop {
                if run
                    .status
                    .lock()
                    .map(|s| s.init[i].started)
                    .unwrap_or(false)
                {
                    break;
                }
                tokio::select! {
                    () = cancel.cancelled() => {
                        stop_all(sidecars).await;
                        return Ok(());
                    }
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        } else if adopting {
            // An adopted pod's init containers have run.
        } else if !run_to_completion(run, i, container, &restart, cancel).await {
            stop_all(sidecars).await;
            return Ok(());
        }
    }
    let mut apps = Vec::new();
    for (i, container) in spec.containers.iter().enumerate() {
        let child = CancellationToken::new();
        let task = tokio::spawn(supervise(
            run.clone(),
            Slot::App(i),
            container.clone(),
            restart.clone(),
            kept(&container.name),
            child.clone(),
        ));
        apps.push((child, task));
    }
    run.set_phase("Running", None);
    // Under restartPolicy Never or OnFailure a pod can finish: once every
    // app container is done, its native sidecars are stopped (a Job's
    // proxy must not keep it running) and the phase says how it ended.
    let finishes = restart != "Always";
    let mut finished = !finishes;

    // Tokens are renewed at 80% of their life, as the kubelet does.
    let start = tokio::time::Instant::now();
    let mut renew = tokio::time::interval_at(start + tokens.renew_every, tokens.renew_every);
    let mut check = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = renew.tick() => {
                if let Err(e) = write_tokens(run, &tokens.files) {
                    tracing::warn!(error = %e, "cannot renew a pod token");
                }
            }
            Ok(()) = updates.changed() => {
                let sources = updates.borrow_and_update().clone();
                if let Ok(mut held) = run.sources.lock() {
                    *held = sources;
                }
                for outcome in refresh_volumes(run) {
                    match outcome {
                        Ok(volume) => tracing::info!(%volume, "volume updated from its ConfigMap or Secret"),
                        Err(e) => run.event(true, "FailedMount", &e),
                    }
                }
            }
            _ = check.tick(), if !finished => {
                if apps.iter().all(|(_, task)| task.is_finished()) {
                    finished = true;
                    stop_all(std::mem::take(&mut sidecars)).await;
                    let all_succeeded = run.status.lock().is_ok_and(|s| {
                        s.containers.iter().all(|c| {
                            matches!(c.state, State::Terminated { exit_code: 0, .. })
                        })
                    });
                    run.set_phase(if all_succeeded { "Succeeded" } else { "Failed" }, None);
                }
            }
        }
    }
    let apps_running = apps.iter().any(|(_, task)| !task.is_finished());
    for step in termination::steps(run.grace(), apps_running) {
        match step {
            termination::Step::Wait(wait) => tokio::time::sleep(wait).await,
            termination::Step::StopApps => stop_all(std::mem::take(&mut apps)).await,
            termination::Step::StopSidecars => stop_all(std::mem::take(&mut sidecars)).await,
        }
    }
    Ok(())
}

async fn stop_all(tasks: Vec<(CancellationToken, tokio::task::JoinHandle<()>)>) {
    for (cancel, _) in &tasks {
        cancel.cancel();
    }
    for (_, task) in tasks {
        let _ = task.await;
    }
}
