//! Memory the proxy gives back to the system: the heap's free pages after
//! a whole config build, and, once it has started, the pages of its own
//! binary that only starting needed; then again whenever work that brought
//! pages back (a config change, a burst of requests) has stopped.

mod heap;
mod quiet;
mod start_pages;
mod status;

use std::{sync::Arc, time::Duration};

pub use heap::release_free_memory;
pub use quiet::{LOOK_EVERY, QUIET_CPU};
use quiet::{Look, Usage, Watch};
pub use start_pages::{Releasable, releasable, release as release_start_pages};
pub use status::resident_file_kib;

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
/// back"); from then on looks every [`LOOK_EVERY`] and gives back again
/// when pages came back and the proxy is quiet ([`Watch`]). A page needed
/// again comes back on its next touch.
pub async fn give_back_pages(shared: Arc<Shared>) {
    while !shared.is_ready() {
        tokio::time::sleep(READY_POLL).await;
    }
    tokio::time::sleep(START_SETTLES).await;
    let mut released_after = "starting";
    loop {
        release(released_after);
        let Some(now) = usage() else { return };
        let mut watch = Watch::after_release(now);
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            let Some(now) = usage() else { return };
            if watch.look(now) == Look::Release {
                break;
            }
        }
        released_after = "work that has stopped";
    }
}

fn release(what_used_them: &'static str) {
    release_free_memory();
    match release_start_pages() {
        Ok(kib) => tracing::debug!(
            resident_kib = kib,
            what_used_them,
            "gave back the binary's pages"
        ),
        Err(error) => tracing::debug!(%error, "could not give back the binary's pages"),
    }
}

/// The process's CPU time and resident file pages now; `None` (and the
/// watch ends: a kernel without them will not grow them) on error.
fn usage() -> Option<Usage> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .inspect_err(|error| tracing::debug!(%error, "getrusage failed: pages given back once"))
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status")
        .inspect_err(|error| tracing::debug!(%error, "no /proc/self/status: pages given back once"))
        .ok()?;
    let duration = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    let Some(file_kib) = resident_file_kib(&status) else {
        tracing::debug!("no RssFile in /proc/self/status: pages given back once");
        return None;
    };
    Some(Usage {
        cpu: duration(usage.user_time()) + duration(usage.system_time()),
        file_kib,
    })
}
