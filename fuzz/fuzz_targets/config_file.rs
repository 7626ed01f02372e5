//! A config file's text: the proxy reads a JSON file one resource at a
//! time (`parse_file`) and must accept and refuse exactly what parsing the
//! whole config does (`parse_config`), with the same resources or the same
//! message; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_proxy::config::{parse_config, parse_file, store::FileResources};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let streamed = parse_file("fuzz.json", text).map_err(|e| e.to_string());
    let whole = parse_config("fuzz.json", text)
        .map(FileResources::from_config)
        .map_err(|e| e.to_string());
    assert_eq!(streamed, whole);
});
