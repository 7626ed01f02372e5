//! Workload identities: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

use std::{fmt, str::FromStr, sync::Arc};

pub mod pod;

pub use pod::{PodBinding, pod_binding_from_der};

/// A SPIFFE ID of a mesh workload:
/// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
///
/// Cheap to clone; compared as its canonical string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(Arc<str>);

/// Why a string is not a mesh SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a mesh identity (spiffe://<trust-domain>/ns/<namespace>/sa/<name>): {reason}"
)]
pub struct SpiffeIdError {
    value: String,
    reason: &'static str,
}

// === impl SpiffeId ===

impl SpiffeId {
    /// The identity of a ServiceAccount.
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> Self {
        Self(format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}").into())
    }

    fn parts(&self) -> (&str, &str, &str) {
        // Validated at construction, so the layout is known.
        let rest = &self.0["spiffe://".len()..];
        let (td, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut segments = path.split('/');
        let _ns = segments.next();
        let ns = segments.next().unwrap_or("");
        let _sa = segments.next();
        let sa = segments.next().unwrap_or("");
        (td, ns, sa)
    }

    pub fn trust_domain(&self) -> &str {
        self.parts().0
    }

    pub fn namespace(&self) -> &str {
        self.parts().1
    }

    pub fn service_account(&self) -> &str {
        self.parts().2
    }

    /// The DNS SAN mesh certificates carry: `<sa>.<ns>.<trust-domain>`.
    pub fn dns_name(&self) -> String {
        let (td, ns, sa) = self.parts();
        format!("{sa}.{ns}.{td}")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID's text, shared (no copy): for what outlives a borrow, such as
    /// an access log line.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| SpiffeIdError {
            value: value.to_string(),
            reason,
        };
        let rest = value
            .strip_prefix("spiffe://")
            .ok_or_else(|| err("it does not start with spiffe://"))?;
        let (td, path) = rest.split_once('/').ok_or_else(|| err("it has no path"))?;
        if !is_dns_label(td) {
            return Err(err("the trust domain is not a valid DNS name"));
        }
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["ns", ns, "sa", sa] if is_dns_label(ns) && is_dns_label(sa) => Ok(Self(value.into())),
            ["ns", _, "sa", _] => Err(err("the namespace or service account is not a valid name")),
            _ => Err(err("the path is not /ns/<namespace>/sa/<name>")),
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpiffeId({})", self.0)
    }
}

/// Why a peer's certificate does not prove a mesh identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdentityError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("the peer's certificate cannot be parsed")]
    Unparsable,
    #[error("the peer's certificate has no SPIFFE URI SAN")]
    NoSpiffeId,
    #[error("the peer's certificate has more than one SPIFFE URI SAN")]
    SeveralSpiffeIds,
    #[error("the peer's certificate is bound to more than one pod")]
    SeveralPods,
    #[error("{0}")]
    Invalid(#[from] SpiffeIdError),
    #[error("the peer is {actual}, but {expected} was expected")]
    Mismatch {
        expected: SpiffeId,
        actual: SpiffeId,
    },
}

/// The SPIFFE ID a DER certificate carries in its URI SAN; exactly one is
/// allowed.
pub fn spiffe_id_from_der(der: &[u8]) -> Result<SpiffeId, PeerIdentityError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(der).map_err(|_| PeerIdentityError::Unparsable)?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|_| PeerIdentityError::Unparsable)?
        .ok_or(PeerIdentityError::NoSpiffeId)?;
    let mut found = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && uri.starts_with("spiffe://")
        {
            if found.is_some() {
                return Err(PeerIdentityError::SeveralSpiffeIds);
            }
            found = Some(uri.parse::<SpiffeId>()?);
        }
    }
    found.ok_or(PeerIdentityError::NoSpiffeId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits_a_mesh_identity() {
        let id: SpiffeId = "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1"
            .parse()
            .expect("valid");
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), "bookstore");
        assert_eq!(id.service_account(), "bookstore-v1");
        assert_eq!(id.dns_name(), "bookstore-v1.bookstore.cluster.local");
        assert_eq!(
            id,
            SpiffeId::new("cluster.local", "bookstore", "bookstore-v1")
        );
    }

    #[test]
    fn rejects_malformed_identities() {
        for bad in [
            "",
            "bookstore",
            "http://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/ns/A/sa/b",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe:///ns/a/sa/b",
            "spiffe://cluster.local/namespace/a/sa/b",
        ] {
            assert!(
                bad.parse::<SpiffeId>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn error_names_the_value_and_the_problem() {
        let err = "spiffe://cluster.local/ns/a"
            .parse::<SpiffeId>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"spiffe://cluster.local/ns/a\" is not a mesh identity \
             (spiffe://<trust-domain>/ns/<namespace>/sa/<name>): the path is not /ns/<namespace>/sa/<name>"
        );
    }
}
