//! osm-init against a real nat table, in a network namespace this test
//! creates (root required; CI runs as root: a missing privilege fails).

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

/// A network namespace removed when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("osm-init-{tag}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot create a network namespace (run as root with iproute2): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(name)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.0, program];
        all.extend_from_slice(args);
        Command::new("ip").args(all).output().unwrap()
    }

    fn init(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_osm-init"), args)
    }

    /// The nat table without iptables-save's timestamped comments.
    fn nat(&self) -> Vec<String> {
        let out = self.run("iptables-save", &["-t", "nat"]);
        assert!(
            out.status.success(),
            "iptables-save: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "osm-init failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_are_installed_once_and_replaced_when_run_again() {
    let ns = Netns::new("apply");
    let args = [
        "--exclude-inbound-ports",
        "8081,8082",
        "--exclude-outbound-ip-ranges",
        "10.0.0.0/8",
        "--pod-ip",
        "10.1.2.3",
        "--ipv6",
        "off",
    ];
    ok(&ns.init(&args));
    let first = ns.nat();
    let has = |table: &[String], line: &str| table.iter().any(|l| l == line);
    for line in [
        ":OSM_PROXY_INBOUND - [0:0]",
        "-A PREROUTING -p tcp -m comment --comment osm-init -j OSM_PROXY_INBOUND",
        "-A OUTPUT -p tcp -m comment --comment osm-init -j OSM_PROXY_OUTBOUND",
        "-A OSM_PROXY_INBOUND -p tcp -m multiport --dports 8081,8082 -j RETURN",
        "-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT",
        "-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15003",
        "-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A OSM_PROXY_OUTBOUND -m owner --uid-owner 1500 -j RETURN",
        "-A OSM_PROXY_OUTBOUND -d 10.0.0.0/8 -j RETURN",
        "-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT",
    ] {
        assert!(
            has(&first, line),
            "missing {line:?} in\n{}",
            first.join("\n")
        );
    }
    let dnat = first
        .iter()
        .position(|l| l.contains("-j DNAT --to-destination 10.1.2.3"))
        .expect("the PodIP rule");
    let jump = first
        .iter()
        .position(|l| {
            l.starts_with("-A OUTPUT -p tcp -m comment --comment osm-init -j OSM_PROXY_OUTBOUND")
        })
        .unwrap();
    assert!(dnat < jump, "the PodIP rule is at the top of OUTPUT");

    // Again with the same settings: the table is exactly the same.
    ok(&ns.init(&args));
    assert_eq!(ns.nat(), first, "a second run changes nothing");

    // With new settings the old rules are replaced, not kept beside.
    ok(&ns.init(&["--exclude-outbound-ports", "5432", "--ipv6", "off"]));
    let third = ns.nat();
    assert!(
        !third.iter().any(|l| l.contains("DNAT")),
        "PodIP rule removed"
    );
    assert!(
        !third.iter().any(|l| l.contains("8081")),
        "old exclusions removed"
    );
    assert!(has(
        &third,
        "-A OSM_PROXY_OUTBOUND -p tcp -m multiport --dports 5432 -j RETURN"
    ));
    assert_eq!(
        third
            .iter()
            .filter(|l| l.starts_with("-A PREROUTING"))
            .count(),
        1
    );
    assert_eq!(
        third.iter().filter(|l| l.starts_with("-A OUTPUT")).count(),
        1
    );

    // A dry run prints and leaves the table alone.
    let dry = ns.init(&[
        "--dry-run",
        "--ipv6",
        "off",
        "--exclude-inbound-ports",
        "9999",
    ]);
    ok(&dry);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("--dports 9999"));
    assert_eq!(ns.nat(), third);
}

#[test]
fn bad_settings_are_refused_before_anything_changes() {
    let ns = Netns::new("bad");
    let out = ns.init(&["--exclude-inbound-ports", "80,http", "--ipv6", "off"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--exclude-inbound-ports") && stderr.contains("\"http\" is not a port"),
        "{stderr}"
    );
    assert!(
        !ns.nat().iter().any(|l| l.contains("OSM_PROXY")),
        "nothing was installed"
    );
}
