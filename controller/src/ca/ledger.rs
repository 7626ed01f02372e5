//! The certificates the controller issued that are still live, by the root
//! they chain to: what `/debug/ca` and `osm_controller_live_certificates`
//! report, and what a root rotation's retiring phase waits on (no live
//! certificate from the old root). One entry per pod: a renewal replaces
//! the pod's entry (its proxy uses the new certificate from then on); a
//! pod that went away stays until its certificate would have expired.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde::Serialize;

/// A root as reports name it: its SHA-256 fingerprint (hex) and subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RootId {
    pub fingerprint: String,
    pub subject: String,
}

impl RootId {
    /// The first certificate of `pem`; None when there is none to read.
    pub fn of_pem(pem: &str) -> Option<Self> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
        Self::of_der(&block.contents)
    }

    /// A certificate in DER.
    pub fn of_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        Some(Self {
            fingerprint: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
            subject: cert.subject().to_string(),
        })
    }

    /// The root of `bundle_pem` that `chain` (leaf first) verifies up to.
    /// With one root there is nothing to tell apart: the TLS handshake
    /// already verified the chain against it.
    pub fn of_chain(chain: &[CertificateDer<'static>], bundle_pem: &str) -> Option<Self> {
        let roots: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(bundle_pem.as_bytes())
                .filter_map(Result::ok)
                .collect();
        let root = match roots.as_slice() {
            [only] => only,
            several => osm_api::pki::root_of(chain, several)?,
        };
        Self::of_der(root)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    root: RootId,
    /// Unix seconds.
    not_after: i64,
}

/// Live certificates by pod.
#[derive(Debug, Default)]
pub struct Ledger {
    by_pod: Mutex<BTreeMap<String, Entry>>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.by_pod.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `pod` (`namespace/name`) holds a certificate from `root`, valid
    /// until `not_after` (Unix seconds): one just issued, or the one its
    /// proxy connected with. The pod's latest certificate wins, so a
    /// connection opened with the old certificate and seen after the
    /// renewal does not bring the old root back.
    pub fn record(&self, pod: &str, root: RootId, not_after: i64) {
        let mut entries = self.lock();
        match entries.get(pod) {
            Some(held) if held.not_after > not_after => {}
            _ => {
                entries.insert(pod.to_string(), Entry { root, not_after });
            }
        }
    }

    /// Live certificates by root at `at` (Unix seconds); expired entries
    /// are dropped.
    pub fn live_by_root_at(&self, at: i64) -> BTreeMap<RootId, usize> {
        let mut entries = self.lock();
        entries.retain(|_, e| e.not_after > at);
        let mut out = BTreeMap::new();
        for e in entries.values() {
            *out.entry(e.root.clone()).or_default() += 1;
        }
        out
    }

    /// [`Ledger::live_by_root_at`] now.
    pub fn live_by_root(&self) -> BTreeMap<RootId, usize> {
        self.live_by_root_at(now())
    }
}

/// One root of the trust bundle, or one live certificates chain to that
/// the bundle no longer holds, as `/debug/ca` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootReport {
    #[serde(flatten)]
    pub root: RootId,
    /// Leaves are signed from it now.
    pub issuing: bool,
    /// In the bundle proxies trust.
    pub in_bundle: bool,
    pub live_certificates: usize,
}

/// The roots of `bundle_pem` (the issuing one first, as the controller
/// lists it) and those live certificates chain to, with their counts.
pub fn report(bundle_pem: &str, live: &BTreeMap<RootId, usize>) -> Vec<RootReport> {
    let bundled: Vec<RootId> = super::chain::pem_blocks(bundle_pem)
        .iter()
        .filter_map(|pem| RootId::of_pem(pem))
        .collect();
    let mut out: Vec<RootReport> = bundled
        .iter()
        .enumerate()
        .map(|(i, root)| RootReport {
            root: root.clone(),
            issuing: i == 0,
            in_bundle: true,
            live_certificates: live.get(root).copied().unwrap_or(0),
        })
        .collect();
    for (root, n) in live {
        if !bundled.contains(root) {
            out.push(RootReport {
                root: root.clone(),
                issuing: false,
                in_bundle: false,
                live_certificates: *n,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Issuer as _, LocalCa};

    fn root() -> (String, RootId) {
        let ca = LocalCa::generate(std::time::Duration::from_secs(3600)).unwrap();
        let pem = ca.trust_bundle();
        let id = RootId::of_pem(&pem).unwrap();
        (pem, id)
    }

    #[test]
    fn live_certificates_are_counted_by_root_and_expire() {
        let ((old_pem, old), (new_pem, new)) = (root(), root());
        assert_eq!(old.fingerprint.len(), 64);
        assert!(
            old.subject.contains("osm-ca.openservicemesh.io"),
            "{}",
            old.subject
        );
        let ledger = Ledger::default();
        ledger.record("shop/a", old.clone(), 100);
        ledger.record("shop/b", old.clone(), 200);
        ledger.record("shop/c", new.clone(), 300);
        // a renews from the new root: its entry is replaced.
        ledger.record("shop/a", new.clone(), 400);
        // a's proxy seen on a connection opened before its renewal: its
        // older certificate does not replace the newer one.
        ledger.record("shop/a", old.clone(), 90);
        let live = ledger.live_by_root_at(150);
        assert_eq!(live.get(&old), Some(&1));
        assert_eq!(live.get(&new), Some(&2));

        // The bundle lists the new root first; the old one is out of it
        // but still has a live certificate.
        let shown = report(&new_pem, &live);
        assert_eq!(shown.len(), 2);
        assert_eq!(
            (
                shown[0].issuing,
                shown[0].in_bundle,
                shown[0].live_certificates
            ),
            (true, true, 2)
        );
        assert_eq!(shown[1].root, old);
        assert_eq!(
            (
                shown[1].issuing,
                shown[1].in_bundle,
                shown[1].live_certificates
            ),
            (false, false, 1)
        );
        let both = report(&format!("{new_pem}{old_pem}"), &live);
        assert_eq!(
            both.iter()
                .map(|r| (r.issuing, r.in_bundle))
                .collect::<Vec<_>>(),
            [(true, true), (false, true)]
        );
        assert_eq!(ledger.live_by_root_at(250).get(&old), None, "b expired");
    }
}
