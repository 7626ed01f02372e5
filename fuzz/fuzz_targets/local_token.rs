//! Local-mode tokens as a pod (or an attacker) presents them: checked or
//! refused, never a panic, and never accepted unless signed with the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_controller::token::LocalTokens;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let tokens = LocalTokens::from_key(b"the fuzzer does not know this key");
    assert!(tokens.check(token).is_err(), "a forged token was accepted");
});
