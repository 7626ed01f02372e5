//! A CA certificate file read as a chain: the certificate that signs (the
//! first), the intermediates above it, and the root they end in. The
//! mesh's own CA is a root alone; a user's PKI gives an intermediate whose
//! root the mesh never holds the key of: leaves then carry the
//! intermediates, and trust bundles the root.

use super::CaError;

/// The parts of a CA certificate file (PEM each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaChain {
    /// The certificate the key belongs to: it signs the mesh's leaves.
    pub signing: String,
    /// What leaves carry after themselves: the signing certificate and the
    /// intermediates above it, the root excluded. Empty when the signing
    /// certificate is the root.
    pub intermediates: String,
    /// The root the chain ends in: what proxies trust.
    pub root: String,
}

/// Splits `pem` (signing certificate first, each next one its issuer, the
/// root last) and checks it ends in a self-signed root.
pub fn read(pem: &str) -> Result<CaChain, CaError> {
    let blocks: Vec<String> = pem_blocks(pem);
    let Some(first) = blocks.first() else {
        return Err(CaError::Load(
            "the CA certificate holds no certificate".into(),
        ));
    };
    let mut parsed = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let (_, pem) = x509_parser::pem::parse_x509_pem(block.as_bytes())
            .map_err(|e| CaError::Load(format!("CA certificate {}: {e}", i + 1)))?;
        parsed.push(pem);
    }
    let certs: Vec<_> = parsed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.parse_x509()
                .map_err(|e| CaError::Load(format!("CA certificate {}: {e}", i + 1)))
        })
        .collect::<Result<_, _>>()?;
    for (i, pair) in certs.windows(2).enumerate() {
        if pair[0].issuer() != pair[1].subject() {
            return Err(CaError::Load(format!(
                "CA certificate {} ({}) is not issued by the next one ({}): list the signing \
                 certificate first, then each issuer up to the root",
                i + 1,
                pair[0].subject(),
                pair[1].subject()
            )));
        }
    }
    let last = certs.last().expect("at least one certificate");
    if last.subject() != last.issuer() {
        return Err(CaError::Load(format!(
            "the CA certificate chain ends in {}, issued by {}, which it does not hold: add the \
             root (the proxies must trust it)",
            last.subject(),
            last.issuer()
        )));
    }
    let root = blocks.last().expect("at least one certificate").clone();
    let intermediates = blocks[..blocks.len() - 1].concat();
    Ok(CaChain {
        signing: first.clone(),
        intermediates,
        root,
    })
}

/// The PEM certificate blocks of `pem`, each with its end line.
pub fn pem_blocks(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    fn ca(
        name: &str,
        issuer: Option<&rcgen::Issuer<'_, KeyPair>>,
    ) -> (String, KeyPair, CertificateParams) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert.pem(), key, params)
    }

    #[test]
    fn a_chain_is_read_signing_first_root_last() {
        let (root, root_key, root_params) = ca("user root", None);
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let (intermediate, _, _) = ca("mesh intermediate", Some(&root_issuer));

        let alone = read(&root).unwrap();
        assert_eq!(
            (alone.signing.as_str(), alone.root.as_str()),
            (root.as_str(), root.as_str())
        );
        assert!(alone.intermediates.is_empty());

        let chain = read(&format!("{intermediate}{root}")).unwrap();
        assert_eq!(chain.signing, intermediate);
        assert_eq!(chain.intermediates, intermediate);
        assert_eq!(chain.root, root);

        let no_root = read(&intermediate).unwrap_err().to_string();
        assert!(no_root.contains("add the root"), "{no_root}");
        let reversed = read(&format!("{root}{intermediate}"))
            .unwrap_err()
            .to_string();
        assert!(
            reversed.contains("is not issued by the next one"),
            "{reversed}"
        );
        assert!(read("").is_err());
    }

    #[test]
    fn a_ca_signs_with_its_own_key_only() {
        let (root, root_key, root_params) = ca("user root", None);
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let (intermediate, key, _) = ca("mesh intermediate", Some(&root_issuer));
        let chain = format!("{intermediate}{root}");
        let ca_from = |key: &KeyPair| super::super::LocalCa::from_pem(&chain, &key.serialize_pem());
        let local = ca_from(&key).unwrap();
        assert_eq!(local.root_pem(), root, "the root is what proxies trust");
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let err = ca_from(&other).unwrap_err().to_string();
        assert!(err.contains("is not the key of"), "{err}");
    }
}
