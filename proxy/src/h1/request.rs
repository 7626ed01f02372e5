//! A request as written on an upstream HTTP/1.1 connection: its framing
//! and its head.

use std::io::Write as _;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};

/// How a request's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body.
    Empty,
    /// `Content-Length`: exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: a body whose length is not known
    /// before it ends.
    Chunked,
}

/// The framing of a body that has ended (`end_stream`) or has an `exact`
/// length, and the headers set to say it (any framing headers the request
/// came with are replaced: the body decides, as hyper's client did).
pub fn request_framing(
    headers: &mut HeaderMap,
    end_stream: bool,
    exact: Option<u64>,
) -> RequestFraming {
    headers.remove(header::TRANSFER_ENCODING);
    if end_stream {
        // A GET says nothing of a body; a POST with an empty one keeps
        // saying it is empty.
        if headers.contains_key(header::CONTENT_LENGTH) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        return RequestFraming::Empty;
    }
    match exact {
        Some(length) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            RequestFraming::Length(length)
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            RequestFraming::Chunked
        }
    }
}

/// Appends the request line and header section to `out`. The target is
/// the URI's path and query (origin form; `/` when it has none). Names
/// and values are valid by construction (`http`'s types refuse CR and LF),
/// so nothing a client sent can split the head.
pub fn encode_head(method: &Method, uri: &Uri, headers: &HeaderMap, out: &mut Vec<u8>) {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    encode_fields(headers, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value` lines, one per field value.
pub fn encode_fields(headers: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends one body frame's bytes as `framing` carries them.
pub fn encode_data(framing: RequestFraming, data: &Bytes, out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    if framing == RequestFraming::Chunked {
        // Written in place: no string allocated per chunk.
        let _ = write!(out, "{:x}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// Appends a chunked body's last chunk and its trailer section.
pub fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    if let Some(trailers) = trailers {
        encode_fields(trailers, out);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn framing_fields(map: &HeaderMap) -> Vec<(String, String)> {
        map.iter()
            .filter(|(n, _)| *n == header::CONTENT_LENGTH || *n == header::TRANSFER_ENCODING)
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect()
    }

    #[test]
    fn the_body_decides_the_framing_and_the_headers_say_it() {
        use RequestFraming::*;
        let cl = |v: &str| ("content-length".to_owned(), v.to_owned());
        let te = ("transfer-encoding".to_owned(), "chunked".to_owned());
        for (fields, end_stream, exact, framing, sent) in [
            (vec![], true, Some(0), Empty, vec![]),
            (
                vec![("content-length", "0")],
                true,
                Some(0),
                Empty,
                vec![cl("0")],
            ),
            (
                vec![("content-length", "5")],
                false,
                Some(5),
                Length(5),
                vec![cl("5")],
            ),
            (vec![], false, Some(12), Length(12), vec![cl("12")]),
            (
                vec![("transfer-encoding", "chunked")],
                false,
                None,
                Chunked,
                vec![te.clone()],
            ),
            // A length the body does not have is not passed on.
            (
                vec![("content-length", "9")],
                false,
                None,
                Chunked,
                vec![te.clone()],
            ),
            (
                vec![
                    ("transfer-encoding", "gzip, chunked"),
                    ("content-length", "3"),
                ],
                false,
                Some(3),
                Length(3),
                vec![cl("3")],
            ),
        ] {
            let mut map = headers(&fields);
            assert_eq!(
                request_framing(&mut map, end_stream, exact),
                framing,
                "{fields:?}"
            );
            assert_eq!(framing_fields(&map), sent, "{fields:?}");
        }
    }

    #[test]
    fn the_head_is_the_request_line_and_one_line_per_field() {
        let map = headers(&[
            ("host", "bookstore:14001"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        for (method, uri, line) in [
            (Method::GET, "/books?id=1", "GET /books?id=1 HTTP/1.1\r\n"),
            (Method::POST, "/", "POST / HTTP/1.1\r\n"),
            (Method::OPTIONS, "*", "OPTIONS * HTTP/1.1\r\n"),
        ] {
            let mut out = Vec::new();
            encode_head(&method, &uri.parse().expect("uri"), &map, &mut out);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                format!("{line}host: bookstore:14001\r\naccept: a\r\naccept: b\r\n\r\n")
            );
        }
    }

    #[test]
    fn chunked_data_has_its_size_line_and_the_end_its_trailers() {
        let mut out = Vec::new();
        encode_data(
            RequestFraming::Chunked,
            &Bytes::from_static(&[b'x'; 26]),
            &mut out,
        );
        encode_data(RequestFraming::Chunked, &Bytes::new(), &mut out);
        encode_last_chunk(Some(&headers(&[("grpc-status", "0")])), &mut out);
        assert_eq!(
            out,
            format!("1a\r\n{}\r\n0\r\ngrpc-status: 0\r\n\r\n", "x".repeat(26)).as_bytes()
        );
        let mut out = Vec::new();
        encode_data(
            RequestFraming::Length(3),
            &Bytes::from_static(b"abc"),
            &mut out,
        );
        encode_last_chunk(None, &mut out);
        assert_eq!(out, b"abc0\r\n\r\n");
    }
}
