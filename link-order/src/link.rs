//! The linker wrapper: finds the listed functions among the objects of one
//! link, hands their symbol names to the linker as its section order
//! (`--symbol-ordering-file`, LLD), and runs the real linker.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result, bail};

use crate::order::{self, Resolution, Symbol};

/// Runs `linker` (program and arguments) with the order of `order_file`
/// added, and says what it placed in `report` (and on stderr).
pub fn run(order_file: &Path, report: Option<&Path>, linker: &[OsString]) -> Result<ExitStatus> {
    let Some((program, args)) = linker.split_first() else {
        bail!("no linker to run: give it after `--`, e.g. `-- cc ARGS...`");
    };
    let text = std::fs::read_to_string(order_file)
        .with_context(|| format!("reading the link order {}", order_file.display()))?;
    let entries = order::parse(&text);
    if entries.is_empty() {
        bail!(
            "the link order {} lists no function: regenerate it (bench/README.md, \"Link order\")",
            order_file.display()
        );
    }
    let scanned = expand_response_files(args)?;
    let output = output_path(&scanned).context("the linker's arguments name no output (`-o`)")?;
    let archives = static_archives(program, &scanned);
    let inputs: Vec<&str> = object_inputs(&scanned)
        .into_iter()
        .chain(archives.iter().map(String::as_str))
        .filter(|path| Path::new(path).is_file())
        .collect();
    let symbols = defined_functions(&inputs)?;
    let resolution = order::resolve(&entries, &symbols);

    let mut names_file = PathBuf::from(&output);
    names_file.as_mut_os_string().push(".link-order");
    std::fs::write(&names_file, resolution.names.join("\n") + "\n")
        .with_context(|| format!("writing {}", names_file.display()))?;
    let summary = summary(order_file, &resolution, inputs.len());
    eprintln!("{summary}");
    if let Some(report) = report {
        std::fs::write(report, format!("{summary}\n"))
            .with_context(|| format!("writing {}", report.display()))?;
    }

    let mut ordering = OsString::from("-Wl,--symbol-ordering-file=");
    ordering.push(&names_file);
    Command::new(program)
        .args(args)
        .arg(ordering)
        // Functions the order lists but this link lacks are expected (code that
        // changed since the profile); the summary counts them.
        .arg("-Wl,--no-warn-symbol-ordering")
        .status()
        .with_context(|| format!("running the linker {}", program.to_string_lossy()))
}

fn summary(order_file: &Path, resolution: &Resolution, objects: usize) -> String {
    let found = resolution.exact + resolution.by_key;
    let share = found * 100 / resolution.total.max(1);
    let mut text = format!(
        "link order: {found} of {} functions of {} found ({share}%; {} by name, {} by name without hash) \
         in {objects} objects; {} symbols, {} KiB of code placed first",
        resolution.total,
        order_file.display(),
        resolution.exact,
        resolution.by_key,
        resolution.names.len(),
        resolution.bytes / 1024,
    );
    if resolution.exact * 2 < resolution.total {
        text.push_str(
            "\nwarning: the order was made from another build (a new toolchain or changed \
             dependencies): regenerate it (bench/README.md, \"Link order\")",
        );
    }
    text
}

/// The arguments with every `@file` (a response file: one argument a line,
/// backslash escapes, as rustc writes them) replaced by what it holds.
fn expand_response_files(args: &[OsString]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        match arg.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the linker's response file {path}"))?;
                out.extend(text.lines().map(unescape));
            }
            None => out.push(arg.into_owned()),
        }
    }
    Ok(out)
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// What `-o` names (`-o PATH` or `-oPATH`).
fn output_path(args: &[String]) -> Option<String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-o" {
            return args.next().cloned();
        }
        if let Some(path) = arg.strip_prefix("-o") {
            return Some(path.to_owned());
        }
    }
    None
}

/// The arguments that are objects or archives of objects.
fn object_inputs(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with('-'))
        .filter(|arg| [".o", ".a", ".rlib"].iter().any(|ext| arg.ends_with(ext)))
        .collect()
}

/// The libraries a link takes statically (`-lNAME` in a `-static` or
/// `-static-pie` link, or between `-Wl,-Bstatic` and `-Wl,-Bdynamic`): a
/// statically linked proxy carries libc's `malloc` and `memcpy`, which the
/// order places with the rest.
fn static_libraries(args: &[String]) -> Vec<&str> {
    let all_static = args
        .iter()
        .any(|arg| arg == "-static" || arg == "-static-pie");
    let mut bstatic = false;
    let mut names = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-Wl,-Bstatic" => bstatic = true,
            "-Wl,-Bdynamic" => bstatic = false,
            _ => {
                if let Some(name) = arg.strip_prefix("-l")
                    && (all_static || bstatic)
                    && !name.is_empty()
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// The `-L` directories of a link, in order.
fn search_dirs(args: &[String]) -> Vec<&str> {
    let mut dirs = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-L" {
            dirs.extend(args.next().map(String::as_str));
        } else if let Some(dir) = arg.strip_prefix("-L") {
            dirs.push(dir);
        }
    }
    dirs
}

/// Whether `path` starts as an `ar` archive does (`!<arch>`).
fn is_archive(path: &str) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"!<arch>\n")
}

/// The archives a GNU ld script names (`GROUP ( /usr/lib/libm-2.36.a
/// /usr/lib/libmvec.a )`: Debian's `libm.a` is one).
fn script_archives(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|word| word.ends_with(".a") && word.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

/// The archives the static libraries resolve to: the link's `-L`
/// directories first, then the compiler driver's own search path
/// (`-print-file-name`, which echoes the bare name when it finds nothing);
/// a linker script in their place stands for the archives it names.
fn static_archives(program: &OsString, args: &[String]) -> Vec<String> {
    let dirs = search_dirs(args);
    let found = static_libraries(args).into_iter().filter_map(|name| {
        let file = format!("lib{name}.a");
        if let Some(found) = dirs
            .iter()
            .map(|dir| Path::new(dir).join(&file))
            .find(|path| path.is_file())
        {
            return Some(found.to_string_lossy().into_owned());
        }
        let printed = Command::new(program)
            .arg(format!("-print-file-name={file}"))
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
        (path != file && Path::new(&path).is_file()).then_some(path)
    });
    found
        .flat_map(|path| {
            if is_archive(&path) {
                return vec![path];
            }
            std::fs::read_to_string(&path)
                .map(|text| script_archives(&text))
                .unwrap_or_default()
        })
        .collect()
}

/// Defined function symbols of `inputs`, read by binutils' `nm`.
fn defined_functions(inputs: &[&str]) -> Result<Vec<Symbol>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let output = Command::new("nm")
        .args(["--defined-only", "--portability", "--print-size"])
        .args(inputs)
        .output()
        .context("running nm (binutils) to read the objects' symbols")?;
    // nm fails on members that are not objects (an rlib's metadata) and still
    // lists the others, so its status says nothing here.
    Ok(parse_nm(&String::from_utf8_lossy(&output.stdout)))
}

/// `nm --portability --print-size` lines: `name type value [size]`; archive
/// and file headers (`lib.a[x.o]:`) and non-code symbols left out.
fn parse_nm(text: &str) -> Vec<Symbol> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let name = fields.next()?;
            let kind = fields.next()?;
            // `i`: an IFUNC (libc's `memset`), the resolver's code.
            if !matches!(kind, "t" | "T" | "w" | "W" | "i") {
                return None;
            }
            let _value = fields.next();
            let size = fields
                .next()
                .and_then(|size| u64::from_str_radix(size, 16).ok())
                .unwrap_or(0);
            Some(Symbol {
                name: name.to_owned(),
                size,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inputs_and_output_of_a_rustc_link_line() {
        let args = strings(&[
            "-m64",
            "/tmp/rustcX/symbols.o",
            "-Wl,--as-needed",
            "target/ship/deps/osm_proxy-1.osm_proxy.abc-cgu.0.rcgu.o",
            "/tmp/rustcX/libring-2.rlib",
            "-lgcc_s",
            "-o",
            "target/ship/deps/osm_proxy-1",
            "-Wl,--gc-sections",
        ]);
        assert_eq!(
            output_path(&args).as_deref(),
            Some("target/ship/deps/osm_proxy-1")
        );
        assert_eq!(
            object_inputs(&args),
            [
                "/tmp/rustcX/symbols.o",
                "target/ship/deps/osm_proxy-1.osm_proxy.abc-cgu.0.rcgu.o",
                "/tmp/rustcX/libring-2.rlib",
            ]
        );
        assert_eq!(
            output_path(&strings(&["-oout/bin"])).as_deref(),
            Some("out/bin")
        );
        assert_eq!(output_path(&strings(&["a.o"])), None);
    }

    #[test]
    fn static_libraries_are_those_linked_statically() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "rustc's static-pie link: every library",
                &[
                    "-Wl,-Bstatic",
                    "-lc",
                    "-lgcc_eh",
                    "-lc",
                    "-Wl,-Bdynamic",
                    "-static-pie",
                ],
                &["c", "gcc_eh"],
            ),
            (
                "a dynamic link: only those between -Bstatic and -Bdynamic",
                &["-Wl,-Bstatic", "-lfoo", "-Wl,-Bdynamic", "-lgcc_s", "-lc"],
                &["foo"],
            ),
            (
                "a dynamic link without -Bstatic: none",
                &["-lgcc_s", "-lc"],
                &[],
            ),
            ("a bare -l is no library", &["-static", "-l"], &[]),
        ];
        for (case, args, want) in cases {
            assert_eq!(static_libraries(&strings(args)), *want, "{case}");
        }
        assert_eq!(
            script_archives(
                "/* GNU ld script\n*/\nOUTPUT_FORMAT(elf64-x86-64)\n\
                 GROUP ( /usr/lib/libm-2.36.a /usr/lib/libmvec.a )\n"
            ),
            ["/usr/lib/libm-2.36.a", "/usr/lib/libmvec.a"]
        );
        assert_eq!(
            search_dirs(&strings(&["-L", "/a", "-L/b", "-lc", "-o", "x"])),
            ["/a", "/b"]
        );
    }

    #[test]
    fn response_file_lines_are_unescaped() {
        assert_eq!(unescape(r"/tmp/with\ space/a.o"), "/tmp/with space/a.o");
        assert_eq!(unescape(r"back\\slash"), r"back\slash");
        assert_eq!(unescape(r"trailing\"), "trailing");
    }

    #[test]
    fn nm_lines_give_code_symbols_with_their_sizes() {
        let text = "\
/tmp/libring.rlib[aes.o]:
ring_core_aes_encrypt T 0000000000000000 00000000000001a0
ring_core_table r 0000000000000000 0000000000000100
_ZN1a1f17h0000000000000001E t 0000000000000040 20
weak_fn W 0000000000000000
memset i 0000000000000000 0000000000000020
lonely
";
        assert_eq!(
            parse_nm(text),
            [
                Symbol {
                    name: "ring_core_aes_encrypt".into(),
                    size: 0x1a0
                },
                Symbol {
                    name: "_ZN1a1f17h0000000000000001E".into(),
                    size: 0x20
                },
                Symbol {
                    name: "weak_fn".into(),
                    size: 0
                },
                Symbol {
                    name: "memset".into(),
                    size: 0x20
                },
            ]
        );
    }
}
