//! What a request's head becomes before any rule reads it: path
//! normalization (idempotent, and never leaving a dot segment), authority
//! normalization, regex wrapping (anchors cannot be escaped) and hop-by-hop
//! stripping. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "headers.rs"]
mod headers;
use osm_proxy::{
    http_util::strip_hop_by_hop, hygiene::normalize_path, routing::normalize_authority,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(normal) = normalize_path(text) {
        let again = normalize_path(&normal).expect("a normal path stays valid");
        assert_eq!(again, normal, "normalization is idempotent");
        assert!(
            !normal.split('/').any(|s| s == "." || s == ".."),
            "a dot segment survived: {normal}"
        );
    }
    let _ = normalize_authority(text, 80);
    if let Ok(re) = osm_api::regex::full_match_regex(text) {
        // Whatever the pattern, it matches whole values only.
        assert!(re.as_str().starts_with("^(?:") && re.as_str().ends_with(")$"));
    }
    let mut headers = headers::from_lines(text);
    strip_hop_by_hop(&mut headers, text.len() % 2 == 0);
});
