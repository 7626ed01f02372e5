//! SPIFFE IDs as text, certificate SANs and pod bindings (subject) as
//! DER: parsed or refused, never a panic; a parsed ID or pod binding
//! prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osm_api::identity::{PodBinding, SpiffeId, pod_binding_from_der, spiffe_id_from_der};

fuzz_target!(|data: &[u8]| {
    let _ = spiffe_id_from_der(data);
    let _ = pod_binding_from_der(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(pod) = PodBinding::from_subject_value(text)
    {
        assert_eq!(pod.subject_value(), text);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<SpiffeId>()
    {
        assert_eq!(id.to_string(), text);
        let again: SpiffeId = id.to_string().parse().expect("round trip");
        assert_eq!(again, id);
        let _ = id.dns_name();
    }
});
