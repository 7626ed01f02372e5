//! The osm-controller binary: its help, and what it says when neither
//! mode is chosen.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn help_explains_both_modes() {
    let out = Command::new(env!("CARGO_BIN_EXE_osm-controller"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--kubernetes",
        "--state-dir",
        "--manifests",
        "--grpc-listen",
        "--admin-listen",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn a_mode_must_be_chosen() {
    let out = Command::new(env!("CARGO_BIN_EXE_osm-controller"))
        .env_remove("OSM_STATE_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--state-dir"), "{err}");
}
