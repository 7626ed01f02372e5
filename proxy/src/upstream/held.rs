//! An upstream HTTP/1.1 connection that a downstream connection's task
//! drives ([`super::affinity`]), and where idle ones wait between
//! downstream connections ([`Parked`]).

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::BytesMut;
use http::{Request, Uri};
use hyper_util::client::legacy::connect::Connection as _;
use tower_service::Service as _;

use super::{Connector, ForwardError, MeshIo, outgoing::Outgoing};
use crate::http_util::UpstreamBody;

/// How long a parked connection may wait for a downstream connection (as
/// hyper-util's pool kept an idle one).
const PARKED_FOR: Duration = Duration::from_secs(90);

/// The idle connections to one upstream (an endpoint, or the proxy's own
/// application) that no downstream connection keeps, most recent last. An
/// upstream is identified by its `Parked`: a connection goes back only to
/// the one it was opened for, and closes with it (an endpoint gone from
/// the config). A connection parked for [`PARKED_FOR`] closes: a task
/// sweeps while any wait, so an upstream no longer called holds none.
#[derive(Debug, Default)]
pub struct Parked {
    idle: Mutex<VecDeque<Box<Held>>>,
    /// A sweep task is running for these.
    sweeping: AtomicBool,
}

impl Parked {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Box<Held>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections wait here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parks `held`, and starts the sweep if none runs (outside a runtime,
    /// at shutdown, there is nothing to sweep for).
    pub(super) fn park(self: &Arc<Self>, mut held: Box<Held>, now: Instant) {
        held.parked_at = now;
        {
            let mut idle = self.lock();
            close_expired(&mut idle, now);
            idle.push_back(held);
        }
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(sweep(Arc::downgrade(self)))),
                Err(_) => self.sweeping.store(false, Ordering::Release),
            }
        }
    }

    /// The most recently parked connection.
    pub(super) fn take(&self) -> Option<Box<Held>> {
        self.lock().pop_back()
    }
}

/// How many of the oldest connections, parked at `parked_at` (oldest
/// first), have waited longer than [`PARKED_FOR`] at `now`.
fn expired_count(parked_at: impl Iterator<Item = Instant>, now: Instant) -> usize {
    parked_at
        .take_while(|at| now.saturating_duration_since(*at) > PARKED_FOR)
        .count()
}

/// Drops (closes) the connections parked too long, the oldest first.
fn close_expired(idle: &mut VecDeque<Box<Held>>, now: Instant) {
    let expired = expired_count(idle.iter().map(|h| h.parked_at), now);
    idle.drain(..expired);
}

/// Closes connections as they expire, until none waits or the upstream is
/// gone.
async fn sweep(parked: Weak<Parked>) {
    loop {
        let next = {
            let Some(parked) = parked.upgrade() else {
                return;
            };
            let mut idle = parked.lock();
            close_expired(&mut idle, Instant::now());
            match idle.front() {
                Some(oldest) => oldest.parked_at + PARKED_FOR,
                None => {
                    // Under the lock: a park after this starts a new sweep.
                    parked.sweeping.store(false, Ordering::Release);
                    return;
                }
            }
        };
        tokio::time::sleep_until(next.into()).await;
    }
}

/// One upstream HTTP/1.1 connection the proxy speaks itself
/// ([`crate::h1`]): a task must poll it for anything to move. Between
/// responses it holds the socket and nothing else.
pub(super) struct Held {
    /// Where it is parked (gone: the upstream left the config).
    pub(super) home: Weak<Parked>,
    pub(super) io: MeshIo,
    /// Read and not yet taken; empty, without memory, between responses.
    pub(super) read_buf: BytesMut,
    /// The request of the current exchange, while it is still being sent
    /// (its body streams as the client sends it, also while the response
    /// comes back).
    pub(super) sending: Option<Outgoing>,
    /// The connection can take another request once the current response
    /// has ended.
    pub(super) reusable: bool,
    /// The upstream closed its side.
    pub(super) closed: bool,
    parked_at: Instant,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("reusable", &self.reusable)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Held {
    pub(super) fn is_for(&self, parked: &Arc<Parked>) -> bool {
        std::ptr::eq(self.home.as_ptr(), Arc::as_ptr(parked))
    }

    /// Whether it can carry another request: not closed, and nothing left
    /// over from the last exchange.
    pub(super) fn reusable(&self) -> bool {
        self.reusable && !self.closed && self.sending.is_none() && self.read_buf.is_empty()
    }

    /// A fresh connection of the upstream `home` stands for (tests drive
    /// one of none by hand).
    pub(super) fn new(home: Weak<Parked>, io: MeshIo) -> Self {
        Held {
            home,
            io,
            read_buf: BytesMut::new(),
            sending: None,
            reusable: true,
            closed: false,
            parked_at: Instant::now(),
        }
    }

    /// Back to its upstream's parked connections, unless it cannot carry
    /// another request or the upstream is gone.
    pub(super) fn park(self: Box<Self>, now: Instant) {
        if let (true, Some(home)) = (self.reusable(), self.home.upgrade()) {
            home.park(self, now);
        }
    }
}

/// How an exchange failed.
pub(super) enum Unsent {
    /// The connection did not take the request (it had closed): another
    /// may.
    Request(Box<Request<UpstreamBody>>),
    Failed(ForwardError),
}

/// Opens a connection to the upstream `parked` stands for: TCP, mTLS and
/// the identity check as for the pool ([`Connector`]).
pub(super) async fn open(
    parked: &Arc<Parked>,
    mut connector: Connector,
) -> Result<Box<Held>, ForwardError> {
    let io = connector
        .call(Uri::default())
        .await
        .map_err(|e| ForwardError::from(&e))?;
    if io.connected().is_negotiated_h2() {
        // Affinity is off while the proxy offers HTTP/1.1 over HTTP/2.
        return Err(ForwardError::Connect(
            "the upstream chose HTTP/2 for an HTTP/1.1 connection".into(),
        ));
    }
    Ok(Box::new(Held::new(Arc::downgrade(parked), io)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_parked_longer_than_the_limit_are_the_expired_ones() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        for (parked, now, expired) in [
            (vec![], 200, 0),
            (vec![0, 10, 20], 50, 0),
            (vec![0, 10, 20], 90, 0),
            (vec![0, 10, 20], 91, 1),
            (vec![0, 10, 20], 105, 2),
            (vec![0, 10, 20], 500, 3),
        ] {
            let times = parked.iter().map(|s| at(*s));
            assert_eq!(
                expired_count(times, at(now)),
                expired,
                "{parked:?} at {now}"
            );
        }
    }
}
