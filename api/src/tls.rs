//! TLS settings between proxies as MeshConfig names them (OSM took
//! Envoy's names) and as the proxy's TLS library (rustls) knows them. One
//! table, so what validation accepts the proxy can build.

/// Cipher suites: the names MeshConfig `sidecar.cipherSuites` accepts
/// (Envoy/OpenSSL names and the IANA TLS 1.3 names) and rustls's name.
pub const CIPHER_SUITES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ),
];

/// Key exchange groups: MeshConfig `sidecar.ecdhCurves` names and rustls's.
pub const ECDH_CURVES: &[(&str, &str)] = &[
    ("X25519", "X25519"),
    ("P-256", "secp256r1"),
    ("P-384", "secp384r1"),
];

fn lookup(table: &[(&str, &'static str)], name: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(alias, canonical)| *alias == name || *canonical == name)
        .map(|(_, canonical)| *canonical)
}

/// rustls's name of a cipher suite MeshConfig names (either name).
pub fn cipher_suite(name: &str) -> Option<&'static str> {
    lookup(CIPHER_SUITES, name)
}

/// rustls's name of a curve MeshConfig names (either name).
pub fn ecdh_curve(name: &str) -> Option<&'static str> {
    lookup(ECDH_CURVES, name)
}

/// A TLS 1.3 suite (else TLS 1.2).
pub fn is_tls13(canonical: &str) -> bool {
    canonical.starts_with("TLS13_")
}

/// A TLS 1.2 suite a mesh certificate (ECDSA) can be used with.
pub fn is_ecdsa(canonical: &str) -> bool {
    canonical.starts_with("TLS_ECDHE_ECDSA_")
}

/// MeshConfig's TLS version names the proxy speaks: "TLSv1_2" -> 2,
/// "TLSv1_3" -> 3; `TLS_AUTO`/empty -> None (both).
pub fn version(name: &str) -> Option<u8> {
    match name {
        "TLSv1_2" => Some(2),
        "TLSv1_3" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_name_finds_the_canonical_one() {
        assert_eq!(
            cipher_suite("ECDHE-ECDSA-AES128-GCM-SHA256"),
            Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(
            cipher_suite("TLS13_AES_128_GCM_SHA256"),
            Some("TLS13_AES_128_GCM_SHA256")
        );
        assert_eq!(cipher_suite("AES128-SHA"), None);
        assert_eq!(ecdh_curve("P-256"), Some("secp256r1"));
        assert_eq!(ecdh_curve("brainpool"), None);
        assert!(is_tls13("TLS13_AES_256_GCM_SHA384"));
        assert!(is_ecdsa("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"));
        assert!(!is_ecdsa("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    }
}
