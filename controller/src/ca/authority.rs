//! The mesh CA as the controller runs it: the issuing CA and the rotation
//! phase, swapped as a whole when a rotation moves on, and written to the
//! store before anything acts on it (a restarted controller resumes from
//! what was stored, never from something it only had in memory).

use std::{sync::Arc, time::Duration};

use osm_api::identity::{PodBinding, SpiffeId};
use tokio::sync::watch;

use super::{
    CaError, Issued, Issuer, LocalCa,
    rotation::{self, Observed, Phase, Step, Stored},
    store::CaStore,
};

/// What the CA is now.
#[derive(Debug)]
pub struct Current {
    /// Signs leaves.
    pub ca: Arc<LocalCa>,
    /// As kept in the store.
    pub stored: Stored,
    /// The roots proxies must trust, the issuing one first (PEM).
    pub bundle_pem: String,
}

impl Current {
    fn new(stored: Stored) -> Result<Self, CaError> {
        Ok(Self {
            ca: Arc::new(LocalCa::from_pem(&stored.cert, &stored.key)?),
            bundle_pem: rotation::trust_bundle(&stored)?,
            stored,
        })
    }
}

/// Why a rotation cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("this controller's CA is not kept in a store it can write: it cannot rotate")]
    NoStore,
    #[error("{0}")]
    InProgress(String),
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// The issuing CA and its rotation.
#[derive(Debug)]
pub struct Authority {
    current: watch::Sender<Arc<Current>>,
    store: Option<Arc<dyn CaStore>>,
    /// Lifetime of a root made by a rotation.
    root_validity: Duration,
    /// One change at a time: a rotation started while the driver moves a
    /// phase on would otherwise overwrite it.
    writing: tokio::sync::Mutex<()>,
    /// What the current phase waits for, for `osm ca status`.
    waiting_for: std::sync::Mutex<String>,
}

impl Authority {
    /// A CA kept in `store`, starting from `stored` (read from it).
    pub fn new(
        stored: Stored,
        store: Arc<dyn CaStore>,
        root_validity: Duration,
    ) -> Result<Self, CaError> {
        Ok(Self::with(
            Current::new(stored)?,
            Some(store),
            root_validity,
        ))
    }

    /// A CA that never rotates (tests; a CA given without a store).
    pub fn fixed(ca: Arc<LocalCa>) -> Self {
        let (cert, key) = ca.to_pem();
        let current = Current {
            bundle_pem: ca.trust_bundle(),
            ca,
            stored: Stored {
                cert,
                key,
                phase: Phase::Steady,
            },
        };
        Self::with(current, None, Duration::ZERO)
    }

    fn with(current: Current, store: Option<Arc<dyn CaStore>>, root_validity: Duration) -> Self {
        Self {
            current: watch::Sender::new(Arc::new(current)),
            store,
            root_validity,
            writing: tokio::sync::Mutex::new(()),
            waiting_for: std::sync::Mutex::new(String::new()),
        }
    }

    pub fn current(&self) -> Arc<Current> {
        self.current.borrow().clone()
    }

    /// Tells each change of the CA.
    pub fn changes(&self) -> watch::Receiver<Arc<Current>> {
        self.current.subscribe()
    }

    /// What the current phase waits for (empty when steady).
    pub fn waiting_for(&self) -> String {
        self.waiting_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stores `stored`, then makes it current.
    async fn commit(&self, stored: Stored) -> Result<(), CaError> {
        let next = Current::new(stored)?;
        if let Some(store) = &self.store {
            store.save(&next.stored, &next.bundle_pem).await?;
        }
        self.current.send_replace(Arc::new(next));
        Ok(())
    }

    /// Starts a rotation: a new root joins every bundle. Returns the new
    /// root (PEM).
    pub async fn rotate(&self) -> Result<String, RotateError> {
        if self.store.is_none() {
            return Err(RotateError::NoStore);
        }
        let _turn = self.writing.lock().await;
        let next = LocalCa::generate(self.root_validity)?.to_pem();
        let root = next.0.clone();
        let started =
            rotation::start(&self.current().stored, next).map_err(RotateError::InProgress)?;
        self.commit(started).await?;
        tracing::info!("root rotation started: the new root joins every trust bundle");
        Ok(root)
    }

    /// Takes the step `observed` allows; returns it.
    pub async fn advance(&self, observed: &Observed) -> Result<Step, CaError> {
        let _turn = self.writing.lock().await;
        let stored = self.current().stored.clone();
        let step = rotation::step(&stored.phase, observed);
        *self.waiting_for.lock().unwrap_or_else(|e| e.into_inner()) = match &step {
            Step::Wait(why) if stored.phase != Phase::Steady => why.clone(),
            _ => String::new(),
        };
        if let Some(next) = rotation::apply(&stored, &step) {
            self.commit(next).await?;
            match step {
                Step::Issue => tracing::info!(
                    "root rotation: every connected proxy holds the new root; it issues now"
                ),
                Step::Finish => tracing::info!(
                    "root rotation finished: no live certificate chains to the old root"
                ),
                Step::Wait(_) => {}
            }
        }
        Ok(step)
    }

    /// Reads the store again: another controller replica may have moved
    /// the rotation on. True when the state changed.
    pub async fn refresh(&self) -> Result<bool, CaError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let _turn = self.writing.lock().await;
        let stored = store.load().await?;
        if stored == self.current().stored {
            return Ok(false);
        }
        self.current.send_replace(Arc::new(Current::new(stored)?));
        Ok(true)
    }
}

#[tonic::async_trait]
impl Issuer for Authority {
    async fn issue(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        pod: &PodBinding,
        validity: Duration,
    ) -> Result<Issued, CaError> {
        let ca = self.current().ca.clone();
        ca.issue(csr_pem, identity, pod, validity).await
    }

    fn trust_bundle(&self) -> String {
        self.current().bundle_pem.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{ledger::RootId, store::DirStore};

    fn observed(connected: usize, acknowledged_next: usize, live_from_old: usize) -> Observed {
        Observed {
            connected,
            acknowledged_next,
            live_from_old,
            ..Observed::default()
        }
    }

    #[tokio::test]
    async fn a_rotation_is_stored_at_each_step_and_resumes_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DirStore::new(dir.path()));
        let validity = Duration::from_secs(3600);
        let first = store.load_or_create(validity).unwrap();
        let authority = Authority::new(first.clone(), store.clone(), validity).unwrap();
        let old_root = RootId::of_pem(&authority.trust_bundle()).unwrap();

        let new_root = RootId::of_pem(&authority.rotate().await.unwrap()).unwrap();
        assert!(matches!(
            authority.rotate().await,
            Err(RotateError::InProgress(_))
        ));
        let bundle = |a: &Authority| {
            crate::ca::chain::pem_blocks(&a.trust_bundle())
                .iter()
                .map(|p| RootId::of_pem(p).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(bundle(&authority), [old_root.clone(), new_root.clone()]);

        // Not every proxy has the new root yet: nothing moves.
        let step = authority.advance(&observed(2, 1, 2)).await.unwrap();
        assert!(matches!(step, Step::Wait(_)));
        assert_eq!(
            authority.waiting_for(),
            "1 of 2 connected proxies hold the new root"
        );

        // A controller restarted here resumes from the store.
        let restarted =
            Authority::new(store.load().await.unwrap(), store.clone(), validity).unwrap();
        assert_eq!(restarted.current().stored.phase.name(), "distributing");
        assert_eq!(bundle(&restarted), bundle(&authority));

        assert_eq!(
            restarted.advance(&observed(2, 2, 2)).await.unwrap(),
            Step::Issue
        );
        assert_eq!(bundle(&restarted), [new_root.clone(), old_root.clone()]);
        // The replica that was behind catches up from the store.
        assert!(authority.refresh().await.unwrap());
        assert_eq!(bundle(&authority), bundle(&restarted));
        assert!(!authority.refresh().await.unwrap());

        assert_eq!(
            authority.advance(&observed(2, 0, 0)).await.unwrap(),
            Step::Finish
        );
        assert_eq!(bundle(&authority), [new_root]);
        assert_eq!(authority.waiting_for(), "");
        assert_eq!(
            store.load().await.unwrap().phase,
            Phase::Steady,
            "stored before it took effect"
        );
    }

    #[tokio::test]
    async fn a_fixed_ca_does_not_rotate() {
        let ca = Arc::new(LocalCa::generate(Duration::from_secs(3600)).unwrap());
        let authority = Authority::fixed(ca.clone());
        assert!(matches!(
            authority.rotate().await,
            Err(RotateError::NoStore)
        ));
        assert_eq!(authority.trust_bundle(), ca.trust_bundle());
    }
}
