//! The access log's line of a request, written when the response body has
//! ended (or the client went away), as Envoy writes its lines, so it
//! carries the bytes both ways ([`super::tally`] counts the request's) and
//! the whole duration.
//!
//! Nothing is counted when the access log is off: the response holds no
//! line then and passes frames straight through.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Buf as _;
use hyper::body::{Body, Frame, SizeHint};

use super::{
    access_log::{AccessLog, HttpEntry, LogParts},
    tally::Tally,
};

/// A request's line in the making: its fields as they arrived, the tally
/// its body is counted into, and when it arrived.
pub struct LineStart {
    parts: LogParts,
    received: Tally,
    started: tokio::time::Instant,
}

impl LineStart {
    /// Starts the line of `req`, which arrived at `started`, when `log` is
    /// on (the tally goes into its extensions, for whoever reads its body).
    pub fn of<B>(
        log: &AccessLog,
        req: &mut http::Request<B>,
        started: tokio::time::Instant,
    ) -> Option<Self> {
        if !log.enabled() {
            return None;
        }
        let received = Tally::default();
        req.extensions_mut().insert(received.clone());
        Some(Self {
            parts: LogParts::of(req),
            received,
            started,
        })
    }
}

/// The response to a request, writing its line (`entry` fills it in from
/// the request's fields) to `log` once the body has been sent; as it is
/// when the line was not started (the log is off).
pub fn when_sent<B>(
    line: Option<LineStart>,
    log: &AccessLog,
    response: http::Response<B>,
    entry: impl FnOnce(LogParts) -> HttpEntry,
) -> http::Response<Logged<B>> {
    let Some(LineStart {
        parts,
        received,
        started,
    }) = line
    else {
        return response.map(Logged::plain);
    };
    let entry = entry(parts);
    let log = log.clone();
    response.map(|body| Logged::new(body, log, entry, started, received))
}

/// A line waiting for its response body to end.
struct Pending {
    log: AccessLog,
    entry: HttpEntry,
    started: tokio::time::Instant,
    received: Tally,
}

/// A response body that writes its request's access-log line once it has
/// been sent whole, or dropped unfinished.
pub struct Logged<B> {
    inner: B,
    pending: Option<Box<Pending>>,
}

impl<B> Logged<B> {
    /// A body with no line to write (the log is off).
    pub fn plain(inner: B) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// `entry` is written to `log` when the body ends, with the bytes sent,
    /// the bytes `received` counted meanwhile, and the time since `started`.
    fn new(
        inner: B,
        log: AccessLog,
        entry: HttpEntry,
        started: tokio::time::Instant,
        received: Tally,
    ) -> Self {
        Self {
            inner,
            pending: Some(Box::new(Pending {
                log,
                entry,
                started,
                received,
            })),
        }
    }

    fn finish(&mut self, error: Option<String>) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        pending.entry.bytes_received = pending.received.get();
        pending.entry.duration_ms = pending.started.elapsed().as_secs_f64() * 1000.0;
        if let Some(e) = error {
            pending.entry.response_flags = "UC";
            pending.entry.error.get_or_insert(e);
        }
        pending.log.log(&pending.entry);
    }
}

impl<B: Body + Unpin> Body for Logged<B>
where
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if this.pending.is_none() {
            return polled;
        }
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(p)) = (frame.data_ref(), this.pending.as_mut()) {
                    p.entry.bytes_sent += data.remaining() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(format!("response body: {e}")));
            }
            Poll::Ready(None) => this.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Logged<B> {
    /// The client went away before the body ended, or the body had none to
    /// send: the line is written with what was sent.
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full, StreamBody};

    use super::*;
    use crate::{
        telemetry::{access_log::LogFormat, tally::Counted},
        test_support::Written,
    };

    /// A log whose lines land in `lines`.
    fn log_into(lines: Written) -> AccessLog {
        let dropped = metrics::Counter::noop();
        AccessLog::start(Box::new(lines), dropped, LogFormat::Json)
    }

    fn written(lines: &Written) -> Vec<serde_json::Value> {
        // The writer thread flushes after each batch.
        for _ in 0..200 {
            let text = lines.lines();
            if !text.is_empty() {
                return text
                    .iter()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Vec::new()
    }

    #[tokio::test]
    async fn a_line_carries_the_bytes_of_both_bodies_once_the_response_ends() {
        let lines = Written::default();
        let received = Tally::default();
        let mut request = Counted::new(
            Full::new(Bytes::from_static(b"0123456789")),
            Some(received.clone()),
        );
        while let Some(frame) = request.frame().await {
            frame.unwrap();
        }
        let chunks =
            ["hello ", "world", "!"].map(|s| Ok::<_, std::io::Error>(Frame::data(Bytes::from(s))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let mut response = Logged::new(
            body,
            log_into(lines.clone()),
            HttpEntry::default(),
            tokio::time::Instant::now(),
            received,
        );
        assert!(
            lines.lines().is_empty(),
            "nothing is written before the body is sent"
        );
        while let Some(frame) = response.frame().await {
            frame.unwrap();
        }
        drop(response);
        let written = written(&lines);
        assert_eq!(written.len(), 1, "one line, however the body ended");
        assert_eq!(written[0]["bytes_received"], 10);
        assert_eq!(written[0]["bytes_sent"], 12);
    }

    #[tokio::test]
    async fn a_body_dropped_unsent_still_writes_its_line() {
        let lines = Written::default();
        let response = Logged::new(
            Full::new(Bytes::from_static(b"never read")),
            log_into(lines.clone()),
            HttpEntry::default(),
            tokio::time::Instant::now(),
            Tally::default(),
        );
        drop(response);
        let written = written(&lines);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0]["bytes_sent"], 0);
    }
}
