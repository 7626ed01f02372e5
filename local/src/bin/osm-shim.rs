//! `osm-shim EXIT_FILE PROGRAM [ARGS...]`: local mode's container shim
//! (see `osm_local::shim`). Started by the local daemon, not by users.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(exit_file), Some(program)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: osm-shim EXIT_FILE PROGRAM [ARGS...]\n\
             runs PROGRAM, waits for it and writes its exit code to EXIT_FILE \
             (local mode's daemon starts every container through it)"
        );
        return ExitCode::from(2);
    };
    ExitCode::from(osm_local::shim::run(
        &PathBuf::from(exit_file),
        &program,
        args,
    ))
}
