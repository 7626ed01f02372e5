//! Protocol detection on a connection's first bytes.
//!
//! The bytes read are kept and replayed ([`Prefixed`]), so whatever serves the
//! connection next sees it from its first byte. A client that sends nothing
//! (a server-first protocol such as MySQL or SMTP) is treated as opaque TCP
//! once the detection timeout passes, so it never hangs.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Tls,
    Http1,
    Http2,
    Opaque,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const LONGEST_METHOD: usize = 16;
const MAX_PEEK: usize = 64;

/// Classifies the first bytes; `None` when more bytes are needed to tell.
pub fn classify(buf: &[u8]) -> Option<Detected> {
    let first = *buf.first()?;
    if first == 0x16 {
        // A TLS handshake record: content type 22, then version major 3.
        return match buf.get(1) {
            None => None,
            Some(3) => Some(Detected::Tls),
            Some(_) => Some(Detected::Opaque),
        };
    }
    if buf.starts_with(H2_PREFACE) {
        return Some(Detected::Http2);
    }
    if H2_PREFACE.starts_with(buf) {
        return None;
    }
    // HTTP/1: a method token (upper-case letters) followed by a space.
    for (i, b) in buf.iter().enumerate().take(LONGEST_METHOD) {
        match b {
            b'A'..=b'Z' | b'-' | b'_' => continue,
            b' ' if i > 0 => return Some(Detected::Http1),
            _ => return Some(Detected::Opaque),
        }
    }
    if buf.len() >= LONGEST_METHOD {
        Some(Detected::Opaque)
    } else {
        None
    }
}

/// Reads until the protocol is known, the peer closes, or `timeout` passes.
/// Returns what was detected and the bytes read.
pub async fn detect<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> io::Result<(Detected, Bytes)> {
    let mut buf = BytesMut::with_capacity(MAX_PEEK);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(d) = classify(&buf) {
            return Ok((d, buf.freeze()));
        }
        if buf.len() >= MAX_PEEK {
            return Ok((Detected::Opaque, buf.freeze()));
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Ok((Detected::Opaque, buf.freeze())),
            Ok(Ok(0)) => {
                return if buf.is_empty() {
                    Err(io::ErrorKind::UnexpectedEof.into())
                } else {
                    Ok((Detected::Opaque, buf.freeze()))
                };
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// A stream whose first bytes were already read; they are replayed first.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The bytes not yet read, and the stream.
    pub fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        let cases: &[(&[u8], Option<Detected>)] = &[
            (b"", None),
            (b"\x16", None),
            (b"\x16\x03\x01\x02\x00", Some(Detected::Tls)),
            (b"\x16\x99", Some(Detected::Opaque)),
            (b"GET / HTTP/1.1\r\n", Some(Detected::Http1)),
            (b"POST /x HTTP/1.1\r\n", Some(Detected::Http1)),
            (b"GE", None),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Some(Detected::Http2)),
            (b"PRI * HTTP/2", None),
            (b"PRI / HTTP/1.1\r\n", Some(Detected::Http1)),
            (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", Some(Detected::Opaque)),
            (b"get / HTTP/1.1", Some(Detected::Opaque)),
            (b" GET", Some(Detected::Opaque)),
            (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", Some(Detected::Opaque)),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                classify(bytes),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[tokio::test]
    async fn detection_reads_split_input_and_replays_it() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(b"GE").await.expect("write");
            tokio::task::yield_now().await;
            client
                .write_all(b"T / HTTP/1.1\r\n\r\n")
                .await
                .expect("write");
            client
        });
        let (d, prefix) = detect(&mut server, Duration::from_secs(5))
            .await
            .expect("detects");
        assert_eq!(d, Detected::Http1);
        let _client = writer.await.expect("writer");
        let mut replay = Prefixed::new(prefix, server);
        let mut first = [0u8; 4];
        replay.read_exact(&mut first).await.expect("read");
        assert_eq!(&first, b"GET ");
    }

    #[tokio::test(start_paused = true)]
    async fn silent_clients_are_opaque_after_the_timeout() {
        let (_client, mut server) = tokio::io::duplex(64);
        let (d, prefix) = detect(&mut server, Duration::from_millis(300))
            .await
            .expect("detects");
        assert_eq!(d, Detected::Opaque);
        assert!(prefix.is_empty());
    }
}
