//! One pod's life, as a kubelet runs it: network namespace and veth,
//! hosts file, volumes, init containers in order (a restartable one, the
//! proxy, keeps running and must pass its startup probe before the next
//! starts), then the app containers, each restarted by policy with
//! back-off and probed for readiness; on deletion, apps stop before
//! sidecars, and the namespace goes.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod};
use nix::{sys::signal::Signal, unistd::Pid};
use osm_controller::token::{AUDIENCE, LocalTokens, PodIdentity};
use tokio_util::sync::CancellationToken;

use super::{
    launch::{Launch, PodContext, launch, run_as},
    net, probes,
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
}

/// A running pod, as the reconciler holds it.
pub struct PodHandle {
    pub uid: String,
    pub ip: Ipv4Addr,
    pub netns: String,
    pub status: Arc<Mutex<PodStatus>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PodHandle {
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

/// Where in the status a container is.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Init(usize),
    App(usize),
}

struct PodRun {
    shared: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    netns: String,
    dir: PathBuf,
    volumes: Mutex<BTreeMap<String, PathBuf>>,
    config_maps: Vec<ConfigMap>,
    status: Arc<Mutex<PodStatus>>,
}

impl PodRun {
    fn update(&self, slot: Slot, f: impl FnOnce(&mut ContainerStatus)) {
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

    fn set_phase(&self, phase: &str, message: Option<String>) {
        if let Ok(mut s) = self.status.lock() {
            s.phase = phase.into();
            s.message = message;
        }
    }

    fn launch(&self, container: &Container) -> Result<Launch, String> {
        let volumes = self.volumes.lock().map(|v| v.clone()).unwrap_or_default();
        launch(
            container,
            &PodContext {
                pod: &self.pod,
                netns: &self.netns,
                pod_ip: self.ip,
                host_ip: self.shared.instance.gateway(),
                volumes: &volumes,
                config_maps: &self.config_maps,
                bin_dir: &self.shared.bin_dir,
            },
        )
    }

    /// The container's process, or None with the reason in its status
    /// (it cannot start until the pod changes).
    fn launch_or_report(&self, slot: Slot, container: &Container) -> Option<Launch> {
        match self.launch(container) {
            Ok(l) => Some(l),
            Err(message) => {
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

    fn grace(&self) -> Duration {
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

/// Starts a pod; `hosts` is its first hosts file.
pub fn start(
    shared: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    hosts: String,
    config_maps: Vec<ConfigMap>,
) -> PodHandle {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let netns = shared.instance.netns(&namespace, &name);
    let status = Arc::new(Mutex::new(PodStatus {
        phase: "Pending".into(),
        started_at: now_rfc3339(),
        init: statuses(spec.init_containers.as_deref().unwrap_or_default(), true),
        containers: statuses(&spec.containers, false),
        ..Default::default()
    }));
    let cancel = CancellationToken::new();
    let run = Arc::new(PodRun {
        dir: shared.state.pod_dir(&namespace, &name),
        shared,
        pod,
        ip,
        netns: netns.clone(),
        volumes: Mutex::new(BTreeMap::new()),
        config_maps,
        status: status.clone(),
    });
    let task = tokio::spawn(run_pod(run, hosts, cancel.clone()));
    PodHandle {
        uid,
        ip,
        netns,
        status,
        cancel,
        task,
    }
}

async fn run_pod(run: Arc<PodRun>, hosts: String, cancel: CancellationToken) {
    let key = format!(
        "{}/{}",
        run.pod.metadata.namespace.as_deref().unwrap_or_default(),
        run.pod.metadata.name.as_deref().unwrap_or_default()
    );
    if let Err(e) = run_pod_inner(&run, hosts, &cancel).await {
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
    hosts: String,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let instance = &run.shared.instance;
    let uid = run.pod.metadata.uid.clone().unwrap_or_default();
    let veth = instance.host_veth(&uid);
    net::create_pod_network(instance, &run.netns, &veth, run.ip).await?;
    net::write_hosts(&run.netns, &hosts)?;
    if let Ok(mut s) = run.status.lock() {
        s.pod_ip = Some(run.ip);
    }
    std::fs::create_dir_all(run.dir.join("logs"))?;
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
            child.clone(),
        ));
        apps.push((child, task));
    }
    run.set_phase("Running", None);

    // Tokens are renewed at 80% of their life, as the kubelet does.
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(tokens.renew_every) => {
                if let Err(e) = write_tokens(run, &tokens.files) {
                    tracing::warn!(error = %e, "cannot renew a pod token");
                }
            }
        }
    }
    stop_all(apps).await;
    stop_all(sidecars).await;
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

/// Runs an init container until it succeeds; false when the pod stops
/// (or gives up, with restartPolicy Never) first.
async fn run_to_completion(
    run: &Arc<PodRun>,
    index: usize,
    container: &Container,
    restart: &str,
    cancel: &CancellationToken,
) -> bool {
    let slot = Slot::Init(index);
    let mut backoff = Backoff::default();
    loop {
        let Some(launch) = run.launch_or_report(slot, container) else {
            cancel.cancelled().await;
            return false;
        };
        let exit = match spawn(&launch, &run.dir, &container.name) {
            Ok(mut child) => {
                run.update(slot, |c| {
                    c.state = State::Running {
                        since: now_rfc3339(),
                    }
                });
                tokio::select! {
                    status = child.wait() => status.map(exit_code).unwrap_or(-1),
                    () = cancel.cancelled() => {
                        stop_child(&mut child, run.grace()).await;
                        return false;
                    }
                }
            }
            Err(e) => {
                run.update(slot, |c| {
                    c.state = State::Waiting {
                        reason: "RunContainerError".into(),
                        message: e.to_string(),
                    }
                });
                -1
            }
        };
        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
        if exit == 0 {
            run.update(slot, |c| {
                c.state = State::Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                };
                c.ready = true;
            });
            return true;
        }
        run.update(slot, |c| {
            c.restarts += 1;
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!("exited with {exit}"),
            };
        });
        if restart == "Never" {
            run.set_phase(
                "Failed",
                Some(format!("init container {} failed", container.name)),
            );
            cancel.cancelled().await;
            return false;
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(backoff.next(Duration::ZERO)) => {}
        }
    }
}

/// Keeps a long-running container up: start, probe, restart by policy.
async fn supervise(
    run: Arc<PodRun>,
    slot: Slot,
    container: Container,
    restart: String,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let Some(launch) = run.launch_or_report(slot, &container) else {
            cancel.cancelled().await;
            return;
        };
        let began = Instant::now();
        let exit = match spawn(&launch, &run.dir, &container.name) {
            Ok(mut child) => {
                run.update(slot, |c| {
                    c.state = State::Running {
                        since: now_rfc3339(),
                    };
                    c.started = container.startup_probe.is_none();
                    c.ready = false;
                });
                tokio::select! {
                    status = child.wait() => status.map(exit_code).unwrap_or(-1),
                    reason = probe_loop(&run, slot, &container) => {
                        tracing::info!(container = %container.name, %reason, "restarting");
                        stop_child(&mut child, run.grace()).await;
                        137
                    }
                    () = cancel.cancelled() => {
                        stop_child(&mut child, run.grace()).await;
                        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
                        run.update(slot, |c| {
                            c.ready = false;
                            c.state = State::Terminated { exit_code: 0, reason: "Completed".into() };
                        });
                        return;
                    }
                }
            }
            Err(e) => {
                run.update(slot, |c| {
                    c.state = State::Waiting {
                        reason: "RunContainerError".into(),
                        message: e.to_string(),
                    }
                });
                -1
            }
        };
        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
        let reason = if exit == 0 { "Completed" } else { "Error" };
        run.update(slot, |c| {
            c.ready = false;
            c.state = State::Terminated {
                exit_code: exit,
                reason: reason.into(),
            };
        });
        if restart == "Never" || (restart == "OnFailure" && exit == 0) {
            cancel.cancelled().await;
            return;
        }
        run.update(slot, |c| {
            c.restarts += 1;
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off restarting failed container {} (exit {exit})",
                    container.name
                ),
            };
        });
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff.next(began.elapsed())) => {}
        }
    }
}

/// Startup, then readiness and liveness probes; returns only when the
/// container must be restarted (a failed startup or liveness probe).
async fn probe_loop(run: &PodRun, slot: Slot, container: &Container) -> String {
    let ip = run.ip;
    if let Some(startup) = &container.startup_probe {
        let t = probes::timing(startup);
        tokio::time::sleep(t.initial_delay).await;
        let mut failures = 0;
        loop {
            match probes::attempt(startup, container, ip, &run.netns).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    if failures >= t.failure_threshold {
                        return format!("startup probe failed: {e}");
                    }
                }
            }
            tokio::time::sleep(t.period).await;
        }
    }
    run.update(slot, |c| c.started = true);
    let readiness = container.readiness_probe.as_ref();
    let liveness = container.liveness_probe.as_ref();
    if readiness.is_none() {
        run.update(slot, |c| c.ready = true);
    }
    if readiness.is_none() && liveness.is_none() {
        return std::future::pending().await;
    }
    let started = Instant::now();
    let mut next_readiness = readiness.map(|p| probes::timing(p).initial_delay);
    let mut next_liveness = liveness.map(|p| probes::timing(p).initial_delay);
    let (mut ok_streak, mut fail_streak, mut live_fails) = (0u32, 0u32, 0u32);
    loop {
        let due = [next_readiness, next_liveness]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(3600));
        tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        let now = started.elapsed();
        if let (Some(p), Some(at)) = (readiness, next_readiness)
            && at <= now
        {
            let t = probes::timing(p);
            match probes::attempt(p, container, ip, &run.netns).await {
                Ok(()) => {
                    ok_streak += 1;
                    fail_streak = 0;
                    if ok_streak >= t.success_threshold {
                        run.update(slot, |c| c.ready = true);
                    }
                }
                Err(_) => {
                    fail_streak += 1;
                    ok_streak = 0;
                    if fail_streak >= t.failure_threshold {
                        run.update(slot, |c| c.ready = false);
                    }
                }
            }
            next_readiness = Some(now + t.period);
        }
        if let (Some(p), Some(at)) = (liveness, next_liveness)
            && at <= now
        {
            let t = probes::timing(p);
            match probes::attempt(p, container, ip, &run.netns).await {
                Ok(()) => live_fails = 0,
                Err(e) => {
                    live_fails += 1;
                    if live_fails >= t.failure_threshold {
                        return format!("liveness probe failed: {e}");
                    }
                }
            }
            next_liveness = Some(now + t.period);
        }
    }
}

/// Kubernetes' crash back-off: 1 s doubling to 30 s; a run of 10 s or
/// more resets it.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_secs(1))
    }
}

impl Backoff {
    fn next(&mut self, ran: Duration) -> Duration {
        if ran >= Duration::from_secs(10) {
            self.0 = Duration::from_secs(1);
        }
        let wait = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        wait
    }
}

/// A process's exit code; 128 + the signal when a signal ended it (as
/// shells report it).
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub fn pid_file(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join(format!("{container}.pid"))
}

fn spawn(
    launch: &Launch,
    pod_dir: &Path,
    container: &str,
) -> std::io::Result<tokio::process::Child> {
    let log_path = pod_dir.join("logs").join(format!("{container}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let child = tokio::process::Command::new(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so stopping it reaches what it forks.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    if let Some(pid) = child.id() {
        std::fs::write(pid_file(pod_dir, container), pid.to_string())?;
    }
    Ok(child)
}

/// SIGTERM to the container's process group, SIGKILL after `grace`.
async fn stop_child(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let group = Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        }
    }
    let _ = child.wait().await;
}

/// Projected tokens to renew.
struct Tokens {
    volumes: BTreeMap<String, PathBuf>,
    files: Vec<TokenFile>,
    renew_every: Duration,
}

#[derive(Debug, Clone)]
struct TokenFile {
    path: PathBuf,
    audience: String,
    ttl: Duration,
    owner: u32,
}

/// Writes the pod's volumes under its directory: emptyDir, configMap and
/// projected (serviceAccountToken, configMap) sources.
fn materialize_volumes(run: &PodRun) -> Result<Tokens, String> {
    let spec = run.pod.spec.clone().unwrap_or_default();
    let namespace = run.pod.metadata.namespace.clone().unwrap_or_default();
    let mut volumes = BTreeMap::new();
    let mut files = Vec::new();
    let all_containers: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    for volume in spec.volumes.iter().flatten() {
        let dir = run.dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Files belong to the (non-root) user of a container mounting it.
        let owner = all_containers
            .iter()
            .filter(|c| {
                c.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == volume.name)
            })
            .map(|c| run_as(c, &run.pod).0)
            .find(|uid| *uid != 0)
            .unwrap_or(0);
        let config_map = |name: &str, optional: Option<bool>| -> Result<(), String> {
            let found = run.config_maps.iter().find(|c| {
                c.metadata.name.as_deref() == Some(name)
                    && c.metadata.namespace.as_deref() == Some(namespace.as_str())
            });
            match found {
                Some(cm) => {
                    for (key, value) in cm.data.iter().flatten() {
                        if key.contains('/') || key.starts_with('.') {
                            return Err(format!(
                                "configmap {name}: key {key:?} is not a file name"
                            ));
                        }
                        write_owned(&dir.join(key), value.as_bytes(), owner, 0o644)?;
                    }
                    Ok(())
                }
                None if optional == Some(true) => Ok(()),
                None => Err(format!(
                    "volume {}: configmap {name:?} not found",
                    volume.name
                )),
            }
        };
        if volume.empty_dir.is_some() {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        } else if let Some(cm) = &volume.config_map {
            config_map(&cm.name, cm.optional)?;
        } else if let Some(projected) = &volume.projected {
            for source in projected.sources.iter().flatten() {
                if let Some(t) = &source.service_account_token {
                    if t.path.contains("..") || t.path.starts_with('/') {
                        return Err(format!(
                            "volume {}: bad token path {:?}",
                            volume.name, t.path
                        ));
                    }
                    let ttl = Duration::from_secs(
                        u64::try_from(t.expiration_seconds.unwrap_or(3600)).unwrap_or(3600),
                    );
                    files.push(TokenFile {
                        path: dir.join(&t.path),
                        audience: t.audience.clone().unwrap_or_else(|| AUDIENCE.into()),
                        ttl,
                        owner,
                    });
                } else if let Some(cm) = &source.config_map {
                    config_map(&cm.name, cm.optional)?;
                } else {
                    return Err(format!(
                        "volume {}: only serviceAccountToken and configMap projections are supported in local mode",
                        volume.name
                    ));
                }
            }
        } else {
            return Err(format!(
                "volume {}: only emptyDir, configMap and projected volumes are supported in local mode",
                volume.name
            ));
        }
        if owner != 0 {
            let _ = nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(owner)), None);
        }
        volumes.insert(volume.name.clone(), dir);
    }
    write_tokens(run, &files)?;
    let renew_every = files
        .iter()
        .map(|f| f.ttl.mul_f64(0.8))
        .min()
        .unwrap_or(Duration::from_secs(3600))
        .max(Duration::from_secs(10));
    Ok(Tokens {
        volumes,
        files,
        renew_every,
    })
}

fn write_tokens(run: &PodRun, files: &[TokenFile]) -> Result<(), String> {
    let spec = run.pod.spec.as_ref();
    let identity = PodIdentity {
        namespace: run.pod.metadata.namespace.clone().unwrap_or_default(),
        pod: run.pod.metadata.name.clone().unwrap_or_default(),
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
    };
    for f in files {
        let token = run.shared.tokens.mint(&identity, &f.audience, f.ttl);
        write_owned(&f.path, token.as_bytes(), f.owner, 0o600)?;
    }
    Ok(())
}

fn write_owned(path: &Path, bytes: &[u8], owner: u32, mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode));
    if owner != 0 {
        nix::unistd::chown(&tmp, Some(nix::unistd::Uid::from_raw(owner)), None)
            .map_err(|e| format!("chown {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next(Duration::ZERO).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.next(Duration::from_secs(11)).as_secs(), 1);
    }
}
