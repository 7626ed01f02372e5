//! The gRPC server's TLS: the controller's own certificate from the mesh
//! CA, and optional client certificates verified against the mesh root.

use std::sync::Arc;

use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

use crate::ca::ServingCert;

/// The names the controller's certificate carries by default: its Service
/// in `osm_namespace` under every name a pod may use, and loopback for
/// local mode and tests.
pub fn default_server_names(osm_namespace: &str) -> Vec<String> {
    let svc = "osm-controller";
    vec![
        format!("{svc}.{osm_namespace}.svc"),
        svc.to_string(),
        format!("{svc}.{osm_namespace}"),
        format!("{svc}.{osm_namespace}.svc.cluster.local"),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ]
}

fn parse(
    cert: &ServingCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    osm_serve::parse_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes())
}

/// A rustls server config presenting `cert`, accepting callers with or
/// without a client certificate (one that is presented must chain to
/// `trust_bundle_pem`), speaking HTTP/2 only.
pub fn server_config(
    cert: &ServingCert,
    trust_bundle_pem: &str,
) -> Result<Arc<ServerConfig>, String> {
    verifying_clients(cert, ("trust bundle", trust_bundle_pem), false, &[b"h2"])
}

/// A rustls server config presenting `cert` that verifies client
/// certificates against the roots in `roots` ((what they are, PEM)): a
/// client must present one when `required`. Offers `alpn`.
pub fn verifying_clients(
    cert: &ServingCert,
    roots: (&str, &str),
    required: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(&provider, roots, required)?;
    let (chain, key) = parse(cert)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("serving certificate: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Verifies client certificates against the roots in `roots` ((what they
/// are, PEM)); a client must present one when `required`.
pub fn client_verifier(
    provider: &Arc<CryptoProvider>,
    (what, roots_pem): (&str, &str),
    required: bool,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for root in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots
            .add(root.map_err(|e| format!("{what}: {e}"))?)
            .map_err(|e| format!("{what}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{what}: no certificate in it"));
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|e| format!("client verifier: {e}"))
}
