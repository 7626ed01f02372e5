//! What external issuers and the CA's store answer: Vault's sign and error
//! bodies, a cert-manager CertificateRequest's status, the certificate
//! either returns (checked before a proxy gets it), and the CA state read
//! back from the osm-ca-bundle Secret or ca-state.json. None may panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use osm_api::identity::SpiffeId;
use osm_controller::{
    ca::{external, rotation, vault},
    kubernetes::cert_manager,
};

fuzz_target!(|data: &[u8]| {
    let _ = vault::error_of(503, data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let identity = SpiffeId::new("cluster.local", "shop", "buyer");
    if let Ok(signed) = vault::signed_of(&value["data"]) {
        let _ = external::accept(&signed, &identity);
    }
    if let cert_manager::Outcome::Signed(signed) = cert_manager::outcome(&value) {
        let _ = external::accept(&signed, &identity);
    }
    if let Ok(data) = serde_json::from_value::<BTreeMap<String, String>>(value)
        && let Ok(stored) = rotation::decode(&data)
    {
        let _ = rotation::trust_bundle(&stored);
    }
});
