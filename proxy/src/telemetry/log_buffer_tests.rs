use std::sync::{Arc, Mutex};

use super::*;

/// An output whose bytes land in a shared buffer; counts its writes.
#[derive(Clone, Default)]
struct Sink {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<usize>>,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes.lock().unwrap().extend_from_slice(b);
        *self.writes.lock().unwrap() += 1;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }

    /// The text once something was written, waiting up to `limit`.
    fn text_within(&self, limit: std::time::Duration) -> String {
        wait_until(limit, || !self.text().is_empty());
        self.text()
    }
}

/// Waits until `done`, for up to `limit`.
fn wait_until(limit: std::time::Duration, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(FLUSH_EVERY / 10);
    }
}

fn line(s: &'static str) -> impl FnOnce(&mut Vec<u8>) -> bool {
    move |buf: &mut Vec<u8>| {
        buf.extend_from_slice(s.as_bytes());
        true
    }
}

#[test]
fn lines_are_written_in_order_in_one_write_when_flushed() {
    let sink = Sink::default();
    let buffer = LogBuffer::new(Box::new(sink.clone()));
    assert!(buffer.append(line("a")));
    assert!(buffer.append(line("bb")));
    assert!(buffer.append(line("ccc")));
    assert_eq!(sink.text(), "", "appending writes nothing");
    buffer.flush();
    assert_eq!(sink.text(), "a\nbb\nccc\n");
    assert_eq!(*sink.writes.lock().unwrap(), 1);
    buffer.flush();
    assert_eq!(*sink.writes.lock().unwrap(), 1, "nothing pending: no write");
    assert!(buffer.append(line("d")));
    buffer.flush();
    assert_eq!(sink.text(), "a\nbb\nccc\nd\n");
}

#[test]
fn a_line_that_fails_to_write_leaves_nothing_behind() {
    let sink = Sink::default();
    let buffer = LogBuffer::new(Box::new(sink.clone()));
    assert!(buffer.append(line("kept")));
    let failed = buffer.append(|buf: &mut Vec<u8>| {
        buf.extend_from_slice(b"half a li");
        false
    });
    assert!(!failed);
    buffer.flush();
    assert_eq!(sink.text(), "kept\n");
}

#[test]
fn lines_are_refused_once_the_pending_bytes_reach_the_bound() {
    let sink = Sink::default();
    let buffer = LogBuffer::new(Box::new(sink.clone()));
    let chunk = vec![b'x'; 1023];
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..(MAX_PENDING / 1024 + 10) {
        let ok = buffer.append(|buf: &mut Vec<u8>| {
            buf.extend_from_slice(&chunk);
            true
        });
        if ok { accepted += 1 } else { refused += 1 }
    }
    assert_eq!(accepted, MAX_PENDING / 1024);
    assert_eq!(refused, 10);
    assert_eq!(buffer.pending(), MAX_PENDING);
    buffer.flush();
    assert_eq!(buffer.pending(), 0);
    assert!(buffer.append(line("after")), "room again once written");
    assert_eq!(sink.bytes.lock().unwrap().len(), MAX_PENDING);
}

#[test]
fn the_writer_thread_flushes_without_being_woken() {
    let sink = Sink::default();
    let buffer = Arc::new(LogBuffer::new(Box::new(sink.clone())));
    assert!(start_writer(&buffer));
    assert!(buffer.append(line("one")));
    assert_eq!(sink.text_within(FLUSH_EVERY * 50), "one\n");
}

#[test]
fn lines_pending_when_the_log_goes_away_are_written() {
    let sink = Sink::default();
    let buffer = Arc::new(LogBuffer::new(Box::new(sink.clone())));
    assert!(start_writer(&buffer));
    assert!(buffer.append(line("last")));
    drop(buffer);
    // Written by this drop, or by the writer's if it held the buffer then.
    assert_eq!(sink.text_within(FLUSH_EVERY * 50), "last\n");
}

fn writer_rounds(buffer: &LogBuffer) -> usize {
    buffer
        .writer_rounds
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn an_idle_writer_parks_and_the_next_line_wakes_it() {
    let sink = Sink::default();
    let buffer = Arc::new(LogBuffer::new(Box::new(sink.clone())));
    assert!(start_writer(&buffer));
    assert!(buffer.append(line("one")));
    assert_eq!(sink.text_within(FLUSH_EVERY * 50), "one\n");
    // The round after the write finds nothing and parks: watch the writer
    // over ten flush periods once it has (a writer that slept instead
    // would go round ten times).
    wait_until(FLUSH_EVERY * 50, || lock(&buffer.pending).writer_parked);
    let parked_at = writer_rounds(&buffer);
    std::thread::sleep(FLUSH_EVERY * 10);
    let rounds = writer_rounds(&buffer) - parked_at;
    assert!(rounds <= 1, "the idle writer went round {rounds} times");
    assert!(buffer.append(line("two")));
    wait_until(FLUSH_EVERY * 50, || sink.text() == "one\ntwo\n");
    assert_eq!(sink.text(), "one\ntwo\n", "the line after the quiet spell");
    assert_eq!(*sink.writes.lock().unwrap(), 2);
}

#[test]
fn lines_that_make_flush_at_bytes_wake_the_writer_before_its_period() {
    let sink = Sink::default();
    // A period no test outlives: whatever is written came from a wake.
    let hour = std::time::Duration::from_secs(3600);
    let buffer = Arc::new(LogBuffer::with_period(Box::new(sink.clone()), hour));
    assert!(start_writer(&buffer));
    wait_until(FLUSH_EVERY * 50, || lock(&buffer.pending).writer_parked);
    assert!(buffer.append(line("small")));
    // Woken by the line after its park, the writer now waits for its period.
    wait_until(FLUSH_EVERY * 50, || writer_rounds(&buffer) >= 2);
    assert_eq!(sink.text(), "", "a small line waits for the period");
    let chunk = vec![b'x'; FLUSH_AT];
    for expected_writes in 1..=2 {
        assert!(buffer.append(|buf: &mut Vec<u8>| {
            buf.extend_from_slice(&chunk);
            true
        }));
        wait_until(FLUSH_EVERY * 50, || {
            *sink.writes.lock().unwrap() == expected_writes
        });
        let writes = *sink.writes.lock().unwrap();
        assert_eq!(
            writes, expected_writes,
            "the writer wakes for every {FLUSH_AT} bytes, not once"
        );
    }
    let written = sink.bytes.lock().unwrap().len();
    assert_eq!(written, "small\n".len() + 2 * (FLUSH_AT + 1));
    assert_eq!(buffer.pending(), 0);
}
