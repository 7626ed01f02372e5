//! Circuit breaking per upstream (a service's endpoints, or an Egress
//! rule's destination), from UpstreamTrafficSetting `connectionSettings`:
//! requests beyond `maxRequests` wait only while `maxPendingRequests`
//! allows and are otherwise answered 503 at once; connections beyond
//! `maxConnections` are not opened; retries beyond `maxRetries` are not
//! made. Counters live as long as the upstream keeps the same limits, so
//! a config change elsewhere does not reset them.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use osm_api::v1;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, checked; None is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub max_requests: Option<u32>,
    /// Requests that may wait for one of `max_requests`; 0: none waits.
    pub max_pending_requests: u32,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
}

impl Limits {
    pub fn from_config(c: &v1::ConnectionLimits) -> Self {
        let some = |v: u32| (v > 0).then_some(v);
        Limits {
            max_connections: some(c.max_connections),
            connect_timeout: some(c.connect_timeout_ms).map(|ms| Duration::from_millis(ms.into())),
            max_requests: some(c.max_requests),
            max_pending_requests: c.max_pending_requests,
            max_requests_per_connection: some(c.max_requests_per_connection),
            max_retries: some(c.max_retries),
        }
    }

    /// No limit at all: nothing to count.
    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }
}

/// Which limit turned something away (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    MaxRequests,
    MaxPendingRequests,
    MaxConnections,
    MaxRetries,
}

impl Overflow {
    pub fn label(&self) -> &'static str {
        match self {
            Overflow::MaxRequests => "max-requests",
            Overflow::MaxPendingRequests => "max-pending-requests",
            Overflow::MaxConnections => "max-connections",
            Overflow::MaxRetries => "max-retries",
        }
    }
}

/// One upstream's counters.
#[derive(Debug)]
pub struct Breaker {
    pub limits: Limits,
    requests: Option<Arc<Semaphore>>,
    pending: AtomicU32,
    connections: AtomicU32,
    retries: AtomicU32,
}

/// Holds a place among `maxRequests` until dropped.
#[derive(Debug)]
pub struct RequestPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Holds one of `maxConnections` (or `maxRetries`) until dropped.
#[derive(Debug)]
pub struct CountPermit {
    breaker: Arc<Breaker>,
    retry: bool,
}

impl Drop for CountPermit {
    fn drop(&mut self) {
        let counter = if self.retry {
            &self.breaker.retries
        } else {
            &self.breaker.connections
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes one under `limit` (None: unlimited, still counted).
fn take(counter: &AtomicU32, limit: Option<u32>) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            limit.is_none_or(|max| n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Breaker {
    pub fn new(limits: Limits) -> Self {
        Self {
            requests: limits
                .max_requests
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            limits,
            pending: AtomicU32::new(0),
            connections: AtomicU32::new(0),
            retries: AtomicU32::new(0),
        }
    }

    /// A place for one request: at once, after waiting as one of
    /// `maxPendingRequests`, or refused.
    pub async fn admit_request(&self) -> Result<RequestPermit, Overflow> {
        let Some(requests) = &self.requests else {
            return Ok(RequestPermit(None));
        };
        if let Ok(permit) = requests.clone().try_acquire_owned() {
            return Ok(RequestPermit(Some(permit)));
        }
        if self.limits.max_pending_requests == 0 {
            return Err(Overflow::MaxRequests);
        }
        if !take(&self.pending, Some(self.limits.max_pending_requests)) {
            return Err(Overflow::MaxPendingRequests);
        }
        let permit = requests.clone().acquire_owned().await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
        // The semaphore is never closed.
        permit
            .map(|p| RequestPermit(Some(p)))
            .map_err(|_| Overflow::MaxRequests)
    }

    /// [`Breaker::admit_request`] for an upstream that may have no limits.
    pub async fn admit(breaker: Option<&Breaker>) -> Result<RequestPermit, Overflow> {
        match breaker {
            Some(b) => b.admit_request().await,
            None => Ok(RequestPermit(None)),
        }
    }

    /// One more open connection, or `MaxConnections`.
    pub fn admit_connection(self: &Arc<Self>) -> Result<CountPermit, Overflow> {
        take(&self.connections, self.limits.max_connections)
            .then(|| CountPermit {
                breaker: self.clone(),
                retry: false,
            })
            .ok_or(Overflow::MaxConnections)
    }

    /// One more retry in flight, or `MaxRetries`.
    pub fn admit_retry(self: &Arc<Self>) -> Result<CountPermit, Overflow> {
        take(&self.retries, self.limits.max_retries)
            .then(|| CountPermit {
                breaker: self.clone(),
                retry: true,
            })
            .ok_or(Overflow::MaxRetries)
    }

    /// Requests waiting for a place among `maxRequests`.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    pub fn open_connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(c: v1::ConnectionLimits) -> Arc<Breaker> {
        Arc::new(Breaker::new(Limits::from_config(&c)))
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_are_refused_at_once_without_a_queue() {
        let b = breaker(v1::ConnectionLimits {
            max_requests: 1,
            ..Default::default()
        });
        let first = b.admit_request().await.unwrap();
        assert_eq!(b.admit_request().await.unwrap_err(), Overflow::MaxRequests);
        drop(first);
        assert!(b.admit_request().await.is_ok());
    }

    #[tokio::test]
    async fn pending_requests_wait_up_to_their_limit() {
        let b = breaker(v1::ConnectionLimits {
            max_requests: 1,
            max_pending_requests: 1,
            ..Default::default()
        });
        let first = b.admit_request().await.unwrap();
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.admit_request().await.map(|_| ()) }
        });
        // The waiter holds the only pending place; the next is refused.
        while b.pending.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            b.admit_request().await.unwrap_err(),
            Overflow::MaxPendingRequests
        );
        drop(first);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[test]
    fn connections_and_retries_are_counted_while_held() {
        let b = breaker(v1::ConnectionLimits {
            max_connections: 2,
            max_retries: 1,
            ..Default::default()
        });
        let one = b.admit_connection().unwrap();
        let two = b.admit_connection().unwrap();
        assert_eq!(b.admit_connection().unwrap_err(), Overflow::MaxConnections);
        assert_eq!(b.open_connections(), 2);
        drop(one);
        assert!(b.admit_connection().is_ok());
        drop(two);
        let retry = b.admit_retry().unwrap();
        assert_eq!(b.admit_retry().unwrap_err(), Overflow::MaxRetries);
        drop(retry);
        assert!(b.admit_retry().is_ok());
        let unlimited = breaker(v1::ConnectionLimits::default());
        assert!(unlimited.limits.is_unlimited());
        let held: Vec<_> = (0..100)
            .map(|_| unlimited.admit_connection().unwrap())
            .collect();
        assert_eq!(unlimited.open_connections(), 100);
        drop(held);
        assert_eq!(unlimited.open_connections(), 0);
    }
}
