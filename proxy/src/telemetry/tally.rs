//! The bytes of a request's body as it is read from the client, for the
//! access log: a tally that travels with the request in its extensions to
//! wherever the body is read (streamed upstream, or buffered for retries).
//! A request without a tally (the log is off) passes frames straight
//! through.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Buf as _;
use http::Request;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Bytes read from the client for one request; travels with the request
/// in its extensions to wherever the body is read.
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<AtomicU64>);

impl Tally {
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The tally of a request (None when its bytes are not counted).
    pub fn of<B>(req: &Request<B>) -> Option<&Tally> {
        req.extensions().get::<Tally>()
    }
}

/// A request body whose data bytes are added to a tally as they pass.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    tally: Option<Tally>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, tally: Option<Tally>) -> Self {
        Self { inner, tally }
    }
}

/// The client's request body on its way upstream, counted into the
/// request's tally when it has one.
pub fn counted(req: Request<Incoming>) -> Request<Counted<Incoming>> {
    let tally = Tally::of(&req).cloned();
    req.map(|inner| Counted { inner, tally })
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Some(tally), Poll::Ready(Some(Ok(frame)))) = (&this.tally, &polled)
            && let Some(data) = frame.data_ref()
        {
            tally.add(data.remaining() as u64);
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
