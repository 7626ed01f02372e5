//! What the proxy reads of its own `/proc/self/status`: the resident pages
//! mapped from files, counted by the kernel (no walk of the page tables,
//! unlike smaps), which for one static binary are its own pages.

/// The `RssFile:` line's KiB; `None` when there is no such line or it is
/// not `<digits> kB` (strict: a number read wrong would decide a release).
pub fn resident_file_kib(status: &str) -> Option<u64> {
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix("RssFile:"))?
        .trim();
    let digits = value.strip_suffix(" kB")?.trim_start();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rss_file_line_is_read_strictly() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "Name:\tosm-proxy\nRssAnon:\t     500 kB\nRssFile:\t    1234 kB\n",
                Some(1234),
            ),
            ("RssFile:\t0 kB", Some(0)),
            ("RssFile: 18446744073709551615 kB", Some(u64::MAX)),
            ("RssFile: 18446744073709551616 kB", None),
            ("RssAnon:\t500 kB\n", None),
            ("", None),
            ("RssFile:\t1234\n", None),
            ("RssFile:\t1234 MB\n", None),
            ("RssFile:\t-12 kB\n", None),
            ("RssFile:\t+12 kB\n", None),
            ("RssFile:\t kB\n", None),
            ("RssFile:\t1 2 kB\n", None),
            ("VmRssFile:\t12 kB\nRssFile:\t7 kB\n", Some(7)),
            ("RssFile:\t3 kB\nRssFile:\t4 kB\n", Some(3)),
        ];
        for (status, want) in cases {
            assert_eq!(resident_file_kib(status), *want, "{status:?}");
        }
    }

    #[test]
    fn this_process_has_resident_file_pages() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(
            resident_file_kib(&status).is_some_and(|kib| kib > 0),
            "{status}"
        );
    }
}
