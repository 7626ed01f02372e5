//! `osm local up`, `down` and `status`.

use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use osm_controller::token::LocalTokens;

use super::{
    addons::{self, Addon},
    daemon::{bin_dir, kill_leftovers},
    http,
    manifests::{check, split_documents},
    runtime::{net, status::ready_and_status},
    state::{
        INJECTOR_SERVER_NAME, Instance, OSM_NAMESPACE, StateDir, check_instance, write_atomic,
    },
    store::Store,
};

/// The objects every local cluster starts with: the `default` and
/// control-plane namespaces and the MeshConfig with OSM v1.2's defaults.
const SEED: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Namespace
metadata: {name: osm-system}
---
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {name: osm-mesh-config, namespace: osm-system}
spec:
  sidecar: {logLevel: error}
  traffic:
    enablePermissiveTrafficPolicyMode: true
    enableEgress: true
  certificate: {serviceCertValidityDuration: 24h}
"#;

const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Whether `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What must be true before anything is touched.
fn preflight(bin: &Path) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "local mode needs root (it creates network namespaces and iptables rules): run it with sudo"
        );
    }
    let missing: Vec<&str> = [
        ("ip", "iproute2"),
        ("iptables-restore", "iptables"),
        ("iptables-save", "iptables"),
        ("setpriv", "util-linux"),
        ("nsenter", "util-linux"),
    ]
    .into_iter()
    .filter(|(p, _)| !on_path(p))
    .map(|(_, pkg)| pkg)
    .collect();
    let mut missing = missing;
    missing.dedup();
    if !missing.is_empty() {
        anyhow::bail!(
            "missing tools: install them with `apt-get install {}`",
            missing.join(" ")
        );
    }
    let absent: Vec<&str> = [
        "osm-controller",
        "osm-injector",
        "osm-proxy",
        "osm-init",
        "osm-shim",
    ]
    .into_iter()
    .filter(|b| !bin.join(b).is_file())
    .collect();
    if !absent.is_empty() {
        anyhow::bail!(
            "{} not found beside osm in {}: build them with `cargo build --release` (or --workspace)",
            absent.join(", "),
            bin.display()
        );
    }
    Ok(())
}

/// The daemon's pid, when it is running.
pub fn daemon_pid(state: &StateDir) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state.daemon_pid())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains("local\0daemon")).then_some(pid)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn make_certificates(state: &StateDir, instance: &Instance) -> anyhow::Result<()> {
    let ca = osm_controller::ca::store::DirStore::new(state.controller())
        .load_ca(ROOT_VALIDITY)
        .map_err(|e| anyhow::anyhow!("the mesh CA: {e}"))?;
    LocalTokens::load_or_create(&state.controller()).context("the local token key")?;
    let dir = state.injector();
    if !dir.join("tls.key").exists() {
        let names = vec![
            INJECTOR_SERVER_NAME.to_string(),
            format!("osm-injector.{OSM_NAMESPACE}"),
            instance.gateway().to_string(),
        ];
        let cert = ca
            .serving_cert(&names, ROOT_VALIDITY)
            .map_err(|e| anyhow::anyhow!("the injector's certificate: {e}"))?;
        write_atomic(&dir.join("tls.crt"), cert.chain_pem.as_bytes())?;
        write_atomic(&dir.join("ca.crt"), ca.root_pem().as_bytes())?;
        let key = dir.join("tls.key");
        write_atomic(&key, cert.key_pem.as_bytes())?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn seed(store: &Store) -> anyhow::Result<()> {
    let outcome = check(
        split_documents("seed", SEED).map_err(anyhow::Error::msg)?,
        None,
    );
    for object in outcome.objects {
        if store.get(&object.key)?.is_none() {
            let mut value = object.value;
            value["metadata"]["uid"] = serde_json::Value::from(format!("seed-{}", object.key.name));
            value["metadata"]["creationTimestamp"] =
                serde_json::Value::from(super::apiserver::now_rfc3339());
            store.put(&value)?;
        }
    }
    Ok(())
}

/// `osm local up`, with the add-ons `with` names (none: those it had).
pub async fn up(
    state: &StateDir,
    requested: Option<Instance>,
    with: Vec<Addon>,
) -> anyhow::Result<()> {
    let bin = bin_dir()?;
    preflight(&bin)?;
    let addons = addons::settle(
        addons::load(state).unwrap_or_default(),
        with,
        daemon_pid(state).is_some(),
    )
    .map_err(anyhow::Error::msg)?;
    if let Some(missing) = addons::missing_programs(&addons, |p| {
        on_path(p) || Path::new("/usr/bin").join(p).is_file()
    }) {
        anyhow::bail!(missing);
    }
    let instance = match (state.load_instance()?, requested) {
        (Some(existing), Some(asked)) if existing != asked => anyhow::bail!(
            "{} already holds a local mesh with other settings ({} pods {} services {}): \
             run `osm local down` first, or drop the flags",
            state.root.display(),
            existing.name,
            existing.pod_cidr,
            existing.service_cidr
        ),
        (Some(existing), _) => existing,
        (None, asked) => asked.unwrap_or_default(),
    };
    check_instance(&instance).map_err(anyhow::Error::msg)?;
    if daemon_pid(state).is_none() {
        crate::neighbours::check(state, &instance)?;
    }
    for dir in [
        state.root.clone(),
        state.api(),
        state.logs(),
        state.run(),
        state.pods(),
    ] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Only root reads it: containers see their volumes at their mount
    // paths, never the state directory (the mesh's keys are in it).
    std::fs::set_permissions(&state.root, std::fs::Permissions::from_mode(0o700))?;
    state.save_instance(&instance)?;
    addons::save(state, &addons)?;
    make_certificates(state, &instance)?;
    let store = Store::new(state.api(), state.api_lock());
    seed(&store)?;

    // The daemon this command starts is watched through its handle: right
    // after a spawn its /proc cmdline can still be empty (the kernel lets
    // the parent go before it sets up the new program's arguments), which
    // `daemon_pid` would take for a stopped daemon.
    let mut spawned = None;
    if let Some(pid) = daemon_pid(state) {
        println!("local mode is already running (daemon pid {pid})");
    } else {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.logs().join("daemon.log"))?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["local", "daemon", "--state-dir"])
            .arg(&state.root)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own session: it outlives this command and the terminal.
            .process_group(0)
            .spawn()
            .context("cannot start the local daemon")?;
        std::fs::write(state.daemon_pid(), child.id().to_string())?;
        println!("starting the local mesh (daemon pid {})", child.id());
        spawned = Some(child);
    }
    let began = Instant::now();
    while !state.ready_marker().exists() {
        let stopped = match spawned.as_mut() {
            Some(child) => child
                .try_wait()
                .context("cannot watch the local daemon")?
                .map(|status| format!(" ({status})")),
            None => daemon_pid(state).is_none().then(String::new),
        };
        if let Some(how) = stopped {
            anyhow::bail!(
                "the local daemon stopped{how}; the end of {}:\n{}",
                state.logs().join("daemon.log").display(),
                tail(&state.logs().join("daemon.log"), 20)
            );
        }
        if began.elapsed() > Duration::from_secs(120) {
            anyhow::bail!(
                "the control plane was not ready after 2 minutes; see the logs in {}",
                state.logs().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "local mesh {:?} is up: controller {} (admin {}), injector {}, pods in {}, services in {}",
        instance.name,
        instance.controller_grpc(),
        instance.controller_admin(),
        instance.injector(),
        instance.pod_cidr,
        instance.service_cidr
    );
    if addons.contains(&Addon::Prometheus) {
        println!("prometheus: http://{}", prometheus_addr(&instance));
    }
    println!("state and logs: {}", state.root.display());
    Ok(())
}

fn prometheus_addr(instance: &Instance) -> std::net::SocketAddr {
    (instance.gateway(), super::prometheus::PORT).into()
}

/// `osm local down`.
pub async fn down(state: &StateDir) -> anyhow::Result<()> {
    let Some(instance) = state.load_instance()? else {
        println!(
            "no local mesh in {}: nothing to remove",
            state.root.display()
        );
        return Ok(());
    };
    if let Some(pid) = daemon_pid(state) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let began = Instant::now();
        while daemon_pid(state).is_some() && began.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if daemon_pid(state).is_some() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    // Whatever a crashed daemon left behind.
    kill_leftovers(state, &std::collections::BTreeSet::new());
    let problems = net::teardown_host(&instance, state).await;
    let prefix = instance.netns_prefix();
    for entry in std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    std::fs::remove_dir_all(&state.root)
        .with_context(|| format!("cannot remove {}", state.root.display()))?;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    println!(
        "local mesh {:?} is down: pods, network namespaces, iptables chains and {} removed",
        instance.name,
        state.root.display()
    );
    Ok(())
}

/// `osm local restart`: the running daemon exits leaving its pods running,
/// and a new one (this binary: an upgraded `osm` takes over) adopts them.
pub async fn restart(state: &StateDir) -> anyhow::Result<()> {
    let Some(pid) = daemon_pid(state) else {
        anyhow::bail!(
            "local mode is not running in {}: start it with `osm local up`",
            state.root.display()
        );
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .with_context(|| format!("cannot signal the local daemon (pid {pid})"))?;
    let began = Instant::now();
    while daemon_pid(state).is_some() {
        if began.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "the local daemon (pid {pid}) did not stop within a minute; see {}",
                state.logs().join("daemon.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the local daemon (pid {pid}) stopped; its pods keep running");
    up(state, None, Vec::new()).await
}

/// `osm local status`: true when everything is up.
pub async fn status(state: &StateDir) -> anyhow::Result<bool> {
    let Some(instance) = state.load_instance()? else {
        println!(
            "no local mesh in {} (start one with `osm local up`)",
            state.root.display()
        );
        return Ok(false);
    };
    let timeout = Duration::from_secs(2);
    let daemon = daemon_pid(state);
    let controller = http::get(instance.controller_admin(), "/readyz", timeout)
        .await
        .is_ok_and(|a| a.status == 200);
    let injector = tokio::net::TcpStream::connect(instance.injector())
        .await
        .is_ok();
    let word = |ok: bool| if ok { "ready" } else { "NOT READY" };
    println!("local mesh {:?} in {}", instance.name, state.root.display());
    println!(
        "  daemon          {}",
        daemon.map_or("NOT RUNNING".to_string(), |p| format!("running (pid {p})"))
    );
    println!(
        "  osm-controller  {:<10} {}",
        word(controller),
        instance.controller_grpc()
    );
    println!(
        "  osm-injector    {:<10} {}",
        word(injector),
        instance.injector()
    );
    let store = Store::new(state.api(), state.api_lock());
    let pods: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|s| s.key.kind == "Pod")
        .collect();
    let ready = pods
        .iter()
        .filter(|p| {
            let (r, _, _) = ready_and_status(&p.value);
            r.split_once('/').is_some_and(|(a, b)| a == b)
        })
        .count();
    println!("  pods            {ready}/{} ready", pods.len());
    let mut addons_ready = true;
    if addons::load(state)?.contains(&Addon::Prometheus) {
        let addr = prometheus_addr(&instance);
        let ok = http::get(addr, "/-/ready", timeout)
            .await
            .is_ok_and(|a| a.status == 200);
        println!("  prometheus      {:<10} http://{addr}", word(ok));
        addons_ready = ok;
    }
    Ok(daemon.is_some() && controller && injector && addons_ready)
}
