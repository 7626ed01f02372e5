//! Memory the proxy gives back to the system: the heap's free pages after
//! a whole config build, and, once it has started, the pages of its own
//! binary that only starting needed.

mod heap;
mod start_pages;

use std::{sync::Arc, time::Duration};

pub use heap::release_free_memory;
pub use start_pages::{Releasable, releasable, release as release_start_pages};

use crate::state::Shared;

/// How often a proxy that is not ready yet looks again.
const READY_POLL: Duration = Duration::from_secs(1);

/// How long after it turns ready the proxy waits before giving back what
/// starting used: the first config and certificate are applied by then,
/// and the work that follows them (the first probes, the first metrics)
/// has run.
pub const START_SETTLES: Duration = Duration::from_secs(5);

/// Waits until the proxy is ready and has settled, then gives back the
/// heap's free pages and the binary's pages only starting used (an idle
/// sidecar's resident memory: bench/README.md, "Start's pages given
/// back"). Runs once; a page needed again comes back on its next touch.
pub async fn release_after_start(shared: Arc<Shared>) {
    while !shared.is_ready() {
        tokio::time::sleep(READY_POLL).await;
    }
    tokio::time::sleep(START_SETTLES).await;
    release_free_memory();
    match release_start_pages() {
        Ok(kib) => tracing::debug!(
            resident_kib = kib,
            "gave back the binary's pages only starting used"
        ),
        Err(error) => tracing::debug!(%error, "could not give back the binary's start pages"),
    }
}
