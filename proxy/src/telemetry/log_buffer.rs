//! The access log's lines between the request path and their output.
//!
//! A request appends its line to a bounded buffer; a thread of its own
//! takes what is there every [`FLUSH_EVERY`], or as soon as [`FLUSH_AT`]
//! bytes wait, and writes it in one call. A channel woke the writer for
//! every line: one futex wake, one context switch and one `write` per
//! request, about 0.05 CPU-seconds per 1,000 requests under interception
//! (bench/results/intercept*.md). Waiting only for the period let a busy
//! proxy's buffer grow to a megabyte or more in fresh pages every period
//! (35,000 requests a second): 3,400 page faults a second in each proxy;
//! with the byte mark the two buffers stay at most 256 KiB each and are
//! reused, and about one line in 400 wakes the writer (a wake costs tens
//! of microseconds on a VM: a mark of 32 KiB made them a quarter of the
//! log's cost in the micro bench). When a flush finds nothing the writer
//! parks, and the first line after that wakes it: idle, the writer does not
//! wake at all (it woke ten times a second, a third of an idle sidecar's
//! CPU).
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
/// Bytes waiting that wake the writer before its period is over.
pub const FLUSH_AT: usize = 128 << 10;
/// Bytes that may wait for the output; more lines are refused.
pub const MAX_PENDING: usize = 2 << 20;
/// The most the writer's spare buffer keeps between flushes: what a busy
/// proxy's buffer grows to before it reaches [`FLUSH_AT`], so that under
/// load neither buffer is allocated again. A flush keeps twice what it
/// wrote, up to this: a quiet proxy's buffers shrink to its lines' size.
const SPARE_KEPT: usize = 2 * FLUSH_AT;

/// Lines waiting for their output.
pub struct LogBuffer {
    pending: Mutex<Pending>,
    output: Mutex<Output>,
    /// The writer thread, once it runs: what a line after a quiet spell,
    /// or one that makes [`FLUSH_AT`] bytes, unparks.
    writer: OnceLock<Thread>,
    /// How long the writer waits between flushes while lines come.
    period: Duration,
    /// Rounds of the writer's loop, for the tests of its idleness.
    #[cfg(test)]
    writer_rounds: std::sync::atomic::AtomicUsize,
}

/// What the writer does after a look at the buffer.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    /// Nothing waits: park until a line comes.
    Park,
    /// FLUSH_AT bytes wait: write them now.
    Flush,
    /// Lines wait: write them at the end of the period.
    WaitPeriod,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The writer found nothing and parked: the next line wakes it. Under
    /// the same lock as the bytes, so no line can slip between the
    /// writer's look and its park unnoticed.
    writer_parked: bool,
    /// [`FLUSH_AT`] bytes were reached and the writer woken for them: no
    /// line wakes it again until it has taken them.
    woken_for_bytes: bool,
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
        Self::with_period(out, FLUSH_EVERY)
    }

    /// A buffer whose writer flushes every `period` while lines come.
    pub fn with_period(out: Box<dyn Write + Send>, period: Duration) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            output: Mutex::new(Output {
                out,
                spare: Vec::new(),
            }),
            writer: OnceLock::new(),
            period,
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
        let full = bytes.len() >= FLUSH_AT;
        let wake = std::mem::take(&mut pending.writer_parked)
            || (full && !std::mem::replace(&mut pending.woken_for_bytes, true));
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

    /// The writer's look before it waits: what it does next (marked as
    /// parked when nothing waits, so the next line wakes it).
    fn writer_look(&self) -> Look {
        let mut pending = lock(&self.pending);
        pending.writer_parked = pending.bytes.is_empty();
        if pending.writer_parked {
            Look::Park
        } else if pending.bytes.len() >= FLUSH_AT {
            // Made by the line that woke it from its park.
            Look::Flush
        } else {
            Look::WaitPeriod
        }
    }

    /// Writes every waiting line to the output and flushes it.
    pub fn flush(&self) {
        // The output's lock first: two flushes write in the order they took.
        let mut output = lock(&self.output);
        let Output { out, spare } = &mut *output;
        {
            let mut pending = lock(&self.pending);
            std::mem::swap(&mut pending.bytes, spare);
            pending.woken_for_bytes = false;
        }
        if spare.is_empty() {
            return;
        }
        let _ = out.write_all(spare);
        let _ = out.flush();
        let written = spare.len();
        spare.clear();
        spare.shrink_to((2 * written).min(SPARE_KEPT));
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

/// Starts the thread that flushes `buffer` every period while lines come
/// (sooner when [`FLUSH_AT`] bytes wait), parked while none do, until the
/// last handle to it is gone; false when no thread could be made.
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
        let look = buffer.writer_look();
        let period = buffer.period;
        drop(buffer);
        match look {
            Look::Park => {
                // Woken by a line, by the log going away, or spuriously:
                // each looks again.
                std::thread::park();
                continue;
            }
            Look::Flush => {}
            // Until the period is over, or a line makes FLUSH_AT bytes (a
            // wake that came late only makes the next flush early).
            Look::WaitPeriod => std::thread::park_timeout(period),
        }
        let Some(buffer) = weak.upgrade() else { return };
        buffer.flush();
    }
}

#[cfg(test)]
#[path = "log_buffer_tests.rs"]
mod tests;
