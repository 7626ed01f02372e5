//! HTTP/1.1 on the upstream connections the proxy drives itself (see
//! [`crate::upstream`]'s connection affinity): the request head and body
//! framing written, the response head parsed, its body's framing decoded.
//!
//! Pure: bytes in, values out. The I/O around it is `upstream::held`. It
//! replaced hyper's client connection there (issue 17): hyper's keeps a
//! request channel, an 8 KB read buffer and an 8 KB head buffer per
//! connection for as long as the connection lives; this keeps nothing
//! between responses.
//!
//! Parsing is strict where a lenient reading would let two parties frame
//! a message differently (response smuggling): a response with both
//! `Transfer-Encoding` and `Content-Length`, differing `Content-Length`
//! values, a `Transfer-Encoding` other than a final `chunked`, or a chunk
//! line not ended by CRLF is refused, and the connection closed.

pub mod body;
pub mod chunked;
pub mod request;
pub mod response;

/// The most bytes a response head (or a chunked body's trailer section)
/// may take: Envoy's default for request heads is 60 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header fields in a response head or trailer section (hyper's
/// default).
pub const MAX_HEADERS: usize = 100;

/// What a body decoder found at the start of its buffer (taken off it).
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(bytes::Bytes),
    Trailers(http::HeaderMap),
    /// The body has ended.
    End,
    /// More bytes are needed.
    NeedMore,
}
