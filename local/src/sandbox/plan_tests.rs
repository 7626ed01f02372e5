use std::collections::BTreeMap;

use super::*;

/// A host described by its paths.
struct Fake(BTreeMap<PathBuf, Kind>);

impl Fake {
    fn new(entries: &[(&str, Kind)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(p, k)| (PathBuf::from(p), k.clone()))
                .collect(),
        )
    }
}

impl HostFs for Fake {
    fn kind(&self, path: &Path) -> Option<Kind> {
        if path == Path::new("/") {
            return Some(Kind::Dir);
        }
        self.0.get(path).cloned()
    }
    fn list(&self, dir: &Path) -> Vec<(OsString, Kind)> {
        self.0
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, k)| (p.file_name().unwrap().to_os_string(), k.clone()))
            .collect()
    }
}

fn host() -> Fake {
    use Kind::*;
    Fake::new(&[
        ("/bin", Link("usr/bin".into())),
        ("/usr", Dir),
        ("/usr/bin", Dir),
        ("/etc", Dir),
        ("/etc/hosts", File),
        ("/etc/passwd", File),
        ("/etc/ssl", Dir),
        ("/var", Dir),
        ("/var/run", Link("/run".into())),
        ("/var/lib", Dir),
        ("/var/lib/dpkg", Dir),
        ("/var/lib/osm-local", Dir),
        ("/var/lib/osm-local/pods/ns/web/volumes/cfg", Dir),
        ("/var/lib/osm-local/netns-hosts", File),
        ("/proc", Dir),
        ("/sys", Dir),
        ("/dev", Dir),
        ("/dev/null", Other),
        ("/dev/zero", Other),
        ("/tmp", Dir),
        ("/run", Dir),
        ("/run/netns", Dir),
        ("/opt", Dir),
        ("/opt/app", Dir),
        ("/srv.sock", Other),
    ])
}

fn mount(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        source: source.into(),
        target: target.into(),
        read_only,
    }
}

fn binds(ops: &[Op]) -> Vec<(String, String, bool)> {
    ops.iter()
        .filter_map(|op| match op {
            Op::Bind {
                source,
                target,
                read_only,
                ..
            } => Some((
                source.display().to_string(),
                target.display().to_string(),
                *read_only,
            )),
            _ => None,
        })
        .collect()
}

fn has(ops: &[Op], op: &Op) -> bool {
    ops.contains(op)
}

#[test]
fn links_resolve_on_the_host_as_the_container_will_see_them() {
    let h = host();
    assert_eq!(
        resolve(Path::new("/var/run/secrets/x"), &h),
        Path::new("/run/secrets/x")
    );
    assert_eq!(resolve(Path::new("/bin/sh"), &h), Path::new("/usr/bin/sh"));
    assert_eq!(
        resolve(Path::new("/etc/../opt/./app"), &h),
        Path::new("/opt/app")
    );
    assert_eq!(resolve(Path::new("/new/dir"), &h), Path::new("/new/dir"));
}

#[test]
fn the_host_is_read_only_and_the_state_directory_is_hidden() {
    let h = host();
    let ops = plan(&[], &[PathBuf::from("/var/lib/osm-local")], &h);
    let b = binds(&ops);
    // Top-level directories and /etc's entries, read-only, one by one.
    for path in ["/usr", "/opt", "/etc/passwd", "/etc/ssl", "/var/lib/dpkg"] {
        assert!(
            b.contains(&(path.into(), path.into(), true)),
            "{path}: {b:?}"
        );
    }
    assert!(has(
        &ops,
        &Op::Link {
            path: "/bin".into(),
            to: "usr/bin".into()
        }
    ));
    // The state directory is nowhere; /var/run stays a link.
    assert!(
        ops.iter()
            .all(|op| !format!("{op:?}").contains("osm-local")),
        "{ops:?}"
    );
    assert!(has(
        &ops,
        &Op::Link {
            path: "/var/run".into(),
            to: "/run".into()
        }
    ));
    // /var and /var/lib are made, not bound, to leave the state out.
    assert!(!b.iter().any(|(s, _, _)| s == "/var" || s == "/var/lib"));
    // Fresh /tmp and /run, the host's /proc, the pod's /sys, a small /dev.
    for (target, mode) in [
        ("/tmp", 0o1777),
        ("/run", 0o755),
        ("/dev", 0o755),
        ("/dev/shm", 0o1777),
    ] {
        assert!(
            has(
                &ops,
                &Op::Tmpfs {
                    target: target.into(),
                    mode
                }
            ),
            "{target}"
        );
    }
    assert!(has(&ops, &Op::Sysfs("/sys".into())));
    assert!(b.contains(&("/dev/null".into(), "/dev/null".into(), false)));
    assert!(
        !b.iter()
            .any(|(s, _, _)| s == "/tmp" || s == "/run" || s == "/dev")
    );
    assert!(!format!("{ops:?}").contains("srv.sock"));
}

#[test]
fn volumes_are_mounted_at_their_paths_wherever_those_are() {
    let h = host();
    let vol = "/var/lib/osm-local/pods/ns/web/volumes/cfg";
    let ops = plan(
        &[
            mount(vol, "/etc/creds", true),
            mount(vol, "/var/run/secrets/tokens", true),
            mount(vol, "/opt/app/data", false),
            mount(vol, "/usr/bin", true),
            mount("/var/lib/osm-local/netns-hosts", "/etc/hosts", true),
        ],
        &[PathBuf::from("/var/lib/osm-local")],
        &h,
    );
    let b = binds(&ops);
    // Beside /etc's own entries; under the private /run (through the link).
    assert!(has(&ops, &Op::Dir("/etc/creds".into())));
    assert!(b.contains(&(vol.into(), "/etc/creds".into(), true)));
    assert!(b.contains(&(vol.into(), "/run/secrets/tokens".into(), true)));
    // /opt/app has no "data": /opt and /opt/app are exploded, their
    // other entries still bound.
    assert!(b.contains(&(vol.into(), "/opt/app/data".into(), false)));
    assert!(!b.iter().any(|(s, _, _)| s == "/opt" || s == "/opt/app"));
    // An existing directory is a mount point as it is: /usr stays bound.
    assert!(b.contains(&("/usr".into(), "/usr".into(), true)));
    assert!(b.contains(&(vol.into(), "/usr/bin".into(), true)));
    // A file source gets a file mount point, after the host's /etc/hosts.
    let hosts_at = ops
        .iter()
        .rposition(|op| op == &Op::File("/etc/hosts".into()));
    let bind_at = b.iter().rposition(|(_, t, _)| t == "/etc/hosts");
    assert!(hosts_at.is_some() && bind_at.is_some());
    assert_eq!(b[bind_at.unwrap()].0, "/var/lib/osm-local/netns-hosts");
    // Parents before children.
    let pos = |t: &str| b.iter().position(|(_, target, _)| target == t).unwrap();
    assert!(pos("/usr") < pos("/usr/bin"));
}
