//! `osm-shim EXIT_FILE [--sandbox SPEC] PROGRAM [ARGS...]`: local mode's
//! container shim (see `osm_local::shim`), and `osm-shim --enter SPEC
//! PROGRAM [ARGS...]`, the container's side of it (see
//! `osm_local::sandbox`). Started by the local daemon, not by users.

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

const USAGE: &str = "usage: osm-shim EXIT_FILE [--sandbox SPEC] PROGRAM [ARGS...]\n\
    runs PROGRAM (inside the sandbox SPEC describes), waits for it and writes its exit code \
    to EXIT_FILE; local mode's daemon starts every container through it";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [flag, spec, program, rest @ ..] if flag == "--enter" => {
            let why = osm_local::sandbox::enter_and_exec(&PathBuf::from(spec), program, rest);
            eprintln!("osm-shim: {why}");
            ExitCode::from(osm_local::shim::CANNOT_ENTER)
        }
        [exit_file, flag, spec, program, rest @ ..] if flag == "--sandbox" => {
            ExitCode::from(osm_local::shim::run(
                &PathBuf::from(exit_file),
                Some(&PathBuf::from(spec)),
                program,
                rest.iter().cloned(),
            ))
        }
        [exit_file, program, rest @ ..] if !exit_file.to_string_lossy().starts_with('-') => {
            ExitCode::from(osm_local::shim::run(
                &PathBuf::from(exit_file),
                None,
                program,
                rest.iter().cloned(),
            ))
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
