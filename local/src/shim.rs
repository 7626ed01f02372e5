//! `osm-shim`: the parent of each container process, as containerd's
//! shim is. The daemon starts the shim; the shim starts the container and
//! waits for it, then writes how it ended to an exit file. So a container
//! outlives a daemon that crashes or is upgraded, and the next daemon
//! learns its exit code even though it is not its parent.
//!
//! The shim leads the container's process group: the daemon's SIGTERM and
//! SIGKILL to the group reach the container. The shim blocks the signals
//! that would end it early, so it stays to record the exit; only SIGKILL
//! ends it with the container, and a missing exit file then means
//! "killed". The container is started with `posix_spawn` and an empty
//! signal mask: a blocked mask is inherited across exec (std's `Command`
//! passes it on), and a container must see its SIGTERM.

use std::{
    ffi::{CString, OsStr, OsString},
    io::Write as _,
    os::unix::ffi::OsStrExt as _,
    path::Path,
};

use nix::{
    spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp},
    sys::{
        signal::{SigSet, Signal},
        wait::{WaitStatus, waitpid},
    },
    unistd::Pid,
};

/// The process's exit code; 128 + the signal when a signal ended it (as
/// shells report it).
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Exit code for a container the shim could not start (as a shell's
/// "command not found").
pub const CANNOT_START: i32 = 127;

/// Exit code of `--enter` when the sandbox cannot be made (as a shell's
/// "cannot execute").
pub const CANNOT_ENTER: u8 = 126;

/// Where the shim records its container's process (pid and start time),
/// for `osm local exec` and exec probes to enter its namespaces.
pub fn process_file(exit_file: &Path) -> std::path::PathBuf {
    exit_file.with_extension("process")
}

/// Runs `program` to its end (inside `sandbox`, a spec for `--enter`,
/// when given) and records its exit code in `exit_file`; returns the code
/// to exit with.
pub fn run(
    exit_file: &Path,
    sandbox: Option<&Path>,
    program: &OsStr,
    args: impl Iterator<Item = OsString>,
) -> u8 {
    let mut held = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        held.add(signal);
    }
    if let Err(e) = held.thread_block() {
        eprintln!("osm-shim: cannot block signals: {e}");
    }
    let _ = std::fs::remove_file(exit_file);
    let started = match sandbox {
        Some(spec) => match std::env::current_exe() {
            Ok(me) => {
                let mut all = vec![OsString::from("--enter"), spec.into(), program.into()];
                all.extend(args);
                spawn(me.as_os_str(), all.into_iter())
            }
            Err(e) => Err(format!("cannot find osm-shim itself: {e}")),
        },
        None => spawn(program, args),
    };
    let code = match started.and_then(|pid| {
        if let Some(record) = crate::process_record::Record::of(pid.as_raw()) {
            let _ = std::fs::write(process_file(exit_file), record.text());
        }
        wait(pid)
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("osm-shim: cannot start {}: {e}", program.to_string_lossy());
            CANNOT_START
        }
    };
    if let Err(e) = write_exit(exit_file, code) {
        eprintln!("osm-shim: cannot record the exit code: {e}");
    }
    u8::try_from(code.clamp(0, 255)).unwrap_or(u8::MAX)
}

fn c_string(text: &OsStr) -> Result<CString, String> {
    CString::new(text.as_bytes()).map_err(|_| format!("{text:?} holds a NUL byte"))
}

/// Starts `program` (searched on PATH) with this process's environment
/// and no blocked signal.
fn spawn(program: &OsStr, args: impl Iterator<Item = OsString>) -> Result<Pid, String> {
    let path = c_string(program)?;
    let argv = std::iter::once(program.to_os_string())
        .chain(args)
        .map(|a| c_string(&a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut pair = k;
            pair.push("=");
            pair.push(v);
            c_string(&pair)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut attr = PosixSpawnAttr::init().map_err(|e| e.to_string())?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK)
        .and_then(|()| attr.set_sigmask(&SigSet::empty()))
        .map_err(|e| e.to_string())?;
    let actions = PosixSpawnFileActions::init().map_err(|e| e.to_string())?;
    posix_spawnp(&path, &actions, &attr, &argv, &env).map_err(|e| e.to_string())
}

/// Waits for the child: its exit code, 128 + the signal that ended it.
fn wait(pid: Pid) -> Result<i32, String> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

/// Writes the exit file whole or not at all (a reader never sees half).
pub fn write_exit(exit_file: &Path, code: i32) -> std::io::Result<()> {
    let tmp = exit_file.with_extension("exit.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{code}")?;
    file.sync_all()?;
    std::fs::rename(&tmp, exit_file)
}

/// The exit code a shim recorded, if it did.
pub fn read_exit(exit_file: &Path) -> Option<i32> {
    std::fs::read_to_string(exit_file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c script` through the shim, recording into `file`.
    fn sh(file: &Path, script: &str) -> u8 {
        run(
            file,
            None,
            OsStr::new("sh"),
            ["-c", script].into_iter().map(OsString::from),
        )
    }

    #[test]
    fn an_exit_file_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.exit");
        assert_eq!(read_exit(&file), None);
        write_exit(&file, 143).unwrap();
        assert_eq!(read_exit(&file), Some(143));
        assert!(!dir.path().join("app.exit.tmp").exists());
    }

    #[test]
    fn the_shim_records_the_programs_exit_code_and_exits_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.exit");
        assert_eq!((sh(&file, "exit 7"), read_exit(&file)), (7, Some(7)));
        let code = run(
            &file,
            None,
            OsStr::new("/nonexistent/program"),
            std::iter::empty(),
        );
        assert_eq!(u32::from(code), CANNOT_START as u32);
        assert_eq!(read_exit(&file), Some(CANNOT_START));
    }

    #[test]
    fn the_container_sees_the_signals_the_shim_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.exit");
        // The program reports its own blocked-signal mask: none.
        let code = sh(&file, "grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status");
        assert_eq!(code, 0, "the container inherited a blocked mask");
        let code = sh(&file, "kill -TERM $$");
        assert_eq!((code, read_exit(&file)), (143, Some(143)));
    }
}
