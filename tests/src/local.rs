//! Drives `osm local` as a user would, through the real `osm` binary and
//! the binaries beside it, for the network-namespace end-to-end tests.
//! Needs root, iproute2, iptables and redis-server; without them the
//! tests fail (they do not skip).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use osm_local::runtime::deployments::owned_by;
use serde_json::Value;

/// The binaries local mode runs; all come from this workspace.
const BINARIES: &[&str] = &[
    "osm",
    "osm-controller",
    "osm-injector",
    "osm-proxy",
    "osm-init",
    "osm-shim",
    "bookbuyer",
    "bookthief",
    "bookstore",
    "bookwarehouse",
    "httpget",
    "osm-echo",
    "soak-client",
];

/// target/<profile>/, where cargo put the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    for b in BINARIES {
        assert!(
            dir.join(b).is_file(),
            "{} is missing: build the workspace binaries first (cargo build --workspace --bins, \
             or cargo test --workspace --all-targets)",
            dir.join(b).display()
        );
    }
    dir
}

/// A local mesh of its own (name and address ranges apart from a user's
/// default one), brought down when dropped.
pub struct LocalMesh {
    state: tempfile::TempDir,
    bin: PathBuf,
    pub name: String,
    down: bool,
}

/// Whether a stored pod's Ready condition is True.
pub fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The entries of `dir` (such as `/run/netns`) whose names start with
/// `prefix`: what a local mesh left there.
pub fn entries_named(dir: &str, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Polls `check` every 100 ms until it gives a value, or None after
/// `timeout`.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let began = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if began.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `check` every 100 ms until it gives a value, failing after
/// `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, check)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for: {what}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl LocalMesh {
    pub fn up(name: &str, pod_cidr: &str, service_cidr: &str) -> Self {
        Self::up_with(name, pod_cidr, service_cidr, &[])
    }

    /// `osm local up` with more arguments (`--with prometheus`).
    pub fn up_with(name: &str, pod_cidr: &str, service_cidr: &str, more: &[&str]) -> Self {
        let mesh = Self {
            state: tempfile::tempdir().expect("a temporary directory"),
            bin: bin_dir(),
            name: name.into(),
            down: false,
        };
        let mut args = vec![
            "local",
            "up",
            "--name",
            name,
            "--pod-cidr",
            pod_cidr,
            "--service-cidr",
            service_cidr,
        ];
        args.extend_from_slice(more);
        mesh.ok(&args);
        mesh
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Runs `osm ARGS` against this mesh.
    pub fn osm(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("osm"))
            .args(args)
            .env("OSM_LOCAL_STATE_DIR", self.state.path())
            .output()
            .expect("osm runs")
    }

    /// Runs `osm ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.osm(args);
        assert!(
            out.status.success(),
            "osm {}: {}",
            args.join(" "),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn with_file(&self, verb: &str, yaml: &str) -> String {
        let file = self
            .state
            .path()
            .join(format!("input-{}.yaml", fastrand::u64(..)));
        std::fs::write(&file, yaml).expect("write the input");
        let out = self.ok(&["local", verb, "-f", file.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(file);
        out
    }

    pub fn apply(&self, yaml: &str) -> String {
        self.with_file("apply", yaml)
    }

    pub fn delete(&self, yaml: &str) -> String {
        self.with_file("delete", yaml)
    }

    /// `osm local apply -f` a file of the repository.
    pub fn apply_file(&self, repo_path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(repo_path);
        self.ok(&["local", "apply", "-f", path.to_str().expect("utf-8 path")])
    }

    pub fn delete_file(&self, repo_path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(repo_path);
        self.ok(&["local", "delete", "-f", path.to_str().expect("utf-8 path")])
    }

    /// `osm local exec`: (exit code, stdout, stderr).
    pub fn exec(&self, namespace: &str, target: &str, command: &[&str]) -> (i32, String, String) {
        let mut args = vec!["local", "exec", "-n", namespace, target, "--"];
        args.extend_from_slice(command);
        let out = self.osm(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The stored pod objects of a namespace.
    pub fn pods(&self, namespace: &str) -> Vec<Value> {
        let out = self.ok(&["local", "get", "pods", "-n", namespace, "-o", "json"]);
        let list: Value = serde_json::from_str(&out).expect("get -o json prints JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The first pod of a Deployment.
    pub fn pod_of(&self, namespace: &str, deployment: &str) -> Option<Value> {
        self.pods(namespace)
            .into_iter()
            .find(|p| owned_by(p, deployment))
    }

    /// Every pod of a Deployment, by name.
    pub fn pods_of(&self, namespace: &str, deployment: &str) -> Vec<String> {
        self.pods(namespace)
            .into_iter()
            .filter(|p| owned_by(p, deployment))
            .filter_map(|p| Some(p.pointer("/metadata/name")?.as_str()?.to_string()))
            .collect()
    }

    fn netns_of(&self, namespace: &str, deployment: &str) -> Option<String> {
        let pod = self.pod_of(namespace, deployment)?;
        let name = pod.pointer("/metadata/name")?.as_str()?;
        Some(format!("{}.{namespace}.{name}", self.name))
    }

    /// GET on the loopback of a pod named directly.
    pub fn named_pod_get(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
        path: &str,
    ) -> Option<String> {
        let netns = format!("{}.{namespace}.{pod}", self.name);
        match osm_local::netns_http::get(&netns, port, path, Duration::from_secs(2)) {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }

    /// GET on a pod's loopback (what a port-forward reaches).
    pub fn pod_get(
        &self,
        namespace: &str,
        deployment: &str,
        port: u16,
        path: &str,
    ) -> Option<String> {
        let netns = self.netns_of(namespace, deployment)?;
        match osm_local::netns_http::get(&netns, port, path, Duration::from_secs(2)) {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }

    /// An app's `/counters`.
    pub fn counters(&self, namespace: &str, deployment: &str, port: u16) -> Option<Value> {
        serde_json::from_str(&self.pod_get(namespace, deployment, port, "/counters")?).ok()
    }

    /// The pid files of every running container.
    pub fn container_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let mut stack = vec![
            self.state.path().join("pods"),
            self.state.path().join("run"),
        ];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "pid")
                    && let Some(pid) = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.split_whitespace().next()?.parse().ok())
                {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// `osm local down`, checked.
    pub fn down(mut self) -> String {
        self.down = true;
        self.ok(&["local", "down"])
    }
}

impl Drop for LocalMesh {
    fn drop(&mut self) {
        if !self.down {
            let out = self.osm(&["local", "down"]);
            if !out.status.success() {
                eprintln!("osm local down: {}", text(&out));
            }
        }
    }
}
