//! Keeps everything that depends on the mesh CA in step with it, and moves
//! a root rotation on (see [`crate::ca::rotation`] for the phases):
//!
//! - the trust bundle every proxy is sent (the hub),
//! - the controller's own serving certificate and the roots it verifies
//!   proxies with ([`LiveTls`]),
//! - what the phase waits for: acknowledgements of the bundle by every
//!   connected proxy, then no live certificate from the old root.
//!
//! One loop, once a second: read the store (another replica may have
//! moved on), follow the CA, observe, step.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{
    ca::{
        Issuer,
        authority::{Authority, Current},
        chain,
        ledger::{Ledger, RootId},
        rotation::{Observed, Phase, Step},
    },
    hub::Hub,
    metrics::Metrics,
    server::live_tls::LiveTls,
    status::Proxies,
};

/// How often a rotation is checked.
pub const TICK: Duration = Duration::from_secs(1);
/// How often a steady CA is read from the store again.
const STEADY_REFRESH: Duration = Duration::from_secs(10);
/// How long a phase waits for meshed pods whose proxies are not connected
/// (after a controller restart, until they are back) before it goes on
/// without them: a pod that never starts must not hold a rotation
/// forever. Counted from when this controller saw the phase begin.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The controller's own serving certificate, made anew when the issuing
/// root changes.
const SERVING_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the driver keeps in step.
pub struct CaDriver {
    pub authority: Arc<Authority>,
    pub hub: Arc<Hub>,
    pub proxies: Arc<Proxies>,
    pub ledger: Arc<Ledger>,
    pub tls: Arc<LiveTls>,
    /// Names on the controller's certificate.
    pub server_names: Vec<String>,
    pub metrics: Arc<Metrics>,
    /// Set once the cluster state is read: before, the meshed pods are
    /// unknown and no phase may end.
    pub synced: Arc<AtomicBool>,
    /// How long each phase lasts at least.
    pub min_phase: Duration,
    /// An external issuer of proxies' certificates, whose roots join the
    /// bundle.
    pub issuer: Option<Arc<dyn Issuer>>,
}

/// The bundle proxies are sent: `issuer`'s roots first (when an external
/// issuer signs their certificates), then `own` (the controller's CA),
/// each root once.
pub fn proxy_bundle(issuer: Option<&dyn Issuer>, own: &str) -> String {
    let mut blocks = match issuer {
        Some(issuer) => chain::pem_blocks(&issuer.trust_bundle()),
        None => Vec::new(),
    };
    for block in chain::pem_blocks(own) {
        if !blocks.contains(&block) {
            blocks.push(block);
        }
    }
    blocks.concat()
}

/// What the driver carries from one tick to the next.
struct Ticks {
    /// The CA the hub and the TLS follow.
    followed: Arc<Current>,
    /// The phase, and since when this controller has seen it.
    phase_since: (&'static str, Instant),
    last_refresh: Instant,
}

/// The old root a retiring phase waits on.
fn retiring_root(current: &Current) -> Option<RootId> {
    match &current.stored.phase {
        Phase::Retiring { old_cert } => RootId::of_pem(&chain::read(old_cert).ok()?.root),
        _ => None,
    }
}

impl CaDriver {
    /// Runs until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let followed = self.authority.current();
        let mut state = Ticks {
            phase_since: (followed.stored.phase.name(), Instant::now()),
            followed,
            last_refresh: Instant::now(),
        };
        let mut last_error = String::new();
        loop {
            if let Err(e) = self.tick(&mut state).await {
                let e = e.to_string();
                if e != last_error {
                    tracing::warn!(error = %e, "the mesh CA: cannot move the rotation on; retrying");
                    self.metrics.error("ca");
                }
                last_error = e;
            } else {
                last_error.clear();
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    async fn tick(&self, state: &mut Ticks) -> Result<(), crate::ca::CaError> {
        let Ticks {
            followed,
            phase_since,
            last_refresh,
        } = state;
        // The store is read every tick during a rotation, and now and then
        // when steady (a rotation another replica started; on Kubernetes
        // each read is a GET of the CA Secret).
        if followed.stored.phase != Phase::Steady || last_refresh.elapsed() >= STEADY_REFRESH {
            *last_refresh = Instant::now();
            self.authority.refresh().await?;
        }
        self.follow(followed);
        let phase = followed.stored.phase.name();
        if phase_since.0 != phase {
            *phase_since = (phase, Instant::now());
        }
        // A phase moves on only from what proxies are sent now; a steady
        // CA has nothing to observe (at 10,000 pods, not free).
        let rotating = phase != Phase::Steady.name() && self.synced.load(Ordering::Acquire);
        if rotating && Arc::ptr_eq(followed, &self.authority.current()) {
            let mut observed = self.observe(followed);
            observed.patience_over = phase_since.1.elapsed() >= PATIENCE;
            observed.within_min_phase = phase_since.1.elapsed() < self.min_phase;
            if !matches!(self.authority.advance(&observed).await?, Step::Wait(_)) {
                self.follow(followed);
            }
        }
        self.metrics
            .ca_rotation_phase(self.authority.current().stored.phase.name());
        Ok(())
    }

    /// The bundle proxies are sent: an external issuer's roots (it signs
    /// their certificates, so they come first), then the controller's own.
    pub fn proxy_bundle(&self, current: &Current) -> String {
        proxy_bundle(self.issuer.as_deref(), &current.bundle_pem)
    }

    /// Brings the hub and the TLS in line with the CA (and the external
    /// issuer's roots) when they changed.
    fn follow(&self, followed: &mut Arc<Current>) {
        let current = self.authority.current();
        let want = self.proxy_bundle(&current);
        if self.hub.trust_bundle().as_deref() != Some(want.as_str()) {
            self.hub.set_trust_bundle(want.clone());
            if let Err(e) = self.tls.set_client_roots(&want) {
                tracing::warn!(error = %e, "the controller's client roots cannot follow the bundle");
            }
        }
        if Arc::ptr_eq(&current, followed) {
            return;
        }
        let serving = current
            .ca
            .serving_cert(&self.server_names, SERVING_CERT_VALIDITY)
            .map_err(|e| e.to_string())
            .and_then(|cert| self.tls.update(&cert, &want));
        match serving {
            Ok(()) => {
                tracing::info!(
                    phase = current.stored.phase.name(),
                    roots = chain::pem_blocks(&want).len(),
                    "the mesh CA changed: trust bundle and serving certificate updated"
                );
                *followed = current;
            }
            // Tried again next tick.
            Err(e) => tracing::warn!(error = %e, "the controller's TLS cannot follow the CA"),
        }
    }

    fn observe(&self, current: &Current) -> Observed {
        let (connected, acknowledged_next) =
            self.proxies.acknowledged_since(self.hub.bundle_since());
        let live_from_old = retiring_root(current)
            .map(|old| {
                self.ledger
                    .live_by_root()
                    .get(&old)
                    .copied()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let connected_pods = self.proxies.connected_pods();
        Observed {
            connected,
            acknowledged_next,
            live_from_old,
            not_connected: self
                .hub
                .meshed_pods()
                .into_iter()
                .filter(|pod| !connected_pods.contains(pod))
                .collect(),
            patience_over: false,
            within_min_phase: false,
        }
    }
}
