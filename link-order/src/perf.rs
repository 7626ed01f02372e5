//! What `perf` sampled of one object: the functions a proxy runs on this
//! machine's own CPU. callgrind sees every function it runs but on a
//! virtual CPU without some of the real one's features (VAES, VPCLMULQDQ),
//! so code chosen by the CPU's features (ring's AES-GCM) is found here.
//!
//! Input: `perf script -F ip,sym,dso --no-demangle`, one sample a line:
//! `<address> <symbol> (<object path>)`.

use std::collections::HashMap;

/// Samples of every named function of the object whose path ends with
/// `object`, by symbol name.
pub fn sample_counts(script: &str, object: &str) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for line in script.lines() {
        let Some((rest, dso)) = line.trim().rsplit_once(" (") else {
            continue;
        };
        let Some(path) = dso.strip_suffix(')') else {
            continue;
        };
        if !path.ends_with(object) {
            continue;
        }
        let mut fields = rest.split_ascii_whitespace();
        let (Some(_address), Some(symbol), None) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if symbol == "[unknown]" {
            continue;
        }
        *counts.entry(symbol.to_owned()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::sample_counts;

    #[test]
    fn samples_of_one_object_by_symbol() {
        let script = "\
 ffffffff816d7cce vfs_writev ([kernel.kallsyms])
     5580786b4d6c ring_core_0_17_14__aes_gcm_enc_update_vaes_avx2 (/tmp/x/osm-proxy)
     5580786b4d70 ring_core_0_17_14__aes_gcm_enc_update_vaes_avx2 (/tmp/x/osm-proxy)
     55701e5c0adf _ZN9osm_proxy4main17h0123456789abcdefE (/tmp/x/osm-proxy)
     7f0000000000 memcpy (/usr/lib/x86_64-linux-gnu/libc.so.6)
     55701e5c0000 [unknown] (/tmp/x/osm-proxy)
 broken line (/tmp/x/osm-proxy
 two words here (/tmp/x/osm-proxy)
";
        let counts = sample_counts(script, "osm-proxy");
        let mut found: Vec<(&str, u64)> = counts.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("_ZN9osm_proxy4main17h0123456789abcdefE", 1),
                ("ring_core_0_17_14__aes_gcm_enc_update_vaes_avx2", 2),
            ]
        );
    }
}
