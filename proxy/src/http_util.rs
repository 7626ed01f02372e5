//! HTTP helpers shared by inbound and outbound: the request body to an
//! upstream, hop-by-hop headers and URIs for the pooled client.

use bytes::Bytes;
use http::{HeaderMap, Request, Uri, header};
use http_body_util::Either;
use hyper::body::Incoming;

/// A request body to an upstream: streamed as it arrives, or replayed from
/// a buffer (a request that may be retried).
pub type UpstreamBody = Either<crate::telemetry::tally::Counted<Incoming>, Replay>;

/// A request body read whole, sent again for each try: its bytes, then
/// its trailers.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Replay {
    pub fn new(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Self {
            data: (!data.is_empty()).then_some(data),
            trailers,
        }
    }
}

impl hyper::body::Body for Replay {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = match (this.data.take(), this.trailers.take()) {
            (Some(data), trailers) => {
                this.trailers = trailers;
                Some(Ok(hyper::body::Frame::data(data)))
            }
            (None, Some(trailers)) => Some(Ok(hyper::body::Frame::trailers(trailers))),
            (None, None) => None,
        };
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// The request's authority: the URI's, else the Host header.
pub fn authority<B>(req: &Request<B>) -> Option<&str> {
    authority_of(req.uri(), req.headers())
}

/// [`authority`] from a request's parts.
pub fn authority_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

/// Whether an HTTP/1 request asks to switch protocols (WebSocket, ...).
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() <= http::Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req.headers().get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1): they describe one
/// connection, not the message. `Upgrade` and `Connection: upgrade` stay when
/// the request is an upgrade, which must reach the next hop.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| header::HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(keep_upgrade && n == header::UPGRADE))
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection", "transfer-encoding"] {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
    if !keep_upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// The absolute URI hyper's pooled client needs, keeping the request's own
/// authority (it reaches the upstream as Host or :authority unchanged).
pub fn absolute_uri(
    uri: &Uri,
    authority: Option<&str>,
    fallback: std::net::SocketAddr,
) -> Option<Uri> {
    if uri.scheme().is_some() && uri.authority().is_some() {
        return Some(uri.clone());
    }
    // The fallback is formatted only when there is no Host: this runs
    // for every request.
    let authority = match authority {
        Some(a) => http::uri::Authority::try_from(a).ok()?,
        None => http::uri::Authority::try_from(fallback.to_string()).ok()?,
    };
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority);
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_and_end_to_end_kept() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-hop".parse().expect("v"));
        h.insert("x-hop", "1".parse().expect("v"));
        h.insert("keep-alive", "timeout=5".parse().expect("v"));
        h.insert("te", "gzip".parse().expect("v"));
        h.insert("x-end", "2".parse().expect("v"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-end"], "2");

        let mut h = HeaderMap::new();
        h.insert("te", "trailers".parse().expect("v"));
        h.insert("connection", "Upgrade".parse().expect("v"));
        h.insert("upgrade", "websocket".parse().expect("v"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "Upgrade");
    }

    #[test]
    fn absolute_uri_keeps_path_query_and_authority() {
        let fallback: std::net::SocketAddr = "10.0.0.1:80".parse().expect("addr");
        let uri: Uri = "/books?id=1".parse().expect("uri");
        let abs = absolute_uri(&uri, Some("bookstore:14001"), fallback).expect("builds");
        assert_eq!(abs.to_string(), "http://bookstore:14001/books?id=1");
        let abs = absolute_uri(&uri, None, fallback).expect("builds");
        assert_eq!(abs.to_string(), "http://10.0.0.1:80/books?id=1");
        assert!(absolute_uri(&uri, Some("bad host"), fallback).is_none());
    }
}
