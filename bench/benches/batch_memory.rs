//! The proxy's heap at its highest while it takes a full batch from the
//! controller (issue 17): 10,000 services with `--bench`, 100 when run as
//! a test. The same message read two ways into the proxy's store:
//! decoded whole first (`v1::ConfigUpdate`, as the generated gRPC client
//! read it), and as a [`Batch`] whose upserts stay encoded until each is
//! kept (what the proxy does). Counted by a global allocator in this
//! process: bytes allocated and live, above what was live before.

#![allow(clippy::unwrap_used)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use osm_api::{protocol::into_resources, v1};
use osm_bench::big_config::config;
use osm_proxy::config::{batch::Batch, store::ConfigStore};
use prost::Message;

/// Counts live bytes and their peak. Written here (a few lines) because
/// the peak must be reset between the two measurements of one process,
/// which the heap profilers on crates.io (dhat) do not offer.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only read.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `take` kept and its highest point, in bytes above what was live
/// before it.
fn measured(take: impl FnOnce() -> ConfigStore) -> (ConfigStore, usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let store = take();
    let kept = LIVE.load(Ordering::Relaxed) - before;
    (store, kept, PEAK.load(Ordering::Relaxed) - before)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    let services = if std::env::args().any(|a| a == "--bench") {
        10_000
    } else {
        100
    };
    let update = v1::ConfigUpdate {
        version: "1".into(),
        full: true,
        upserts: into_resources(config(services)).map(|(_, r)| r).collect(),
        removals: vec![],
    };
    let wire = update.encode_to_vec();
    drop(update);

    let (whole, whole_kept, whole_peak) = measured(|| {
        let update = v1::ConfigUpdate::decode(wire.as_slice()).unwrap();
        ConfigStore::default().apply(update).unwrap().0
    });
    drop(whole);
    let (batch, batch_kept, batch_peak) = measured(|| {
        let batch = Batch::decode(wire.as_slice()).unwrap();
        ConfigStore::default().apply(batch).unwrap().0
    });
    drop(batch);

    println!(
        "| services | message | read whole first: peak / kept | read as a batch: peak / kept |"
    );
    println!("|---:|---:|---:|---:|");
    println!(
        "| {services} | {:.1} MB | {:.1} / {:.1} MB | {:.1} / {:.1} MB |",
        mb(wire.len()),
        mb(whole_peak),
        mb(whole_kept),
        mb(batch_peak),
        mb(batch_kept),
    );
    assert_eq!(whole_kept, batch_kept, "the same store either way");
    assert!(
        batch_peak < whole_peak,
        "a batch read as bytes peaks lower ({batch_peak} >= {whole_peak})"
    );
}
