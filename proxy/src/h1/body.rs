//! A response body read from a connection's buffer by its framing.

use bytes::BytesMut;
use http_body::SizeHint;

pub use super::Decoded;
use super::{
    chunked::{ChunkError, ChunkedDecoder},
    response::BodyFraming,
};

/// Why a body could not be read whole (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the upstream closed the connection before the response body's end")]
    Truncated,
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

/// Where a body is in its framing.
#[derive(Debug, Clone)]
pub enum BodyDecoder {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => Self::Done,
            BodyFraming::Length(n) => Self::Length(n),
            BodyFraming::Chunked => Self::Chunked(ChunkedDecoder::default()),
            BodyFraming::UntilClose => Self::UntilClose,
        }
    }

    /// The body has ended: nothing more to read for it.
    pub fn is_done(&self) -> bool {
        match self {
            Self::Done => true,
            Self::Chunked(chunked) => chunked.is_done(),
            Self::Length(_) | Self::UntilClose => false,
        }
    }

    pub fn size_hint(&self) -> SizeHint {
        match self {
            Self::Length(n) => SizeHint::with_exact(*n),
            Self::Done => SizeHint::with_exact(0),
            Self::Chunked(_) | Self::UntilClose => SizeHint::default(),
        }
    }

    /// The next piece of the body from `buf`; `closed`: the connection
    /// has ended (what is in `buf` is all there will be).
    pub fn decode(&mut self, buf: &mut BytesMut, closed: bool) -> Result<Decoded, BodyError> {
        match self {
            Self::Done => Ok(Decoded::End),
            Self::Length(left) => {
                if buf.is_empty() {
                    return if closed {
                        Err(BodyError::Truncated)
                    } else {
                        Ok(Decoded::NeedMore)
                    };
                }
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= take as u64;
                if *left == 0 {
                    *self = Self::Done;
                }
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Self::Chunked(chunked) => match chunked.decode(buf)? {
                Decoded::NeedMore if closed => Err(BodyError::Truncated),
                decoded => Ok(decoded),
            },
            Self::UntilClose if !buf.is_empty() => Ok(Decoded::Data(buf.split().freeze())),
            Self::UntilClose if closed => {
                *self = Self::Done;
                Ok(Decoded::End)
            }
            Self::UntilClose => Ok(Decoded::NeedMore),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_framing_reads_its_body_and_leaves_the_rest() {
        use BodyFraming::*;
        for (framing, input, closed, data, ended, left) in [
            (Length(5), &b"hello"[..], false, &b"hello"[..], true, 0),
            (Length(5), b"helloHTTP/1.1", false, b"hello", true, 8),
            (Length(5), b"he", false, b"he", false, 0),
            (Empty, b"", false, b"", true, 0),
            (Length(0), b"xyz", false, b"", true, 3),
            (UntilClose, b"all of it", false, b"all of it", false, 0),
            (UntilClose, b"all of it", true, b"all of it", true, 0),
            (
                Chunked,
                b"3\r\nabc\r\n0\r\n\r\nrest",
                false,
                b"abc",
                true,
                4,
            ),
        ] {
            let mut decoder = BodyDecoder::new(framing);
            let mut buf = BytesMut::from(input);
            let mut read = Vec::new();
            let mut done = false;
            loop {
                match decoder.decode(&mut buf, closed).expect("valid") {
                    Decoded::Data(d) => read.extend_from_slice(&d),
                    Decoded::Trailers(_) => {}
                    Decoded::End => {
                        done = true;
                        break;
                    }
                    Decoded::NeedMore => break,
                }
                if decoder.is_done() {
                    done = true;
                    break;
                }
            }
            assert_eq!(read, data, "{framing:?} {input:?}");
            assert_eq!(done, ended, "{framing:?} {input:?}");
            assert_eq!(buf.len(), left, "{framing:?} {input:?}");
        }
    }

    #[test]
    fn a_connection_closed_before_the_end_is_an_error() {
        for (framing, input) in [
            (BodyFraming::Length(5), &b""[..]),
            (BodyFraming::Chunked, b"3\r\nab"),
            (BodyFraming::Chunked, b""),
        ] {
            let mut decoder = BodyDecoder::new(framing);
            let mut buf = BytesMut::from(input);
            let mut result = decoder.decode(&mut buf, true);
            while let Ok(Decoded::Data(_)) = result {
                result = decoder.decode(&mut buf, true);
            }
            assert_eq!(result, Err(BodyError::Truncated), "{framing:?} {input:?}");
        }
    }
}
