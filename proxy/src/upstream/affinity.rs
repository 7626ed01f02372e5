//! Connection affinity: the HTTP/1.1 connections to upstreams that one
//! downstream HTTP/1.1 connection keeps for itself and drives in its own
//! task.
//!
//! A downstream HTTP/1.1 connection has one request in flight at a time,
//! so one upstream connection per upstream serves all of its requests. Its
//! task writes the request and reads the response itself: no pool lookup,
//! no dispatch to a connection task and back, no wake-up of another task
//! per request (hyper-util's pool did all three). While the response body
//! streams, the body polls the connection; when it ends, the connection
//! goes back to the downstream connection's few (see [`ResponseBody`]).
//! When the downstream connection closes, what it kept is parked with its
//! upstream ([`Parked`]) for the next downstream connection: a client that
//! opens a connection per request still reuses upstream connections.
//!
//! It is used where nothing counts connections: an upstream with a
//! circuit breaker (`maxConnections`, `maxRequestsPerConnection`) goes
//! through the shared pool, where an idle connection serves any
//! downstream connection.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::{
    Connector, ForwardError,
    held::{Held, Parked, Unsent, open},
};
use crate::{
    h1::body::{BodyDecoder, Decoded},
    http_util::{UpstreamBody, strip_hop_by_hop},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many upstream connections one downstream connection keeps between
/// its requests; one more is parked when its request ends. Balancing
/// spreads one downstream connection's requests over a service's
/// endpoints, so more than one.
const MOST_KEPT: usize = 4;

/// The upstream connections one downstream connection keeps; parked when
/// it closes.
#[derive(Debug, Default)]
pub struct Affinity {
    // Boxed: a connection moves between here, a response body and a
    // parking place once per request, as a pointer (hyper's connection
    // state is hundreds of bytes).
    #[expect(clippy::vec_box, reason = "moved per request, as a pointer")]
    kept: Mutex<Vec<Box<Held>>>,
}

impl Drop for Affinity {
    fn drop(&mut self) {
        let kept = std::mem::take(self.kept.get_mut().unwrap_or_else(|e| e.into_inner()));
        let now = Instant::now();
        for held in kept {
            held.park(now);
        }
    }
}

impl Affinity {
    /// Sends `req` to the upstream `parked` stands for, on a connection
    /// this downstream connection keeps, else on a parked one, else on one
    /// opened with `connector`. Hop-by-hop headers are stripped both ways,
    /// as [`super::forward`] does; upgrades never come here.
    pub async fn send(
        self: &Arc<Self>,
        parked: &Arc<Parked>,
        connector: impl FnOnce() -> Connector,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, ForwardError> {
        check_host(&req)?;
        origin_form(req.uri_mut());
        strip_hop_by_hop(req.headers_mut(), false);
        let mut kept = self.take(parked);
        while let Some(mut held) = kept.take().or_else(|| parked.take()) {
            // One the upstream closed while idle is dropped; the next is
            // tried.
            if !held.ready().await {
                continue;
            }
            match held.exchange(req).await {
                Ok((response, body)) => return Ok(self.respond(held, response, body)),
                Err(Unsent::Failed(e)) => return Err(e),
                Err(Unsent::Request(unsent)) => req = *unsent,
            }
        }
        let mut held = open(parked, connector()).await?;
        match held.exchange(req).await {
            Ok((response, body)) => Ok(self.respond(held, response, body)),
            Err(Unsent::Failed(e)) => Err(e),
            Err(Unsent::Request(_)) => Err(ForwardError::Reset(
                "upstream request failed: a new connection closed before the request".into(),
            )),
        }
    }

    #[expect(clippy::vec_box, reason = "moved per request, as a pointer")]
    fn lock(&self) -> MutexGuard<'_, Vec<Box<Held>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, parked: &Arc<Parked>) -> Option<Box<Held>> {
        let mut kept = self.lock();
        // Connections to upstreams gone from the config close here (at
        // most a few to look at).
        kept.retain(|h| h.home.strong_count() > 0);
        let at = kept.iter().position(|h| h.is_for(parked))?;
        Some(kept.swap_remove(at))
    }

    /// Keeps `held` for this downstream connection's next request, or
    /// parks it when this one keeps enough.
    fn give_back(&self, held: Box<Held>) {
        if !held.reusable() {
            return;
        }
        let mut kept = self.lock();
        if kept.len() < MOST_KEPT {
            kept.push(held);
        } else {
            drop(kept);
            held.park(Instant::now());
        }
    }

    /// The response, its body read from the connection until it ends.
    fn respond(
        self: &Arc<Self>,
        mut held: Box<Held>,
        response: Response<()>,
        body: BodyDecoder,
    ) -> Response<ResponseBody> {
        let (mut parts, ()) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        let body = if body.is_done() {
            held.end_response();
            self.give_back(held);
            Inner::Ended
        } else {
            Inner::Kept {
                held,
                home: self.clone(),
                body,
            }
        };
        Response::from_parts(parts, ResponseBody { inner: body })
    }
}

/// A Host header that is not a valid authority is refused, as the pool's
/// absolute URI refuses it.
fn check_host<B>(req: &Request<B>) -> Result<(), ForwardError> {
    if req.uri().authority().is_some() {
        return Ok(());
    }
    match req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) if http::uri::Authority::try_from(host).is_err() => {
            Err(ForwardError::BadAuthority)
        }
        _ => Ok(()),
    }
}

/// The request target an HTTP/1.1 origin server expects: the path and
/// query alone (an absolute-form target keeps its authority in Host).
fn origin_form(uri: &mut Uri) {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return;
    }
    *uri = match uri.path_and_query() {
        Some(path) if path.as_str() != "/" => {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(path.clone());
            Uri::from_parts(parts).unwrap_or_default()
        }
        _ => Uri::default(),
    };
}

/// A response body from an upstream: through the shared pool (hyper's),
/// or read from a kept connection, which goes back to the downstream
/// connection's few when it ends. One dropped before its end closes the
/// connection (HTTP/1.1 cannot skip the rest of a response).
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Pooled(Incoming),
    Kept {
        held: Box<Held>,
        home: Arc<Affinity>,
        body: BodyDecoder,
    },
    Ended,
}

impl From<Incoming> for ResponseBody {
    fn from(inner: Incoming) -> Self {
        Self {
            inner: Inner::Pooled(inner),
        }
    }
}

impl ResponseBody {
    /// The body has ended: its connection goes back, if it can carry
    /// another request.
    fn finish(&mut self) {
        if let Inner::Kept { mut held, home, .. } = std::mem::replace(&mut self.inner, Inner::Ended)
        {
            held.end_response();
            home.give_back(held);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let (held, body) = match &mut this.inner {
            Inner::Pooled(incoming) => {
                return Pin::new(incoming).poll_frame(cx).map_err(Into::into);
            }
            Inner::Ended => return Poll::Ready(None),
            Inner::Kept { held, body, .. } => (held, body),
        };
        // The request's body may still be going up (an upstream that
        // answers as it reads); a failure there only stops it.
        let _ = held.poll_sending(cx);
        loop {
            match body.decode(&mut held.read_buf, held.closed) {
                Ok(Decoded::Data(data)) => {
                    if body.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Trailers(trailers)) => {
                    this.finish();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => match ready!(held.poll_fill(cx)) {
                    Ok(0) => held.closed = true,
                    Ok(_) => {}
                    Err(e) => {
                        this.inner = Inner::Ended;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                },
                Err(e) => {
                    this.inner = Inner::Ended;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Pooled(incoming) => incoming.is_end_stream(),
            Inner::Kept { body, .. } => body.is_done(),
            Inner::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Pooled(incoming) => incoming.size_hint(),
            Inner::Kept { body, .. } => body.size_hint(),
            Inner::Ended => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_sent_is_origin_form() {
        for (target, sent) in [
            ("/books?id=1", "/books?id=1"),
            ("/", "/"),
            ("http://bookstore:14001/books?id=1", "/books?id=1"),
            ("http://bookstore:14001", "/"),
            ("http://bookstore:14001/", "/"),
        ] {
            let mut uri: Uri = target.parse().expect("uri");
            origin_form(&mut uri);
            assert_eq!(uri.to_string(), sent, "{target}");
        }
    }

    #[test]
    fn a_host_that_is_no_authority_is_refused() {
        for (host, refused) in [
            (Some("bookstore:14001"), false),
            (Some("bookstore"), false),
            (None, false),
            (Some("book store"), true),
            (Some("bookstore/books"), true),
            (Some("book\"store"), true),
        ] {
            let mut builder = Request::builder().uri("/");
            if let Some(host) = host {
                builder = builder.header(http::header::HOST, host);
            }
            let req = builder.body(()).expect("request");
            assert_eq!(check_host(&req).is_err(), refused, "{host:?}");
        }
    }
}
