use super::*;

fn instance(name: &str, pods: &str, services: &str) -> Instance {
    Instance {
        name: name.into(),
        pod_cidr: pods.parse().unwrap(),
        service_cidr: services.parse().unwrap(),
    }
}

#[test]
fn meshes_clash_by_name_or_by_any_overlapping_range() {
    let ours = instance("ibench", "10.233.0.0/16", "10.234.0.0/16");
    let cases = [
        (instance("soak", "10.235.0.0/16", "10.236.0.0/16"), None),
        (
            instance("ibench", "10.235.0.0/16", "10.236.0.0/16"),
            Some("it has the same --name ibench"),
        ),
        (
            instance("osm", "10.233.128.0/17", "10.236.0.0/16"),
            Some("its pod range 10.233.128.0/17 overlaps this mesh's pod range 10.233.0.0/16"),
        ),
        (
            instance("osm", "10.232.0.0/16", "10.0.0.0/8"),
            Some("its service range 10.0.0.0/8 overlaps this mesh's pod range 10.233.0.0/16"),
        ),
        (
            instance("osm", "10.234.5.0/24", "10.236.0.0/16"),
            Some("its pod range 10.234.5.0/24 overlaps this mesh's service range 10.234.0.0/16"),
        ),
        (instance("osm", "10.213.0.0/16", "10.214.0.0/16"), None),
    ];
    for (theirs, want) in cases {
        assert_eq!(clash(&ours, &theirs).as_deref(), want, "{theirs:?}");
    }
}

#[test]
fn a_daemons_state_directory_is_read_from_its_command_line() {
    let cases: [(&[u8], Option<&str>); 5] = [
        (
            b"/usr/bin/osm\0local\0daemon\0--state-dir\0/tmp/x\0",
            Some("/tmp/x"),
        ),
        (
            b"osm\0local\0daemon\0--state-dir\0/var/lib/osm-local",
            Some("/var/lib/osm-local"),
        ),
        (b"osm\0local\0up\0--state-dir\0/tmp/x\0", None),
        (b"osm\0local\0daemon\0", None),
        (b"osm-controller\0--state-dir\0/tmp/x/controller\0", None),
    ];
    for (cmdline, want) in cases {
        assert_eq!(
            daemon_state_dir(cmdline),
            want.map(PathBuf::from),
            "{}",
            String::from_utf8_lossy(cmdline)
        );
    }
}
