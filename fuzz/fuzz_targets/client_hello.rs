//! The first bytes of a connection: protocol detection and the server
//! name of a TLS ClientHello (read without terminating TLS). Neither may
//! panic, and detection must be stable as more bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_proxy::{detect::classify, tls_sni::server_name};

fuzz_target!(|data: &[u8]| {
    let _ = server_name(data);
    if let Some(full) = classify(data) {
        // A decision on a prefix is the decision on the whole.
        for n in 1..data.len() {
            if let Some(early) = classify(&data[..n]) {
                assert_eq!(early, full, "classified differently after {n} bytes");
                break;
            }
        }
    }
});
