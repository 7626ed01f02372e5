//! One request and its response's head on a [`Held`] connection: the
//! request sent ([`super::outgoing`]) while the response head is read, so
//! an upstream that answers before it has read the whole request is heard.

use std::{
    future::poll_fn,
    io,
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::BytesMut;
use http::{Method, Request, Response};
use hyper::body::Body;
use tokio::io::{AsyncRead, ReadBuf};

use super::{
    ForwardError,
    held::{Held, Unsent},
    outgoing::{Outgoing, SendError},
};
use crate::{
    h1::{
        body::BodyDecoder,
        request,
        response::{self, Head, Parsed},
    },
    http_util::UpstreamBody,
};

/// How much a read may add to the read buffer: what hyper starts with.
const READ_SIZE: usize = 8 * 1024;

/// Why an exchange ended without a response head.
enum NoHead {
    /// The connection failed before any of the request left: it can go
    /// on another.
    Untouched(io::Error),
    Failed(String),
}

impl Held {
    /// Whether an idle connection can take a request: false when the
    /// upstream closed it meanwhile, or sent what nobody asked for.
    pub(super) async fn ready(&mut self) -> bool {
        if !self.reusable() {
            return false;
        }
        poll_fn(|cx| {
            let mut probe = [0u8; 64];
            let mut probe = ReadBuf::new(&mut probe);
            Poll::Ready(
                Pin::new(&mut self.io)
                    .poll_read(cx, &mut probe)
                    .is_pending(),
            )
        })
        .await
    }

    /// Sends `req` and reads until the response's head has come; the
    /// decoder then reads its body from this connection. A request the
    /// connection never took comes back.
    pub(super) async fn exchange(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<()>, BodyDecoder), Unsent> {
        let (mut parts, body) = req.into_parts();
        let head_request = parts.method == Method::HEAD;
        let framing = request::request_framing(
            &mut parts.headers,
            body.is_end_stream(),
            body.size_hint().exact(),
        );
        let mut out = Vec::with_capacity(512);
        request::encode_head(&parts.method, &parts.uri, &parts.headers, &mut out);
        self.sending = Some(Outgoing::new(body, framing, out));
        let mut send_failed = None;
        let head = poll_fn(|cx| {
            match self.poll_sending(cx) {
                Poll::Ready(Err(SendError::Untouched(e))) => {
                    return Poll::Ready(Err(NoHead::Untouched(e)));
                }
                Poll::Ready(Err(SendError::Failed(e))) => send_failed = Some(e),
                _ => {}
            }
            self.poll_head(cx, head_request).map_err(NoHead::Failed)
        })
        .await;
        let failed = |reason: String| {
            Unsent::Failed(ForwardError::Reset(format!(
                "upstream request failed: {reason}"
            )))
        };
        match head {
            Ok(head) => {
                self.reusable &= head.keep_alive;
                let mut response = Response::new(());
                *response.status_mut() = head.status;
                *response.version_mut() = head.version;
                *response.headers_mut() = head.headers;
                Ok((response, BodyDecoder::new(head.framing)))
            }
            Err(NoHead::Untouched(e)) => {
                self.reusable = false;
                match self.sending.take() {
                    Some(sending) => Err(Unsent::Request(Box::new(Request::from_parts(
                        parts,
                        sending.into_body(),
                    )))),
                    None => Err(failed(format!("writing the request failed: {e}"))),
                }
            }
            Err(NoHead::Failed(reason)) => {
                self.reusable = false;
                Err(failed(match send_failed {
                    Some(sending) => format!("{sending}; {reason}"),
                    None => reason,
                }))
            }
        }
    }

    /// Sends what remains of the request, if any. A failure stops the
    /// sending (the response may still come) and the connection is not
    /// used again.
    pub(super) fn poll_sending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let Some(sending) = &mut self.sending else {
            return Poll::Ready(Ok(()));
        };
        let sent = ready!(sending.poll_send(&mut self.io, cx));
        if let Err(SendError::Untouched(_)) = &sent {
            return Poll::Ready(sent);
        }
        self.sending = None;
        if sent.is_err() {
            self.reusable = false;
        }
        Poll::Ready(sent)
    }

    /// Reads until a final response head is whole, skipping interim ones.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        head_request: bool,
    ) -> Poll<Result<Head, String>> {
        loop {
            match response::parse(&mut self.read_buf, head_request) {
                Ok(Parsed::Final(head)) => return Poll::Ready(Ok(head)),
                Ok(Parsed::Interim) => continue,
                Ok(Parsed::Partial) => {}
                Err(e) => return Poll::Ready(Err(e.to_string())),
            }
            if self.closed {
                return Poll::Ready(Err(if self.read_buf.is_empty() {
                    "the upstream closed the connection without a response".into()
                } else {
                    "the upstream closed the connection within the response head".into()
                }));
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => self.closed = true,
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(format!("reading the response failed: {e}"))),
            }
        }
    }

    /// Reads more into the read buffer; 0: the upstream closed its side.
    /// Without room left from an earlier read, the read goes to the stack
    /// and the buffer grows by what came: a connection waiting for its
    /// response holds no buffer (8 KB each, 0.5 MB at 64 requests in
    /// flight), and a small response takes only its size. A read that
    /// fills the stack's space says a big body: the buffer keeps room for
    /// the next, read in place.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() - self.read_buf.len() >= READ_SIZE / 8 {
            return tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf);
        }
        let mut space = [MaybeUninit::<u8>::uninit(); READ_SIZE];
        let mut read = ReadBuf::uninit(&mut space);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let got = read.filled();
        let room = if got.len() == READ_SIZE { READ_SIZE } else { 0 };
        self.read_buf.reserve(got.len() + room);
        self.read_buf.extend_from_slice(got);
        Poll::Ready(Ok(got.len()))
    }

    /// The response has ended: what the exchange left decides whether the
    /// connection can take another request (a request still being sent, or
    /// bytes after the response, close it); the read buffer's memory goes.
    pub(super) fn end_response(&mut self) {
        if self.sending.take().is_some() || !self.read_buf.is_empty() {
            self.reusable = false;
        }
        self.read_buf = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::AsyncWriteExt,
        net::{TcpListener, TcpStream},
    };

    use super::*;
    use crate::upstream::stream::{MeshIo, Stream};

    async fn held_and_peer() -> (Held, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let held = Held::new(
            std::sync::Weak::new(),
            MeshIo::new(Stream::Plain(client.unwrap()), false),
        );
        (held, accepted.unwrap().0)
    }

    /// Fills until `want` bytes are in the buffer, taking them out as a
    /// body decoder would (answers the capacities seen after each read).
    async fn read_all(held: &mut Held, want: usize) -> (Vec<u8>, Vec<usize>) {
        let mut got = Vec::new();
        let mut capacities = Vec::new();
        while got.len() < want {
            let n = poll_fn(|cx| held.poll_fill(cx)).await.unwrap();
            assert!(n > 0, "the peer closed after {} bytes", got.len());
            capacities.push(held.read_buf.capacity());
            got.extend_from_slice(&held.read_buf.split());
        }
        (got, capacities)
    }

    #[tokio::test]
    async fn a_connection_waiting_for_its_response_holds_no_buffer() {
        let (mut held, mut peer) = held_and_peer().await;
        let waiting = poll_fn(|cx| Poll::Ready(held.poll_fill(cx).is_pending())).await;
        assert!(waiting);
        assert_eq!(held.read_buf.capacity(), 0);

        let response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        peer.write_all(response).await.unwrap();
        let (got, capacities) = read_all(&mut held, response.len()).await;
        assert_eq!(got, response);
        // What came, not a whole read's worth.
        assert!(capacities[0] < 256, "{capacities:?}");
    }

    #[tokio::test]
    async fn a_big_body_comes_whole_and_is_read_in_place_after_the_first_read() {
        let (mut held, mut peer) = held_and_peer().await;
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let body = body.clone();
            tokio::spawn(async move {
                peer.write_all(&body).await.unwrap();
                peer
            })
        };
        let (got, capacities) = read_all(&mut held, body.len()).await;
        assert_eq!(got.len(), body.len());
        assert!(got == body, "the bytes differ");
        // Full reads keep room for the next, so a big body does not go
        // through the stack read by read.
        assert!(
            capacities.iter().any(|&c| c >= 2 * READ_SIZE),
            "{capacities:?}"
        );
        drop(writer.await.unwrap());
    }
}
