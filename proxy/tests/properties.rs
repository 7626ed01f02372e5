//! The fuzz targets' invariants as property tests, so `cargo test` keeps
//! them: request hygiene is idempotent and leaves no dot segment, protocol
//! detection does not change its mind as bytes arrive, and no parser of
//! untrusted bytes panics.

use osm_proxy::{detect::classify, hygiene::normalize_path, routing::normalize_authority, tls_sni};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e".to_string()),
            Just("%2F".to_string()),
            Just("%41".to_string()),
            Just("%".to_string()),
            Just("%25".to_string()),
            Just("a".to_string()),
            Just("books".to_string()),
            proptest::string::string_regex("[a-z0-9%._~-]{1,4}").expect("a strategy"),
        ],
        0..12,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn normal_paths_are_stable_and_free_of_dot_segments(path in path()) {
        if let Ok(normal) = normalize_path(&path) {
            let again = normalize_path(&normal);
            prop_assert_eq!(again.as_deref().ok(), Some(normal.as_ref()), "not idempotent: {}", path);
            prop_assert!(!normal.split('/').any(|s| s == "." || s == ".."), "{} -> {}", path, normal);
            prop_assert!(normal.starts_with('/'));
        }
    }

    #[test]
    fn detection_decides_once(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Some(full) = classify(&bytes) {
            let first = (1..=bytes.len()).find_map(|n| classify(&bytes[..n]));
            prop_assert_eq!(first, Some(full));
        }
    }

    #[test]
    fn untrusted_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = tls_sni::server_name(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = normalize_authority(&text, 80);
        let _ = normalize_path(&text);
    }
}
