//! The controller's TLS pieces: the names on its certificate, and client
//! certificate verification against a set of roots (the serving side is
//! [`super::live_tls`]).

use std::sync::Arc;

use rustls::{
    RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, pem::PemObject},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

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
