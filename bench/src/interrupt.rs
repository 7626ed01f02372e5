//! Ctrl-C or SIGTERM in the middle of a harness: what it started is
//! stopped before it exits (a local mesh's namespaces, iptables rules and
//! processes would otherwise outlive it; Drop does not run on a signal).
//!
//! [`install`] waits for both signals on a thread of its own (a handler,
//! not a blocked mask: a mask would pass to every child, and local mode's
//! daemon would never see its SIGTERM), which runs the registered
//! cleanups, newest first, then exits 128 + the signal.

use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

type Cleanup = Box<dyn FnOnce() + Send>;

static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Runs its cleanup on an interrupt while it lives; forgets it when dropped.
#[must_use = "the cleanup is forgotten when the guard is dropped"]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Cleanup)>> {
    CLEANUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `cleanup` to run if the harness is interrupted.
pub fn on_interrupt(cleanup: impl FnOnce() + Send + 'static) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock().push((id, Box::new(cleanup)));
    Registered(id)
}

/// Takes SIGINT and SIGTERM from here on.
pub fn install() {
    let spawned = std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            let Some(code) = runtime.block_on(interrupted()) else {
                return;
            };
            run_cleanups();
            std::process::exit(code);
        });
    if let Err(e) = spawned {
        eprintln!("osm-bench: an interrupt will not stop what was started: {e}");
    }
}

/// Runs every registered cleanup, newest first, once.
fn run_cleanups() {
    let cleanups = std::mem::take(&mut *lock());
    for (_, cleanup) in cleanups.into_iter().rev() {
        cleanup();
    }
}

/// Waits for SIGINT or SIGTERM; the exit code they call for.
async fn interrupted() -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut term = signal(SignalKind::terminate()).ok()?;
    let (name, code) = tokio::select! {
        _ = int.recv() => ("SIGINT", 130),
        _ = term.recv() => ("SIGTERM", 143),
    };
    eprintln!("osm-bench: {name}: stopping what was started");
    Some(code)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn an_interrupt_runs_the_live_cleanups_newest_first_and_once() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let register = |name: &'static str| {
            let ran = ran.clone();
            on_interrupt(move || ran.lock().unwrap().push(name))
        };
        let _first = register("first");
        let gone = register("gone");
        let _last = register("last");
        drop(gone);
        run_cleanups();
        run_cleanups();
        assert_eq!(*ran.lock().unwrap(), ["last", "first"]);
    }
}
