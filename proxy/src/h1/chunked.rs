//! The chunked transfer coding of a response body (RFC 9112 section 7.1),
//! decoded as it arrives.

use bytes::{Buf, BytesMut};

use super::{Decoded, MAX_HEAD_BYTES, MAX_HEADERS, response::fields_from};

/// The longest chunk-size line, extensions included: the proxy ignores
/// extensions but reads past them.
const MAX_SIZE_LINE: usize = 4096;

/// Where in the coding the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A chunk-size line comes next.
    Size,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section after the last chunk.
    Trailers,
    Done,
}

/// Why a chunked body is refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the upstream sent an invalid chunk size line")]
    BadSizeLine,
    #[error("the upstream's chunk size line is longer than {MAX_SIZE_LINE} bytes")]
    SizeLineTooLong,
    #[error("the upstream's chunk data is not followed by CRLF")]
    MissingDataEnd,
    #[error("the upstream sent an invalid trailer section")]
    BadTrailers,
}

/// Decodes a chunked body from a read buffer, taking what it decodes off.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next piece of the body from `buf`: data as soon as any of a
    /// chunk is there, the trailers, or the end.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(size) = size_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = match size {
                        0 => State::Trailers,
                        n => State::Data(n),
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError::MissingDataEnd);
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(Decoded::End),
            }
        }
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Decoded::End);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let length = match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((length, _))) => length,
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => {
                return Ok(Decoded::NeedMore);
            }
            Ok(httparse::Status::Partial) | Err(_) => return Err(ChunkError::BadTrailers),
        };
        let base = buf.as_ptr() as usize;
        let spans = fields
            .iter()
            .take_while(|f| !f.name.is_empty())
            .map(|f| {
                let name = http::HeaderName::from_bytes(f.name.as_bytes())
                    .map_err(|_| ChunkError::BadTrailers)?;
                let start = f.value.as_ptr() as usize - base;
                Ok((name, start, start + f.value.len()))
            })
            .collect::<Result<Vec<_>, ChunkError>>()?;
        let section = buf.split_to(length).freeze();
        let trailers = fields_from(&section, spans).map_err(|_| ChunkError::BadTrailers)?;
        self.state = State::Done;
        Ok(Decoded::Trailers(trailers))
    }
}

/// The size of the chunk whose size line starts `buf`, taking the line
/// off (None: the line is not whole yet). Strict: hex digits, then
/// optional extensions, then CRLF; a bare CR or LF anywhere is refused.
fn size_line(buf: &mut BytesMut) -> Result<Option<u64>, ChunkError> {
    let Some(lf) = buf.iter().take(MAX_SIZE_LINE).position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_SIZE_LINE {
            Err(ChunkError::SizeLineTooLong)
        } else {
            Ok(None)
        };
    };
    let line = &buf[..lf];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(ChunkError::BadSizeLine);
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(ChunkError::BadSizeLine);
    }
    let rest = &line[digits..];
    let extensions = rest.trim_ascii_start();
    let valid_rest = extensions.is_empty()
        || (extensions[0] == b';'
            && extensions
                .iter()
                .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80));
    if !valid_rest {
        return Err(ChunkError::BadSizeLine);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ChunkError::BadSizeLine)?;
    let size = u64::from_str_radix(text, 16).map_err(|_| ChunkError::BadSizeLine)?;
    buf.advance(lf + 1);
    Ok(Some(size))
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
