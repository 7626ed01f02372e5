//! The wrapper as a linker: a small C program linked through
//! `osm-link-order link` with the LLD that rustc ships (as rustc links the
//! proxy) has its functions in the order's order, whatever their order in
//! the source, and the report counts what was found; linked statically,
//! libc's functions are placed too.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = r#"
int first_in_source(int x) { return x * 3 + 1; }
int second_in_source(int x) { return x * 5 + 2; }
int third_in_source(int x) { return x * 7 + 3; }
#include <string.h>
int main(int argc, char **argv) {
    return first_in_source(argc) + second_in_source(argc) + third_in_source(argc)
        + (int)strlen(argv[0]) == 0;
}
"#;

/// rustc's own LLD, as `cc -fuse-ld=lld` finds it through `-B`.
fn rust_lld_dir() -> PathBuf {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .expect("rustc on PATH");
    let libdir = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    libdir.parent().unwrap().join("bin").join("gcc-ld")
}

/// The addresses of the program's functions, and of `strlen` when it is
/// in the binary (a static link).
fn addresses(binary: &Path) -> Vec<(String, u64)> {
    let output = Command::new("nm")
        .args(["--defined-only", "--portability"])
        .arg(binary)
        .output()
        .expect("nm (binutils)");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            fields.next()?;
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            (name.ends_with("_in_source") || name == "strlen").then(|| (name.to_owned(), address))
        })
        .collect()
}

fn link(dir: &Path, order: &str, extra: &[&str]) -> (Vec<String>, String) {
    let object = dir.join("program.o");
    let order_file = dir.join("order.txt");
    let report = dir.join("report.txt");
    let binary = dir.join("program");
    std::fs::write(&order_file, order).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_osm-link-order"))
        .arg("link")
        .arg("--order")
        .arg(&order_file)
        .arg("--report")
        .arg(&report)
        .arg("--")
        .arg("cc")
        .arg("-B")
        .arg(rust_lld_dir())
        .arg("-fuse-ld=lld")
        .arg(&object)
        .args(extra)
        .arg("-o")
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success(), "the link failed: {status}");
    let mut found = addresses(&binary);
    found.sort_by_key(|(_, address)| *address);
    (
        found.into_iter().map(|(name, _)| name).collect(),
        std::fs::read_to_string(report).unwrap(),
    )
}

fn compile(dir: &Path) {
    std::fs::write(dir.join("program.c"), SOURCE).unwrap();
    let status = Command::new("cc")
        .args(["-O1", "-fPIE", "-ffunction-sections", "-c"])
        .arg(dir.join("program.c"))
        .arg("-o")
        .arg(dir.join("program.o"))
        .status()
        .expect("cc");
    assert!(status.success());
}

#[test]
fn functions_are_laid_out_in_the_orders_order() {
    let dir = tempfile::tempdir().unwrap();
    compile(dir.path());

    let (layout, report) = link(
        dir.path(),
        "# comment\nthird_in_source\nnot_in_this_link\nfirst_in_source\n",
        &[],
    );
    assert_eq!(
        layout,
        ["third_in_source", "first_in_source", "second_in_source"]
    );
    assert!(
        report.starts_with("link order: 2 of 3 functions"),
        "report: {report}"
    );

    let (layout, _) = link(
        dir.path(),
        "second_in_source\nthird_in_source\nfirst_in_source\n",
        &[],
    );
    assert_eq!(
        layout,
        ["second_in_source", "third_in_source", "first_in_source"]
    );
}

/// A static link takes libc from its archive, which the link line names
/// only as `-lc`: the wrapper finds it there and places its functions.
#[test]
fn libc_functions_are_placed_in_a_static_link() {
    let dir = tempfile::tempdir().unwrap();
    compile(dir.path());
    let (layout, report) = link(
        dir.path(),
        "strlen\nsecond_in_source\n",
        &["-static-pie", "-Wl,-Bstatic", "-lc"],
    );
    assert_eq!(layout[..2], ["strlen", "second_in_source"], "{layout:?}");
    assert!(
        report.starts_with("link order: 2 of 2 functions"),
        "report: {report}"
    );
}

#[test]
fn an_empty_order_is_refused_before_linking() {
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order.txt");
    std::fs::write(&order, "# nothing\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_osm-link-order"))
        .arg("link")
        .arg("--order")
        .arg(&order)
        .args(["--", "cc", "-o", "never"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lists no function"), "stderr: {stderr}");
}
