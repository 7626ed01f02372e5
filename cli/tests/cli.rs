//! The osm binary's own behaviour without root: help, and what it says
//! when local mode is not set up or the input is wrong.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn osm(args: &[&str], state: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_osm"))
        .args(args)
        .env("OSM_LOCAL_STATE_DIR", state)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_local_verb() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = osm(&["local", "--help"], dir.path());
    assert_eq!(code, 0);
    for verb in [
        "up", "down", "status", "apply", "delete", "get", "logs", "exec", "demo",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(verb)),
            "{verb} missing:\n{out}"
        );
    }
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("daemon")),
        "the internal verb is hidden:\n{out}"
    );
    let (code, out, _) = osm(&["version", "--client-only"], dir.path());
    assert_eq!(
        (code, out.trim()),
        (0, concat!("osm ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn commands_say_to_run_up_first() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = osm(&["local", "get", "pods"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("local mode is not set up in") && err.contains("osm local up"),
        "{err}"
    );
    let (code, out, _) = osm(&["local", "status"], dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("no local mesh"), "{out}");
    let (code, out, _) = osm(&["local", "down"], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn invalid_input_is_refused_with_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("split.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: shop}\n\
         spec: {service: web, backends: [{service: web-v1, weight: -5}]}\n",
    )
    .unwrap();
    let (code, _, err) = osm(
        &["local", "apply", "-f", file.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
    assert!(
        err.contains("split.yaml: document 2 (TrafficSplit shop/s)"),
        "{err}"
    );
    let (code, _, err) = osm(&["local", "exec", "web"], dir.path());
    assert_eq!(code, 2, "exec without a command is a usage error: {err}");
}
