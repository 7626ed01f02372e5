//! The access log's lines between the request path and their output.
//!
//! A request appends its line to a bounded buffer; a thread of its own
//! takes what is there every [`FLUSH_EVERY`] and writes it in one call. A
//! channel woke the writer for every line: one futex wake, one context
//! switch and one `write` per request, about 0.05 CPU-seconds per 1,000
//! requests under interception (bench/results/intercept*.md). When a flush
//! finds nothing the writer parks, and the first line after that wakes it:
//! busy, no line wakes anybody; idle, the writer does not wake at all (it
//! woke ten times a second, a third of an idle sidecar's CPU).
//! When the output falls behind and [`MAX_PENDING`] bytes wait, lines are
//! refused (the caller counts them) instead of slowing traffic.

use std::{
    io::Write,
    sync::{Arc, Mutex, MutexGuard, OnceLock, Weak},
    thread::Thread,
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
    pending: Mutex<Pending>,
    output: Mutex<Output>,
    /// The writer thread, once it runs: what a line after a quiet spell
    /// unparks.
    writer: OnceLock<Thread>,
    /// Rounds of the writer's loop, for the tests of its idleness.
    #[cfg(test)]
    writer_rounds: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The writer found nothing and parked: the next line wakes it. Under
    /// the same lock as the bytes, so no line can slip between the
    /// writer's look and its park unnoticed.
    writer_parked: bool,
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
            pending: Mutex::new(Pending::default()),
            output: Mutex::new(Output {
                out,
                spare: Vec::new(),
            }),
            writer: OnceLock::new(),
            #[cfg(test)]
            writer_rounds: Default::default(),
        }
    }

    /// Appends one line that `write` puts into the buffer (without its
    /// newline). False, and nothing kept, when [`MAX_PENDING`] bytes
    /// already wait or `write` fails.
    pub fn append(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let mut pending = lock(&self.pending);
        let bytes = &mut pending.bytes;
        if bytes.len() >= MAX_PENDING {
            return false;
        }
        let start = bytes.len();
        if !write(bytes) {
            bytes.truncate(start);
            return false;
        }
        bytes.push(b'\n');
        let wake = std::mem::take(&mut pending.writer_parked);
        drop(pending);
        if wake {
            self.wake_writer();
        }
        true
    }

    fn wake_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// The writer's look before it sleeps: true, and the writer marked as
    /// parked, when nothing waits (it parks instead of sleeping).
    fn writer_may_park(&self) -> bool {
        let mut pending = lock(&self.pending);
        pending.writer_parked = pending.bytes.is_empty();
        pending.writer_parked
    }

    /// Writes every waiting line to the output and flushes it.
    pub fn flush(&self) {
        // The output's lock first: two flushes write in the order they took.
        let mut output = lock(&self.output);
        let Output { out, spare } = &mut *output;
        std::mem::swap(&mut lock(&self.pending).bytes, spare);
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
        lock(&self.pending).bytes.len()
    }
}

impl Drop for LogBuffer {
    /// Nothing appended is lost when the log goes away.
    fn drop(&mut self) {
        self.flush();
        // A parked writer learns that the log is gone and ends.
        self.wake_writer();
    }
}

/// Starts the thread that flushes `buffer` every [`FLUSH_EVERY`] while
/// lines come, parked while none do, until the last handle to it is gone;
/// false when no thread could be made.
pub fn start_writer(buffer: &Arc<LogBuffer>) -> bool {
    let weak: Weak<LogBuffer> = Arc::downgrade(buffer);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_while_alive(&weak))
        .is_ok()
}

fn write_while_alive(weak: &Weak<LogBuffer>) {
    // Known before the first park, so a line that finds the writer parked
    // finds whom to wake.
    if let Some(buffer) = weak.upgrade() {
        let _ = buffer.writer.set(std::thread::current());
    }
    loop {
        // No handle is held while parked or asleep: the last one going
        // away ends the loop.
        let Some(buffer) = weak.upgrade() else { return };
        #[cfg(test)]
        buffer
            .writer_rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let park = buffer.writer_may_park();
        drop(buffer);
        if park {
            // Woken by a line, by the log going away, or spuriously: each
            // looks again.
            std::thread::park();
            continue;
        }
        std::thread::sleep(FLUSH_EVERY);
        let Some(buffer) = weak.upgrade() else { return };
        buffer.flush();
    }
}

#[cfg(test)]
#[path = "log_buffer_tests.rs"]
mod tests;
