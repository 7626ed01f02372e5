//! A function's names as they stay from one link to the next.
//!
//! The linker orders sections by exact symbol names. Two links of the same
//! code give a function the same name but for the `.llvm.<digits>` suffix
//! LTO gives a promoted local symbol: that name without it is the entry the
//! order keeps. Rust's names also carry hashes that change with the
//! toolchain, a dependency's version or features; a name without them (its
//! key) still finds the function in a build the order was not made from,
//! less precisely: a legacy name's path does not say which instance of a
//! generic function it is, so a key finds all of them.

/// `name` as the order keeps it: without LTO's `.llvm.<digits>` and the
/// `'<n>` callgrind appends to tell apart two functions of the same name.
pub fn entry_name(name: &str) -> &str {
    let name = strip_numbered_suffix(name, "'");
    strip_numbered_suffix(name, ".llvm.")
}

/// `name` without anything that changes between builds: its entry name
/// without a legacy Rust symbol's `17h<16 hex>E` hash or a v0 symbol's crate
/// disambiguators (`Cs<base62>_`).
pub fn stable_key(name: &str) -> String {
    let name = entry_name(name);
    if let Some(body) = name.strip_prefix("_R") {
        return format!("_R{}", without_crate_disambiguators(body));
    }
    if name.starts_with("_ZN") {
        return without_legacy_hash(name);
    }
    name.to_owned()
}

/// The key ([`stable_key`]) of a function that is not generic, from its
/// path: `osm_proxy::memory::release` -> `_ZN9osm_proxy6memory7releaseE`
/// (legacy mangling, rustc's default: each segment after its length).
pub fn key_of_path(path: &str) -> String {
    let segments: String = path
        .split("::")
        .map(|segment| format!("{}{segment}", segment.len()))
        .collect();
    format!("_ZN{segments}E")
}

/// `name` without a trailing `<marker><digits>`, if it has one.
fn strip_numbered_suffix<'a>(name: &'a str, marker: &str) -> &'a str {
    match name.rfind(marker) {
        Some(at) => {
            let digits = &name[at + marker.len()..];
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                &name[..at]
            } else {
                name
            }
        }
        None => name,
    }
}

/// `_ZN..17h0123456789abcdefE` -> `_ZN..E` (the closing `E` kept, so the
/// key is still a well-formed path).
fn without_legacy_hash(name: &str) -> String {
    const HASH: usize = "17h".len() + 16;
    let Some(body) = name.strip_suffix('E') else {
        return name.to_owned();
    };
    let Some(split) = body.len().checked_sub(HASH) else {
        return name.to_owned();
    };
    if !body.is_char_boundary(split) {
        return name.to_owned();
    }
    let (path, hash) = body.split_at(split);
    let is_hash = hash.starts_with("17h") && hash[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash && path.len() > "_ZN".len() {
        format!("{path}E")
    } else {
        name.to_owned()
    }
}

/// Every `Cs<base62>_` (a crate root's disambiguator) of a v0 symbol's body
/// becomes `C`: `NvCs1234_5alloc` -> `NvC5alloc`.
fn without_crate_disambiguators(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("Cs") {
        let after = &rest[at + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if after.as_bytes().get(digits) == Some(&b'_') {
            out.push_str(&rest[..at + 1]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::stable_key;

    #[test]
    fn keys_drop_what_changes_between_builds() {
        let cases = [
            // Legacy Rust mangling: the hash goes, the path and its `E` stay.
            (
                "_ZN9osm_proxy5state6Shared10app_parked17hbfdfab47582be1f7E",
                "_ZN9osm_proxy5state6Shared10app_parkedE",
            ),
            // ... also when LTO promoted it to a global with a suffix.
            (
                "_ZN5hyper5proto2h12io4read17h0123456789abcdefE.llvm.1234567890",
                "_ZN5hyper5proto2h12io4readE",
            ),
            // callgrind's second function of the same name.
            (
                "_ZN4core3ptr13drop_in_place17h3e417897cc0da6d6E'2",
                "_ZN4core3ptr13drop_in_placeE",
            ),
            // v0 mangling: crate disambiguators go, everything else stays.
            (
                "_RNvMs_NtCs1a2B3c_5alloc5boxedINtB4_3BoxpE14new_uninit",
                "_RNvMs_NtC5alloc5boxedINtB4_3BoxpE14new_uninit",
            ),
            ("_RNvCsAbC_3std4main", "_RNvC3std4main"),
            // C and assembly symbols have no hash.
            (
                "ring_core_0_17_14__aes_gcm_enc_update_vaes_avx2",
                "ring_core_0_17_14__aes_gcm_enc_update_vaes_avx2",
            ),
            ("memcpy", "memcpy"),
            // Not a hash: left as it is.
            ("_ZN3foo3barE", "_ZN3foo3barE"),
            ("_ZN3foo17hnothexnothexnotE", "_ZN3foo17hnothexnothexnotE"),
            // A name ending in a quote or `.llvm.` without digits is kept.
            ("name'", "name'"),
            ("name.llvm.", "name.llvm."),
        ];
        for (name, key) in cases {
            assert_eq!(stable_key(name), key, "{name}");
        }
    }

    #[test]
    fn entry_names_keep_the_hash_and_drop_the_link_suffixes() {
        let cases = [
            (
                "_ZN5hyper5proto2h12io4read17h0123456789abcdefE.llvm.1234567890",
                "_ZN5hyper5proto2h12io4read17h0123456789abcdefE",
            ),
            (
                "_ZN1a1f17h0123456789abcdefE'3",
                "_ZN1a1f17h0123456789abcdefE",
            ),
            ("memcpy", "memcpy"),
        ];
        for (name, entry) in cases {
            assert_eq!(super::entry_name(name), entry, "{name}");
        }
    }

    #[test]
    fn a_path_gives_the_key_of_its_function() {
        let name = "_ZN9osm_proxy6memory11start_pages7release17h0123456789abcdefE.llvm.7";
        assert_eq!(
            super::key_of_path("osm_proxy::memory::start_pages::release"),
            stable_key(name)
        );
        assert_ne!(
            super::key_of_path("osm_proxy::memory::release"),
            stable_key(name)
        );
    }

    #[test]
    fn two_builds_of_one_function_share_a_key() {
        let before = "_ZN5tokio7runtime4task3raw4poll17h0353fa8989a9e451E";
        let after = "_ZN5tokio7runtime4task3raw4poll17h99aa0011bb22cc33E.llvm.42";
        assert_eq!(stable_key(before), stable_key(after));
    }
}
