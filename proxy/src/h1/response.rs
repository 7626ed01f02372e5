//! A response head read from an upstream HTTP/1.1 connection, and how its
//! body is delimited (RFC 9112 section 6.3).

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version, header};

use super::{MAX_HEAD_BYTES, MAX_HEADERS};

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// None: a response to HEAD, 204, 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A final response's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: BodyFraming,
    /// The connection can carry another request once this response ends.
    pub keep_alive: bool,
}

/// What the start of a read buffer holds.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim response (100 Continue, 103 Early Hints), taken off the
    /// buffer: the final one follows.
    Interim,
    Final(Head),
}

/// Why a response head is refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("the upstream sent a malformed response head ({0})")]
    Malformed(httparse::Error),
    #[error("the upstream's response head is larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("the upstream's response has a status outside 100-999")]
    BadStatus,
    #[error("the upstream switched protocols on a request that asked for no upgrade")]
    UnaskedUpgrade,
    #[error("the upstream's response has both Transfer-Encoding and Content-Length")]
    LengthAndEncoding,
    #[error("the upstream's response has an invalid Content-Length ({0:?})")]
    BadContentLength(String),
    #[error("the upstream's response has a Transfer-Encoding the proxy cannot frame ({0:?})")]
    BadTransferEncoding(String),
}

/// Parses the head at the start of `buf`, taking it off the buffer when
/// whole. `head_request`: the request was HEAD (no body follows whatever
/// the head says).
pub fn parse(buf: &mut BytesMut, head_request: bool) -> Result<Parsed, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e)),
    };
    if length > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(HeadError::BadStatus)?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Where each field's name and value lie in the head, so the values can
    // share the head's bytes instead of each being copied.
    let base = buf.as_ptr() as usize;
    let spans: Vec<(HeaderName, usize, usize)> = response
        .headers
        .iter()
        .map(|f| {
            let name = HeaderName::from_bytes(f.name.as_bytes())
                .map_err(|_| HeadError::Malformed(httparse::Error::HeaderName))?;
            let start = f.value.as_ptr() as usize - base;
            Ok((name, start, start + f.value.len()))
        })
        .collect::<Result<_, HeadError>>()?;
    let head = buf.split_to(length).freeze();
    if status.is_informational() {
        return match status {
            StatusCode::SWITCHING_PROTOCOLS => Err(HeadError::UnaskedUpgrade),
            _ => Ok(Parsed::Interim),
        };
    }
    let headers = fields_from(&head, spans)?;
    let framing = body_framing(status, head_request, &headers)?;
    let keep_alive = version == Version::HTTP_11
        && framing != BodyFraming::UntilClose
        && !has_token(&headers, header::CONNECTION, "close");
    Ok(Parsed::Final(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// The header map of fields at `spans` of `head`.
pub fn fields_from(
    head: &Bytes,
    spans: Vec<(HeaderName, usize, usize)>,
) -> Result<HeaderMap, HeadError> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, start, end) in spans {
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|_| HeadError::Malformed(httparse::Error::HeaderValue))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// How the body of a response with `status` and `headers` is delimited.
pub fn body_framing(
    status: StatusCode,
    head_request: bool,
    headers: &HeaderMap,
) -> Result<BodyFraming, HeadError> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyFraming::Empty);
    }
    let encodings = joined(headers, header::TRANSFER_ENCODING);
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    match (encodings, has_length) {
        (Some(_), true) => Err(HeadError::LengthAndEncoding),
        (Some(encodings), false) => {
            let codings: Vec<&str> = encodings.split(',').map(str::trim).collect();
            let chunked = |c: &&str| c.eq_ignore_ascii_case("chunked");
            match codings.iter().position(chunked) {
                Some(at) if at + 1 == codings.len() => Ok(BodyFraming::Chunked),
                // chunked must be last and only once; none: until close.
                Some(_) => Err(HeadError::BadTransferEncoding(encodings)),
                None if codings.iter().any(|c| c.is_empty()) => {
                    Err(HeadError::BadTransferEncoding(encodings))
                }
                None => Ok(BodyFraming::UntilClose),
            }
        }
        (None, true) => content_length(headers).map(BodyFraming::Length),
        (None, false) => Ok(BodyFraming::UntilClose),
    }
}

/// One length from the Content-Length values (several lines or a list
/// are accepted when they all say the same, RFC 9110 section 8.6). Read
/// in place: this runs for nearly every response.
fn content_length(headers: &HeaderMap) -> Result<u64, HeadError> {
    let bad =
        || HeadError::BadContentLength(joined(headers, header::CONTENT_LENGTH).unwrap_or_default());
    let mut length = None;
    let values = headers.get_all(header::CONTENT_LENGTH);
    for value in values
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
    {
        let value = value.trim_ascii();
        if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let parsed = value
            .iter()
            .try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or_else(bad)?;
        if length.is_some_and(|l| l != parsed) {
            return Err(bad());
        }
        length = Some(parsed);
    }
    length.ok_or_else(bad)
}

/// All of a field's values joined by commas (None: absent; a value that
/// is not text is kept as what it can be read as).
fn joined(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    Some(
        values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Whether a comma-separated field lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
