//! A throwaway CA and the two certificates every pair uses: the same ECDSA
//! P-256 keys and SPIFFE identities for the osm-proxy, nginx and HAProxy
//! pairs, so no pair is measured with cheaper cryptography than another.

use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, string::Ia5String,
};

/// The name the inbound side's certificate carries and the outbound side
/// checks (SNI and verification), for nginx and HAProxy.
pub const INBOUND_DNS: &str = "inbound.bench";
/// The SPIFFE identity of the inbound side (what osm-proxy checks).
pub const INBOUND_ID: &str = "spiffe://cluster.local/ns/bench/sa/inbound";
/// The SPIFFE identity of the outbound side (what the policy allows).
pub const OUTBOUND_ID: &str = "spiffe://cluster.local/ns/bench/sa/outbound";

/// Writes `ca.crt`, `server.{crt,key,pem}` and `client.{crt,key,pem}` into
/// `dir` (`.pem` = certificate then key, the form HAProxy reads).
pub fn write(dir: &Path) -> Result<()> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "osm-bench-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, ca_key)?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    // Mesh certificates carry `<sa>.<ns>.<trust domain>` as their DNS name
    // (what osm-proxy verifies); the server's also carries INBOUND_DNS.
    for (name, dns, uri) in [
        (
            "server",
            vec!["inbound.bench.cluster.local", INBOUND_DNS],
            INBOUND_ID,
        ),
        ("client", vec!["outbound.bench.cluster.local"], OUTBOUND_ID),
    ] {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, dns[0]);
        params
            .subject_alt_names
            .push(SanType::URI(Ia5String::try_from(uri.to_string())?));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &ca)?;
        let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
        std::fs::write(dir.join(format!("{name}.crt")), &cert_pem)?;
        std::fs::write(dir.join(format!("{name}.key")), &key_pem)?;
        std::fs::write(dir.join(format!("{name}.pem")), cert_pem + &key_pem)
            .with_context(|| format!("writing {name}.pem in {}", dir.display()))?;
    }
    Ok(())
}
