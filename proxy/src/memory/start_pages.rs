//! The pages of its own binary that only starting ran: which ones can be
//! given back (a pure reading of `/proc/self/smaps`), and giving them back.
//!
//! Starting a proxy runs code and reads constants that it never needs
//! again (argument parsing, the key and certificate request, the first
//! config build, the TLS setup): about 2 MB of its code, resident for the
//! proxy's life once touched. `MADV_DONTNEED` on the binary's read-only
//! mappings unmaps those pages in this process only: the page cache keeps
//! them (shared with every other proxy on the node, reclaimable), and a
//! page the proxy runs again comes back on its next touch with a minor
//! fault. A mapping the process wrote to (the relocated `.data.rel.ro`,
//! private copies of file pages) would lose its contents, so it is never
//! chosen: only mappings that cannot be written and hold no anonymous page.

use std::ops::Range;

/// One mapping of the binary that holds nothing but the file's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Releasable {
    pub addresses: Range<usize>,
    /// Its resident memory when read (KiB).
    pub resident_kib: u64,
}

/// The mappings of `binary` (its path as `/proc/self/exe` reads) in
/// `smaps` that can be released: private, not writable, no anonymous
/// page. Anything this does not understand is not chosen.
pub fn releasable(smaps: &str, binary: &str) -> Vec<Releasable> {
    let mut chosen = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        if let Some(mapping) = Mapping::parse_header(line) {
            chosen.extend(current.take().and_then(|m| m.releasable(binary)));
            current = Some(mapping);
        } else if let Some(mapping) = current.as_mut() {
            mapping.read_field(line);
        }
    }
    chosen.extend(current.and_then(|m| m.releasable(binary)));
    chosen
}

/// A mapping's header line and the fields that decide.
#[derive(Debug)]
struct Mapping {
    addresses: Range<usize>,
    /// `r-xp`: readable, writable, executable, private.
    writable: bool,
    private: bool,
    path: String,
    resident_kib: Option<u64>,
    anonymous_kib: Option<u64>,
}

impl Mapping {
    /// `start-end perms offset dev inode [path]`, as the kernel writes it.
    fn parse_header(line: &str) -> Option<Self> {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?.as_bytes();
        let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
        let path = fields.next().unwrap_or("").trim_start();
        let address = |hex: &str| {
            let digits = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
            digits
                .then(|| usize::from_str_radix(hex, 16).ok())
                .flatten()
        };
        let addresses = address(start)?..address(end)?;
        if perms.len() != 4 || addresses.is_empty() {
            return None;
        }
        Some(Self {
            addresses,
            writable: perms[1] != b'-',
            private: perms[3] == b'p',
            path: path.to_string(),
            resident_kib: None,
            anonymous_kib: None,
        })
    }

    fn read_field(&mut self, line: &str) {
        let Some((name, value)) = line.split_once(':') else {
            return;
        };
        let kib = || value.trim().strip_suffix(" kB")?.trim().parse().ok();
        match name {
            "Rss" => self.resident_kib = kib(),
            "Anonymous" => self.anonymous_kib = kib(),
            _ => {}
        }
    }

    fn releasable(self, binary: &str) -> Option<Releasable> {
        let only_the_file = self.anonymous_kib == Some(0);
        (self.path == binary && self.private && !self.writable && only_the_file).then(|| {
            Releasable {
                addresses: self.addresses,
                resident_kib: self.resident_kib.unwrap_or(0),
            }
        })
    }
}

/// Releases the pages of this process's binary that [`releasable`]
/// chooses; returns the KiB that were resident in them. Linux only.
/// Never inlined: bench/profile-link-order finds it by name in the idle
/// proxies' profiles (what they run after it is what stays resident).
#[cfg(target_os = "linux")]
#[inline(never)]
pub fn release() -> std::io::Result<u64> {
    let binary = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in releasable(&smaps, &binary.to_string_lossy()) {
        let Some(start) = std::ptr::NonNull::new(mapping.addresses.start as *mut std::ffi::c_void)
        else {
            continue;
        };
        // SAFETY: the range is a whole private mapping of the binary that
        // cannot be written and holds no anonymous page, so every page in
        // it is the file's: dropping them loses nothing, and the next
        // touch maps the same bytes again from the page cache.
        #[allow(unsafe_code)]
        unsafe {
            nix::sys::mman::madvise(
                start,
                mapping.addresses.len(),
                nix::sys::mman::MmapAdvise::MADV_DONTNEED,
            )?;
        }
        released += mapping.resident_kib;
    }
    Ok(released)
}

#[cfg(not(target_os = "linux"))]
pub fn release() -> std::io::Result<u64> {
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINARY: &str = "/usr/local/bin/osm-proxy";

    /// A mapping in smaps' shape: header, then the fields that decide.
    fn mapping(range: &str, perms: &str, path: &str, rss: u64, anonymous: u64) -> String {
        format!(
            "{range} {perms} 00000000 fe:01 1234                       {path}\n\
             Size:               1024 kB\nRss:                 {rss} kB\n\
             Anonymous:             {anonymous} kB\nVmFlags: rd mr mw me\n"
        )
    }

    #[test]
    fn only_the_binarys_unwritten_file_pages_are_chosen() {
        type Chosen = Option<(Range<usize>, u64)>;
        let cases: &[(&str, String, Chosen)] = &[
            (
                "code",
                mapping("1000-3000", "r-xp", BINARY, 700, 0),
                Some((0x1000..0x3000, 700)),
            ),
            (
                "read-only data",
                mapping("3000-4000", "r--p", BINARY, 64, 0),
                Some((0x3000..0x4000, 64)),
            ),
            (
                "relocated data: read-only now, written at start",
                mapping("4000-5000", "r--p", BINARY, 316, 316),
                None,
            ),
            (
                "writable data",
                mapping("5000-6000", "rw-p", BINARY, 8, 0),
                None,
            ),
            (
                "shared mapping",
                mapping("6000-7000", "r-xs", BINARY, 8, 0),
                None,
            ),
            (
                "another file",
                mapping("7000-8000", "r-xp", "/usr/lib/libc.so.6", 8, 0),
                None,
            ),
            (
                "a path that only begins like the binary's",
                mapping("8000-9000", "r-xp", "/usr/local/bin/osm-proxy.old", 8, 0),
                None,
            ),
            (
                "a path with more after the binary's",
                mapping(
                    "9000-a000",
                    "r-xp",
                    "/usr/local/bin/osm-proxy (deleted)",
                    8,
                    0,
                ),
                None,
            ),
            ("anonymous", mapping("a000-b000", "r-xp", "", 8, 0), None),
            (
                "no Anonymous field: not understood",
                format!("b000-c000 r-xp 00000000 fe:01 1234 {BINARY}\nRss: 8 kB\n"),
                None,
            ),
            (
                "an unreadable count: not understood",
                mapping("c000-d000", "r-xp", BINARY, 8, 0)
                    .replace("Anonymous:             0 kB", "Anonymous: zero kB"),
                None,
            ),
            (
                "an empty range",
                mapping("d000-d000", "r-xp", BINARY, 0, 0),
                None,
            ),
            (
                "signed addresses",
                mapping("+d000-+e000", "r-xp", BINARY, 8, 0),
                None,
            ),
            (
                "a range backwards",
                mapping("e000-d000", "r-xp", BINARY, 0, 0),
                None,
            ),
        ];
        for (what, smaps, expected) in cases {
            let chosen: Vec<_> = releasable(smaps, BINARY)
                .into_iter()
                .map(|r| (r.addresses, r.resident_kib))
                .collect();
            assert_eq!(
                chosen,
                expected.iter().cloned().collect::<Vec<_>>(),
                "{what}"
            );
        }
    }

    #[test]
    fn each_mapping_is_decided_by_its_own_fields() {
        let smaps = [
            mapping("1000-2000", "r--p", BINARY, 64, 0),
            mapping("2000-3000", "r--p", BINARY, 316, 316),
            mapping("3000-4000", "r-xp", BINARY, 700, 0),
        ]
        .concat();
        let chosen: Vec<_> = releasable(&smaps, BINARY)
            .into_iter()
            .map(|r| r.addresses)
            .collect();
        assert_eq!(chosen, [0x1000..0x2000, 0x3000..0x4000]);
    }

    /// A binary replaced on disk while it runs: `/proc/self/exe` and the
    /// mappings both read `PATH (deleted)`.
    #[test]
    fn a_replaced_binary_is_still_its_own() {
        let deleted = format!("{BINARY} (deleted)");
        let smaps = mapping("1000-2000", "r-xp", &deleted, 64, 0);
        assert_eq!(releasable(&smaps, &deleted).len(), 1);
    }

    /// The test binary's own code: resident before, not after, and the
    /// process goes on running it.
    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_unmaps_the_binarys_code_and_it_still_runs() {
        let resident = || {
            let binary = std::fs::read_link("/proc/self/exe").unwrap();
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            releasable(&smaps, &binary.to_string_lossy())
                .iter()
                .map(|m| m.resident_kib)
                .sum::<u64>()
        };
        let before = resident();
        assert!(before > 0, "the test binary's code is resident");
        let released = release().unwrap();
        assert!(released > 0);
        let after = resident();
        // Other tests run meanwhile and bring some of it back.
        assert!(
            after < before,
            "{after} KiB resident after, {before} before"
        );
    }
}
