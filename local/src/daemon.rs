//! `osm local daemon` (started by `osm local up`, not by hand): runs the
//! controller and the injector as child processes (restarted if they
//! exit), sets up the host network, runs the runtime's passes, and on
//! SIGTERM stops every pod and removes what it set up. On SIGUSR2 (`osm
//! local restart`) it leaves the pods running; a daemon that starts adopts
//! the pods an earlier one left (after SIGUSR2 or a crash).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use osm_controller::{server::tls::default_server_names, token::LocalTokens};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    addons::{self, Addon},
    admission::Injector,
    apiserver::ApiServer,
    http,
    process_record::Record,
    runtime::{self, Runtime, net, pod::Shared, takeover},
    state::{INJECTOR_SERVER_NAME, Instance, OSM_NAMESPACE, StateDir},
    store::Store,
    supervisor::Child,
};

/// Where the mesh's binaries are: beside the running `osm`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the osm binary")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the osm binary has no directory")
}

fn controller(
    state: &StateDir,
    instance: &Instance,
    bin: &Path,
    started: watch::Sender<Option<Instant>>,
) -> Child {
    let mut args = vec![
        "--state-dir".to_string(),
        state.controller().display().to_string(),
        "--manifests".into(),
        state.api().display().to_string(),
        "--poll-interval".into(),
        "200ms".into(),
        "--grpc-listen".into(),
        instance.controller_grpc().to_string(),
        "--admin-listen".into(),
        instance.controller_admin().to_string(),
        "--webhook-listen".into(),
        instance.controller_webhook().to_string(),
        // One controller: a rotation's phase need not wait for replicas.
        "--ca-rotation-min-phase".into(),
        "0s".into(),
    ];
    let mut names = default_server_names(OSM_NAMESPACE);
    names.push(instance.gateway().to_string());
    for name in names {
        args.push("--server-name".into());
        args.push(name);
    }
    Child {
        name: "osm-controller",
        program: bin.join("osm-controller"),
        args,
        log: state.logs().join("osm-controller.log"),
        pid_file: state.run().join("osm-controller.pid"),
        started: Some(started),
    }
}

fn injector(state: &StateDir, instance: &Instance, bin: &Path) -> Child {
    let dir = state.injector();
    let args = vec![
        "--listen".to_string(),
        instance.injector().to_string(),
        "--cert".into(),
        dir.join("tls.crt").display().to_string(),
        "--key".into(),
        dir.join("tls.key").display().to_string(),
        "--trust-bundle".into(),
        state.trust_bundle().display().to_string(),
        "--manifests".into(),
        state.api().display().to_string(),
    ];
    Child {
        name: "osm-injector",
        program: bin.join("osm-injector"),
        args,
        log: state.logs().join("osm-injector.log"),
        pid_file: state.run().join("osm-injector.pid"),
        started: None,
    }
}

/// Prometheus (`--with prometheus`), its config written afresh.
fn prometheus(state: &StateDir, instance: &Instance) -> anyhow::Result<Child> {
    let dir = super::prometheus::dir(state);
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let targets = super::prometheus::targets_file(state);
    if !targets.exists() {
        crate::state::write_atomic(&targets, b"[]")?;
    }
    let config = dir.join("prometheus.yml");
    crate::state::write_atomic(
        &config,
        super::prometheus::config(&targets, instance.controller_admin()).as_bytes(),
    )?;
    let program = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("prometheus"));
    Ok(Child {
        name: "prometheus",
        program,
        args: vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            // OSM's add-on kept 15 days.
            "--storage.tsdb.retention.time=15d".into(),
            format!(
                "--web.listen-address={}:{}",
                instance.gateway(),
                super::prometheus::PORT
            ),
        ],
        log: state.logs().join("prometheus.log"),
        pid_file: state.run().join("prometheus.pid"),
        started: None,
    })
}

/// Writes the sidecar targets Prometheus reads, when they changed.
fn write_scrape_targets(state: &StateDir, store: &Store, last: &mut Option<Vec<u8>>) {
    let pods: Vec<serde_json::Value> = match store.list() {
        Ok(objects) => objects
            .into_iter()
            .filter(|o| o.key.kind == "Pod")
            .map(|o| o.value)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "scrape targets not updated");
            return;
        }
    };
    let bytes = serde_json::to_vec_pretty(&super::prometheus::targets(&pods)).unwrap_or_default();
    if last.as_ref() != Some(&bytes) {
        match crate::state::write_atomic(&super::prometheus::targets_file(state), &bytes) {
            Ok(()) => *last = Some(bytes),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "scrape targets not written"),
        }
    }
}

/// Whether the controller is ready, and the pods whose proxies are caught
/// up with it (its `/debug/proxies`, which answers this machine).
async fn controller_state(instance: &Instance) -> (bool, Option<BTreeSet<String>>) {
    let timeout = Duration::from_millis(500);
    let admin = instance.controller_admin();
    let ready = http::get(admin, "/readyz", timeout)
        .await
        .is_ok_and(|a| a.status == 200);
    if !ready {
        return (false, None);
    }
    let synced = http::get(admin, "/debug/proxies", timeout)
        .await
        .ok()
        .filter(|a| a.status == 200)
        .and_then(|a| runtime::availability::synced_pods(&a.body));
    (true, synced)
}

/// Waits until the controller is ready, the injector accepts connections
/// and Prometheus (when asked for) is ready, so `up` returns with
/// everything `status` checks up.
async fn control_plane_ready(
    instance: &Instance,
    with_prometheus: bool,
    stop: &CancellationToken,
) -> bool {
    loop {
        let controller = http::get(
            instance.controller_admin(),
            "/readyz",
            Duration::from_secs(1),
        )
        .await
        .is_ok_and(|a| a.status == 200);
        let injector = tokio::net::TcpStream::connect(instance.injector())
            .await
            .is_ok();
        let prometheus = !with_prometheus
            || http::get(
                (instance.gateway(), super::prometheus::PORT).into(),
                "/-/ready",
                Duration::from_secs(1),
            )
            .await
            .is_ok_and(|a| a.status == 200);
        if controller && injector && prometheus {
            return true;
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Kills what an earlier daemon left running (after a crash): container
/// processes and control-plane children by their pid files, except the
/// processes of pods in `keep` (directories of pods a new daemon adopts).
pub fn kill_leftovers(state: &StateDir, keep: &BTreeSet<PathBuf>) {
    let mut pid_files = Vec::new();
    let mut stack = vec![state.pods(), state.run()];
    while let Some(dir) = stack.pop() {
        if keep.contains(&dir) {
            continue;
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pid")
                && path.file_name().is_some_and(|n| n != "daemon.pid")
            {
                pid_files.push(path);
            }
        }
    }
    for file in pid_files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // A container's record carries its start time: a pid reused since
        // by another process is left alone.
        let pid = match Record::parse(&text) {
            Some(record) => record.alive().then_some(record.pid),
            None => text.trim().parse::<i32>().ok().filter(|p| *p > 1),
        };
        if let Some(pid) = pid {
            // Container processes lead their own process group.
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(file);
    }
}

/// How the daemon ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// SIGTERM or SIGINT: every pod stopped, the host cleaned.
    Everything,
    /// SIGUSR2 (`osm local restart`): the control plane stops, pods keep
    /// running for the next daemon to adopt.
    KeepPods,
}

/// Waits for the signal that ends the daemon.
async fn ending() -> Ending {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::user_defined2()) {
        Ok(mut usr2) => tokio::select! {
            () = osm_serve::shutdown_signal() => Ending::Everything,
            _ = usr2.recv() => Ending::KeepPods,
        },
        Err(_) => {
            osm_serve::shutdown_signal().await;
            Ending::Everything
        }
    }
}

pub async fn run(state: StateDir) -> anyhow::Result<()> {
    let instance = state.require_instance()?;
    let bin = bin_dir()?;
    let _ = std::fs::remove_file(state.ready_marker());
    let store = Store::new(state.api(), state.api_lock());
    // Pods an earlier daemon left running are kept (a crash or an
    // upgrade restarts the daemon, not the pods); what else it left goes.
    let kept = takeover::find(&state, &instance, &store.list()?);
    kill_leftovers(&state, &kept.dirs);
    takeover::clear_others(&state, &kept);
    for netns in net::list_netns(&instance) {
        if !kept.netns.contains(&netns) {
            net::delete_netns(&netns).await?;
        }
    }
    let trust = std::fs::read(state.injector_ca()).context("the injector's CA")?;
    let api = ApiServer {
        store,
        instance: instance.clone(),
        injector: Injector::new(instance.injector(), INJECTOR_SERVER_NAME, &trust)?,
    };
    let shared = Arc::new(Shared {
        tokens: LocalTokens::load_or_create(&state.controller()).context("the local token key")?,
        state: state.clone(),
        instance: instance.clone(),
        bin_dir: bin.clone(),
        cgroups: runtime::cgroups::Hierarchy::detect(&instance.name).inspect_err(|why| {
            tracing::warn!(%why, "containers' resource limits will not be enforced");
        }),
    });
    let mut runtime = Runtime::new(shared, api);
    // Kept pods' Services keep working: their rules stay until the first
    // pass rewrites them.
    let rules = if kept.is_empty() {
        runtime.empty_rules()
    } else {
        String::new()
    };
    net::setup_host(&instance, &state, &rules).await?;
    if !kept.is_empty() {
        tracing::info!(
            pods = kept.len(),
            "keeping the pods the earlier daemon left running"
        );
        runtime.adopt(kept);
    }

    let stop = CancellationToken::new();
    let with_prometheus = addons::load(&state)?.contains(&Addon::Prometheus);
    let (controller_started, controller_process) = watch::channel(None);
    let mut children = vec![
        controller(&state, &instance, &bin, controller_started),
        injector(&state, &instance, &bin),
    ];
    if with_prometheus {
        children.push(prometheus(&state, &instance)?);
    }
    let children: Vec<_> = children
        .into_iter()
        .map(|c| tokio::spawn(c.keep_running(stop.clone())))
        .collect();
    let reader = Store::new(state.api(), state.api_lock());
    let mut last_targets = None;
    let mut passes: u64 = 0;
    let signal = tokio::spawn({
        let stop = stop.clone();
        async move {
            let how = ending().await;
            stop.cancel();
            how
        }
    });

    if control_plane_ready(&instance, with_prometheus, &stop).await {
        std::fs::write(state.ready_marker(), b"ready\n")?;
        tracing::info!("local mode is ready");
        while !stop.is_cancelled() {
            // Rollouts wait while the controller is away (see
            // `runtime::availability`); when it started is read after
            // asking, so a controller replaced meanwhile counts afresh.
            let (ready, synced) = controller_state(&instance).await;
            runtime.controller_seen(*controller_process.borrow(), ready, synced);
            if let Err(e) = runtime.reconcile().await {
                tracing::warn!(error = %format!("{e:#}"), "runtime pass failed");
            }
            // Every 2 s: Prometheus reads the file as often.
            if with_prometheus && passes.is_multiple_of(8) {
                write_scrape_targets(&state, &reader, &mut last_targets);
            }
            passes += 1;
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
    let _ = std::fs::remove_file(state.ready_marker());
    // The loop ends only once the signal task cancelled `stop`; it may not
    // have returned yet (it cancels first), so its answer is awaited:
    // reading it only when already finished took a SIGUSR2 for a SIGTERM
    // now and then and stopped every pod `osm local restart` should keep.
    let how = if stop.is_cancelled() {
        signal.await.unwrap_or(Ending::Everything)
    } else {
        signal.abort();
        Ending::Everything
    };
    tracing::info!(?how, "stopping");
    if how == Ending::Everything {
        runtime.stop_all().await;
    }
    stop.cancel();
    for child in children {
        let _ = child.await;
    }
    if how == Ending::Everything {
        for problem in net::teardown_host(&instance, &state).await {
            tracing::warn!(%problem, "teardown");
        }
    }
    Ok(())
}
