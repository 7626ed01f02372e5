//! The osm-proxy binary: its help, and a clear refusal of a config it
//! cannot read (before it listens anywhere).

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn help_names_both_ways_of_running() {
    let out = Command::new(env!("CARGO_BIN_EXE_osm-proxy"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--controller",
        "--config",
        "--controller-ca",
        "--token-file",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn an_unreadable_config_is_refused_with_its_path() {
    let dir = std::env::temp_dir().join(format!("osm-proxy-bin-{}", std::process::id()));
    let missing = dir.join("missing.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_osm-proxy"))
        .args(["--config", missing.to_str().unwrap()])
        .args([
            "--inbound-listen",
            "127.0.0.1:0",
            "--outbound-listen",
            "127.0.0.1:0",
        ])
        .args(["--admin", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.yaml"), "{err}");
}
