//! The access log's lines between the request path and their output.
//!
//! A request appends its line to a bounded buffer and wakes nobody; a
//! thread of its own takes what is there every [`FLUSH_EVERY`] and writes
//! it in one call. A channel woke the writer for every line: one futex wake,
//! one context switch and one `write` per request, about 0.05 CPU-seconds
//! per 1,000 requests under interception (bench/results/intercept*.md).
//! When the output falls behind and [`MAX_PENDING`] bytes wait, lines are
//! refused (the caller counts them) instead of slowing traffic.

use std::{
    io::Write,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

/// How long a line may wait before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Bytes that may wait for the output; more lines are refused.
pub const MAX_PENDING: usize = 2 << 20;
/// The most the writer's spare buffer keeps between flushes, so a burst
/// does not hold its memory for the proxy's life.
const SPARE_KEPT: usize = 64 << 10;

/// Lines waiting for their output.
pub struct LogBuffer {
    pending: Mutex<Vec<u8>>,
    output: Mutex<Output>,
}

struct Output {
    out: Box<dyn Write + Send>,
    /// The buffer swapped in for `pending` at each flush.
    spare: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogBuffer {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            output: Mutex::new(Output {
                out,
                spare: Vec::new(),
            }),
        }
    }

    /// Appends one line that `write` puts into the buffer (without its
    /// newline). False, and nothing kept, when [`MAX_PENDING`] bytes
    /// already wait or `write` fails.
    pub fn append(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let mut pending = lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            return false;
        }
        let start = pending.len();
        if !write(&mut pending) {
            pending.truncate(start);
            return false;
        }
        pending.push(b'\n');
        true
    }

    /// Writes every waiting line to the output and flushes it.
    pub fn flush(&self) {
        // The output's lock first: two flushes write in the order they took.
        let mut output = lock(&self.output);
        let Output { out, spare } = &mut *output;
        std::mem::swap(&mut *lock(&self.pending), spare);
        if spare.is_empty() {
            return;
        }
        let _ = out.write_all(spare);
        let _ = out.flush();
        spare.clear();
        spare.shrink_to(SPARE_KEPT);
    }

    /// Bytes waiting for the output.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }
}

impl Drop for LogBuffer {
    /// Nothing appended is lost when the log goes away.
    fn drop(&mut self) {
        self.flush();
    }
}

/// Starts the thread that flushes `buffer` every [`FLUSH_EVERY`] until the
/// last handle to it is gone; false when no thread could be made.
pub fn start_writer(buffer: &Arc<LogBuffer>) -> bool {
    let weak: Weak<LogBuffer> = Arc::downgrade(buffer);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(buffer) = weak.upgrade() else { return };
                buffer.flush();
            }
        })
        .is_ok()
}

#[cfg(test)]
#[path = "log_buffer_tests.rs"]
mod tests;
