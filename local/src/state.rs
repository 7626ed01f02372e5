//! Where local mode keeps everything, and the names it gives to what it
//! creates on the host (bridge, network namespaces, iptables chains), so
//! `osm local down` can find and remove all of it.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The default state directory (overridden by `--state-dir` or
/// `OSM_LOCAL_STATE_DIR`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/osm-local";
pub use osm_api::compat::{
    CONTROLLER_ADMIN_PORT, CONTROLLER_GRPC_PORT, CONTROLLER_WEBHOOK_PORT,
    DEFAULT_MESH_NAME as MESH_NAME, DEFAULT_OSM_NAMESPACE as OSM_NAMESPACE, INJECTOR_PORT,
};
/// The name the injector's certificate carries and the runtime checks.
pub const INJECTOR_SERVER_NAME: &str = "osm-injector.osm-system.svc";

/// One local mesh: its name (a prefix of everything it makes on the host)
/// and its address ranges. Fixed by the first `osm local up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    pub pod_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
}

impl Default for Instance {
    fn default() -> Self {
        Self {
            name: "osm".into(),
            pod_cidr: "10.213.0.0/16".parse().expect("valid literal"),
            service_cidr: "10.214.0.0/16".parse().expect("valid literal"),
        }
    }
}

/// Why an instance's settings cannot be used.
pub fn check_instance(instance: &Instance) -> Result<(), String> {
    let name = &instance.name;
    // Interface names are at most 15 bytes: "<name>-" plus 8 hex digits.
    if name.is_empty()
        || name.len() > 6
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "--name {name:?}: 1 to 6 lowercase letters or digits (it prefixes interface names)"
        ));
    }
    for (flag, net) in [
        ("--pod-cidr", instance.pod_cidr),
        ("--service-cidr", instance.service_cidr),
    ] {
        if net.prefix_len() > 24 {
            return Err(format!("{flag} {net}: needs at least a /24"));
        }
    }
    if instance.pod_cidr.contains(&instance.service_cidr.network())
        || instance.service_cidr.contains(&instance.pod_cidr.network())
    {
        return Err(format!(
            "--pod-cidr {} and --service-cidr {} overlap",
            instance.pod_cidr, instance.service_cidr
        ));
    }
    Ok(())
}

impl Instance {
    /// The host side of the pod network: the bridge's address, the pods'
    /// default route and where the control plane listens.
    pub fn gateway(&self) -> Ipv4Addr {
        first_host(self.pod_cidr)
    }

    pub fn bridge(&self) -> String {
        format!("{}-br", self.name)
    }

    /// The network namespace of a pod.
    pub fn netns(&self, namespace: &str, pod: &str) -> String {
        format!("{}.{namespace}.{pod}", self.name)
    }

    /// The prefix every network namespace of this instance starts with.
    pub fn netns_prefix(&self) -> String {
        format!("{}.", self.name)
    }

    /// The host end of a pod's veth pair (at most 15 bytes).
    pub fn host_veth(&self, pod_uid: &str) -> String {
        let digest: String = pod_uid
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(8)
            .collect();
        format!("{}-{digest}", self.name)
    }

    /// An iptables chain of this instance (at most 28 bytes).
    pub fn chain(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name.to_uppercase())
    }

    pub fn controller_grpc(&self) -> std::net::SocketAddr {
        (self.gateway(), CONTROLLER_GRPC_PORT).into()
    }

    pub fn controller_admin(&self) -> std::net::SocketAddr {
        (self.gateway(), CONTROLLER_ADMIN_PORT).into()
    }

    pub fn controller_webhook(&self) -> std::net::SocketAddr {
        (self.gateway(), CONTROLLER_WEBHOOK_PORT).into()
    }

    pub fn injector(&self) -> std::net::SocketAddr {
        (self.gateway(), INJECTOR_PORT).into()
    }
}

fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// The layout of the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    /// The root made absolute: containers run from `/` and their
    /// sandboxes name host paths.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    pub fn instance_file(&self) -> PathBuf {
        self.root.join("instance.json")
    }
    /// The objects applied, one file each: what the controller and the
    /// injector read as the cluster's state.
    pub fn api(&self) -> PathBuf {
        self.root.join("api")
    }
    pub fn api_lock(&self) -> PathBuf {
        self.root.join("api.lock")
    }
    /// The controller's CA and the key local tokens are signed with.
    pub fn controller(&self) -> PathBuf {
        self.root.join("controller")
    }
    /// The trust bundle the controller sends proxies (every root during
    /// a root rotation), which the injector puts into pods; `ca.crt` in a
    /// state directory from before rotations.
    pub fn trust_bundle(&self) -> PathBuf {
        let bundle = self
            .controller()
            .join(osm_controller::ca::store::BUNDLE_FILE);
        if bundle.exists() {
            bundle
        } else {
            self.controller().join("ca.crt")
        }
    }
    /// The root the injector's own certificate was signed with (the root
    /// at `up`; a rotation of the mesh root does not touch local mode's
    /// injector, which only this machine calls).
    pub fn injector_ca(&self) -> PathBuf {
        let own = self.injector().join("ca.crt");
        if own.exists() {
            own
        } else {
            self.controller().join("ca.crt")
        }
    }
    pub fn injector(&self) -> PathBuf {
        self.root.join("injector")
    }
    /// Per pod: volumes, logs and process ids.
    pub fn pods(&self) -> PathBuf {
        self.root.join("pods")
    }
    pub fn pod_dir(&self, namespace: &str, pod: &str) -> PathBuf {
        self.pods().join(namespace).join(pod)
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Process ids of the daemon and the control plane, the ready marker,
    /// what the host looked like before.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    fn host_path_marker(&self) -> PathBuf {
        self.root.join("allow-host-path")
    }
    /// Whether pods may mount hostPath volumes (`up --allow-host-path`,
    /// until `down`).
    pub fn host_path_allowed(&self) -> bool {
        self.host_path_marker().exists()
    }
    pub fn allow_host_path(&self) -> std::io::Result<()> {
        std::fs::write(
            self.host_path_marker(),
            b"allowed by `osm local up --allow-host-path`\n",
        )
    }
    pub fn daemon_pid(&self) -> PathBuf {
        self.run().join("daemon.pid")
    }
    pub fn ready_marker(&self) -> PathBuf {
        self.run().join("ready")
    }

    pub fn load_instance(&self) -> anyhow::Result<Option<Instance>> {
        let path = self.instance_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is damaged", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save_instance(&self, instance: &Instance) -> anyhow::Result<()> {
        write_atomic(
            &self.instance_file(),
            serde_json::to_string_pretty(instance)?.as_bytes(),
        )
    }

    /// The instance, or the advice to run `osm local up` first.
    pub fn require_instance(&self) -> anyhow::Result<Instance> {
        self.load_instance()?.with_context(|| {
            format!(
                "local mode is not set up in {}: run `osm local up` first",
                self.root.display()
            )
        })
    }
}

/// Writes a file so readers see either the old or the new content: a
/// temporary file beside it (not ending in .yaml, so watchers skip it),
/// then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a path without a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("a path without a file name")?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limits() {
        let i = Instance {
            name: "abcdef".into(),
            ..Instance::default()
        };
        assert!(i.host_veth("0123456789abcdef-0000").len() <= 15);
        assert_eq!(i.host_veth("01234567-89ab"), "abcdef-01234567");
        assert!(i.chain("SVC-0123456789abcdef").len() <= 28);
        assert_eq!(i.bridge(), "abcdef-br");
        assert_eq!(i.gateway(), "10.213.0.1".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn bad_instances_are_explained() {
        let bad_name = Instance {
            name: "Osm-1".into(),
            ..Instance::default()
        };
        assert!(check_instance(&bad_name).unwrap_err().contains("--name"));
        let overlap = Instance {
            service_cidr: "10.213.128.0/17".parse().unwrap(),
            ..Instance::default()
        };
        assert!(check_instance(&overlap).unwrap_err().contains("overlap"));
        assert!(check_instance(&Instance::default()).is_ok());
    }
}
