//! `osm-shim` as the daemon runs it: a process group led by the shim, a
//! SIGTERM to the group ends the container (which sees it: its mask is
//! clear) while the shim stays to record the exit code, and exits with it.
//! (Also makes cargo build the binary for the local-mode tests.)

use std::{os::unix::process::CommandExt as _, process::Command, time::Duration};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let began = std::time::Instant::now();
    while !check() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sigterm_to_the_group_ends_the_container_and_the_shim_records_it() {
    let dir = tempfile::tempdir().expect("a directory");
    let exit = dir.path().join("app.exit");
    let mut shim = Command::new(env!("CARGO_BIN_EXE_osm-shim"))
        .arg(&exit)
        .args(["sleep", "30"])
        .process_group(0)
        .spawn()
        .expect("osm-shim starts");
    let process = osm_local::shim::process_file(&exit);
    wait_for("the container's process record", || process.exists());
    let group = Pid::from_raw(i32::try_from(shim.id()).expect("a pid"));
    killpg(group, Signal::SIGTERM).expect("the group is signalled");
    let status = shim.wait().expect("the shim ends");
    assert_eq!(
        status.code(),
        Some(143),
        "the shim exits with the container's code"
    );
    assert_eq!(osm_local::shim::read_exit(&exit), Some(143));
}

#[test]
fn without_its_arguments_the_shim_says_how_to_call_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_osm-shim"))
        .output()
        .expect("osm-shim runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: osm-shim EXIT_FILE"));
}
