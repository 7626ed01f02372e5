//! What `kubectl apply -f` and the controller's file source read: any
//! YAML stream (aliases, deep nesting, huge documents) is loaded or
//! refused with its origin, and every object loaded validates without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::{load::load_str, validate::validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = load_str("fuzz.yaml", text);
    for loaded in &out.objects {
        let _ = validate(&loaded.object);
    }
});
