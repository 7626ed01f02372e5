//! Which TLS versions, cipher suites and key exchange groups the proxies
//! use between each other (MeshConfig `sidecar.tlsMinProtocolVersion`,
//! `tlsMaxProtocolVersion`, `cipherSuites`, `ecdhCurves`), as a rustls
//! crypto provider and version list. Names are rustls's
//! (`osm_api::tls` translates MeshConfig's).

use std::sync::Arc;

use osm_api::v1;
use rustls::{SupportedProtocolVersion, crypto::CryptoProvider, version};

/// The settings, checked; the default is rustls's safe defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsPolicy {
    /// 2 (TLS 1.2) or 3 (TLS 1.3).
    pub min: Option<u8>,
    pub max: Option<u8>,
    pub cipher_suites: Vec<String>,
    pub ecdh_curves: Vec<String>,
}

impl TlsPolicy {
    pub fn from_config(m: &v1::MeshSettings) -> Result<Self, String> {
        let version = |field: &str, v: &str| match v {
            "" => Ok(None),
            "TLSv1_2" => Ok(Some(2)),
            "TLSv1_3" => Ok(Some(3)),
            other => Err(format!("{field}: {other:?} is not TLSv1_2 or TLSv1_3")),
        };
        let policy = TlsPolicy {
            min: version("tlsMinVersion", &m.tls_min_version)?,
            max: version("tlsMaxVersion", &m.tls_max_version)?,
            cipher_suites: m.cipher_suites.clone(),
            ecdh_curves: m.ecdh_curves.clone(),
        };
        // Build once now, so a config the proxy cannot use is refused
        // before it is swapped in.
        policy.provider()?;
        policy.versions()?;
        Ok(policy)
    }

    /// The protocol versions both ends may speak.
    pub fn versions(&self) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
        let (min, max) = (self.min.unwrap_or(2), self.max.unwrap_or(3));
        let versions: Vec<_> = [(2, &version::TLS12), (3, &version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, v)| v)
            .collect();
        if versions.is_empty() {
            return Err(format!(
                "tlsMinVersion 1.{min} is above tlsMaxVersion 1.{max}"
            ));
        }
        Ok(versions)
    }

    /// rustls's ring provider restricted to the named suites and groups.
    pub fn provider(&self) -> Result<Arc<CryptoProvider>, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            for name in &self.cipher_suites {
                if !provider
                    .cipher_suites
                    .iter()
                    .any(|s| format!("{:?}", s.suite()) == *name)
                {
                    return Err(format!("cipherSuites: {name:?} is not supported"));
                }
            }
            let named = |tls13: bool| {
                self.cipher_suites
                    .iter()
                    .any(|n| osm_api::tls::is_tls13(n) == tls13)
            };
            let (restrict12, restrict13) = (named(false), named(true));
            // A version none of the names belong to keeps its defaults.
            provider.cipher_suites.retain(|s| {
                let tls13 = s.tls13().is_some();
                let restricted = if tls13 { restrict13 } else { restrict12 };
                !restricted || self.cipher_suites.contains(&format!("{:?}", s.suite()))
            });
        }
        if !self.ecdh_curves.is_empty() {
            for name in &self.ecdh_curves {
                if !provider
                    .kx_groups
                    .iter()
                    .any(|g| format!("{:?}", g.name()) == *name)
                {
                    return Err(format!("ecdhCurves: {name:?} is not supported"));
                }
            }
            provider
                .kx_groups
                .retain(|g| self.ecdh_curves.contains(&format!("{:?}", g.name())));
        }
        Ok(Arc::new(provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_validation_accepts_is_built() {
        for (_, canonical) in osm_api::tls::CIPHER_SUITES {
            let policy = TlsPolicy {
                cipher_suites: vec![canonical.to_string()],
                ..Default::default()
            };
            let provider = policy
                .provider()
                .unwrap_or_else(|e| panic!("{canonical}: {e}"));
            assert!(
                provider
                    .cipher_suites
                    .iter()
                    .any(|s| format!("{:?}", s.suite()) == *canonical)
            );
        }
        for (_, canonical) in osm_api::tls::ECDH_CURVES {
            let policy = TlsPolicy {
                ecdh_curves: vec![canonical.to_string()],
                ..Default::default()
            };
            let provider = policy
                .provider()
                .unwrap_or_else(|e| panic!("{canonical}: {e}"));
            assert_eq!(provider.kx_groups.len(), 1, "{canonical}");
        }
    }

    #[test]
    fn a_version_the_names_do_not_touch_keeps_its_suites() {
        let policy = TlsPolicy {
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()],
            ..Default::default()
        };
        let suites: Vec<String> = policy
            .provider()
            .unwrap()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert!(suites.contains(&"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()));
        assert!(!suites.contains(&"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()));
        assert_eq!(suites.iter().filter(|s| s.starts_with("TLS13_")).count(), 3);
    }

    #[test]
    fn versions_follow_min_and_max() {
        let v = |min, max| {
            TlsPolicy {
                min,
                max,
                ..Default::default()
            }
            .versions()
            .map(|v| {
                v.iter()
                    .map(|v| format!("{:?}", v.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(v(None, None).unwrap(), ["TLSv1_2", "TLSv1_3"]);
        assert_eq!(v(Some(3), None).unwrap(), ["TLSv1_3"]);
        assert_eq!(v(None, Some(2)).unwrap(), ["TLSv1_2"]);
        assert_eq!(
            v(Some(3), Some(2)).unwrap_err(),
            "tlsMinVersion 1.3 is above tlsMaxVersion 1.2"
        );
        let bad = TlsPolicy::from_config(&v1::MeshSettings {
            cipher_suites: vec!["RC4".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad, "cipherSuites: \"RC4\" is not supported");
    }
}
