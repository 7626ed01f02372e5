//! A request being written on an upstream HTTP/1.1 connection: its body
//! taken as it comes, several frames to a write when they are there
//! together.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use hyper::body::{Body, Frame};
use tokio::io::AsyncWrite;

use crate::{
    h1::request::{self, RequestFraming},
    http_util::UpstreamBody,
};

/// How many encoded bytes the writer gathers before it writes.
const WRITE_BATCH: usize = 64 * 1024;

/// A request being sent: what is encoded and not yet written, and the
/// rest of its body.
pub(super) struct Outgoing {
    body: UpstreamBody,
    framing: RequestFraming,
    /// Body bytes still owed under a Content-Length.
    owed: u64,
    out: Vec<u8>,
    written: usize,
    body_done: bool,
    flushed: bool,
    /// Nothing of the request has left: no byte written, no body frame
    /// taken (it can still go on another connection).
    untouched: bool,
}

/// Why sending stopped.
pub(super) enum SendError {
    /// The connection failed before any of the request left.
    Untouched(io::Error),
    Failed(String),
}

impl Outgoing {
    pub(super) fn new(body: UpstreamBody, framing: RequestFraming, out: Vec<u8>) -> Self {
        Self {
            body,
            framing,
            owed: match framing {
                RequestFraming::Length(n) => n,
                _ => 0,
            },
            out,
            written: 0,
            body_done: framing == RequestFraming::Empty,
            flushed: false,
            untouched: true,
        }
    }

    /// Moves the request along: the body's ready frames encoded, then
    /// written and flushed. Ready once all of it has been sent.
    pub(super) fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>> {
        loop {
            while !self.body_done && self.out.len() - self.written < WRITE_BATCH {
                match Pin::new(&mut self.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        self.untouched = false;
                        self.encode(frame).map_err(SendError::Failed)?;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Err(SendError::Failed(format!(
                            "the request body failed: {e}"
                        ))));
                    }
                    Poll::Ready(None) => self.end().map_err(SendError::Failed)?,
                    Poll::Pending => break,
                }
            }
            if self.written < self.out.len() {
                match ready!(Pin::new(&mut *io).poll_write(cx, &self.out[self.written..])) {
                    Ok(0) => {
                        return Poll::Ready(Err(self.io_error(io::ErrorKind::WriteZero.into())));
                    }
                    Ok(n) => {
                        self.untouched = false;
                        self.flushed = false;
                        self.written += n;
                        if self.written == self.out.len() {
                            self.out.clear();
                            self.written = 0;
                        }
                        continue;
                    }
                    Err(e) => return Poll::Ready(Err(self.io_error(e))),
                }
            }
            if !self.flushed {
                ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(|e| self.io_error(e))?;
                self.flushed = true;
            }
            return if self.body_done {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
    }

    /// The request's body, for another connection (only while untouched).
    pub(super) fn into_body(self) -> UpstreamBody {
        self.body
    }

    fn io_error(&self, e: io::Error) -> SendError {
        if self.untouched {
            SendError::Untouched(e)
        } else {
            SendError::Failed(format!("writing the request failed: {e}"))
        }
    }

    fn encode(&mut self, frame: Frame<bytes::Bytes>) -> Result<(), String> {
        match frame.into_data() {
            Ok(data) => {
                if self.framing == RequestFraming::Empty && !data.is_empty() {
                    return Err("the request body has data after its end".into());
                }
                if let RequestFraming::Length(_) = self.framing {
                    self.owed = self
                        .owed
                        .checked_sub(data.len() as u64)
                        .ok_or("the request body is longer than its Content-Length")?;
                }
                request::encode_data(self.framing, &data, &mut self.out);
                Ok(())
            }
            Err(frame) => {
                // Trailers end a chunked body; a length-delimited one has
                // nowhere to carry them (as with hyper).
                if let (Ok(trailers), RequestFraming::Chunked) =
                    (frame.into_trailers(), self.framing)
                {
                    request::encode_last_chunk(Some(&trailers), &mut self.out);
                    self.framing = RequestFraming::Empty;
                }
                Ok(())
            }
        }
    }

    fn end(&mut self) -> Result<(), String> {
        self.body_done = true;
        match self.framing {
            RequestFraming::Chunked => request::encode_last_chunk(None, &mut self.out),
            RequestFraming::Length(_) if self.owed > 0 => {
                return Err("the request body is shorter than its Content-Length".into());
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use bytes::Bytes;
    use http::HeaderMap;
    use http_body_util::Either;

    use super::*;
    use crate::http_util::Replay;

    /// A writer that keeps each write apart.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn send(
        framing: RequestFraming,
        data: &'static [u8],
        trailers: Option<HeaderMap>,
    ) -> (Result<(), String>, Vec<Vec<u8>>) {
        let body = Either::Right(Replay::new(Bytes::from_static(data), trailers));
        let mut outgoing = Outgoing::new(body, framing, b"HEAD\r\n\r\n".to_vec());
        let mut writes = Writes::default();
        let sent = poll_fn(|cx| outgoing.poll_send(&mut writes, cx)).await;
        let sent = sent.map_err(|e| match e {
            SendError::Untouched(e) => format!("untouched: {e}"),
            SendError::Failed(e) => e,
        });
        (sent, writes.0)
    }

    #[tokio::test]
    async fn a_request_whose_body_is_there_goes_in_one_write() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "3".parse().expect("value"));
        for (framing, trailers, written) in [
            (RequestFraming::Length(3), None, &b"HEAD\r\n\r\nabc"[..]),
            (
                RequestFraming::Chunked,
                None,
                b"HEAD\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            ),
            (
                RequestFraming::Chunked,
                Some(trailers),
                b"HEAD\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 3\r\n\r\n",
            ),
        ] {
            let (sent, writes) = send(framing, b"abc", trailers).await;
            assert_eq!(sent, Ok(()), "{framing:?}");
            assert_eq!(writes, [written.to_vec()], "{framing:?}");
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_the_length_it_said_is_not_sent() {
        for (length, error) in [
            (2, "the request body is longer than its Content-Length"),
            (4, "the request body is shorter than its Content-Length"),
        ] {
            let (sent, writes) = send(RequestFraming::Length(length), b"abc", None).await;
            assert_eq!(sent, Err(error.to_owned()), "{length}");
            assert!(writes.is_empty(), "{length}: nothing written");
        }
    }
}
