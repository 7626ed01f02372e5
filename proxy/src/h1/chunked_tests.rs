use super::*;
use bytes::Bytes;
use http::HeaderMap;

/// Everything decoded from `input` fed in pieces of `step` bytes: the
/// data joined, the trailers, whether it ended, or the error.
fn decode_in_steps(
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, Option<HeaderMap>, bool), ChunkError> {
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), None);
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(d) => data.extend_from_slice(&d),
            Decoded::Trailers(t) => trailers = Some(t),
            Decoded::End => return Ok((data, trailers, true)),
            Decoded::NeedMore if fed >= input.len() => return Ok((data, trailers, false)),
            Decoded::NeedMore => {
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

#[test]
fn chunks_decode_the_same_whatever_the_reads() {
    let body = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\n\r\n";
    for step in [1, 2, 3, 7, 64] {
        let (data, trailers, ended) = decode_in_steps(body, step).expect("valid");
        assert_eq!(data, b"hello, world", "step {step}");
        assert!(trailers.is_none() && ended, "step {step}");
    }
    let body = b"A\r\n0123456789\r\n0\r\ngrpc-status: 0\r\nx-a: 1\r\n\r\n";
    for step in [1, 5, 100] {
        let (data, trailers, ended) = decode_in_steps(body, step).expect("valid");
        assert_eq!(data, b"0123456789");
        let trailers = trailers.expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        assert_eq!(trailers.len(), 2);
        assert!(ended, "step {step}");
    }
}

#[test]
fn an_unfinished_body_never_ends() {
    for body in [
        &b"5\r\nhel"[..],
        b"5\r\nhello\r\n",
        b"5\r\nhello\r\n0\r\n",
        b"5\r\nhello\r\n0\r\nx: 1\r\n",
    ] {
        let (_, _, ended) = decode_in_steps(body, 3).expect("valid so far");
        assert!(!ended, "{body:?}");
    }
}

#[test]
fn what_two_parties_could_frame_differently_is_refused() {
    for (body, error) in [
        (&b"5\nhello\r\n0\r\n\r\n"[..], ChunkError::BadSizeLine),
        (b"5\r\nhello\n0\r\n\r\n", ChunkError::MissingDataEnd),
        (b"5\r\nhelloXX0\r\n\r\n", ChunkError::MissingDataEnd),
        (b"\r\nhello\r\n", ChunkError::BadSizeLine),
        (b"-5\r\nhello\r\n", ChunkError::BadSizeLine),
        (b"0x5\r\nhello\r\n", ChunkError::BadSizeLine),
        (b"5 x\r\nhello\r\n", ChunkError::BadSizeLine),
        (b"5;a\rb\r\nhello\r\n", ChunkError::BadSizeLine),
        (b"10000000000000000\r\n", ChunkError::BadSizeLine),
        (
            b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            ChunkError::BadTrailers,
        ),
    ] {
        assert_eq!(decode_in_steps(body, 4).err(), Some(error), "{body:?}");
    }
    let long = format!("5;{}\r\nhello\r\n", "e".repeat(MAX_SIZE_LINE));
    assert_eq!(
        decode_in_steps(long.as_bytes(), 512).err(),
        Some(ChunkError::SizeLineTooLong)
    );
}

#[test]
fn the_largest_size_is_read_and_what_follows_the_end_is_left() {
    let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
    let mut decoder = ChunkedDecoder::default();
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Decoded::Data(Bytes::from_static(b"ab")))
    );
    let mut buf = BytesMut::from(&b"0\r\n\r\nHTTP/1.1"[..]);
    let mut decoder = ChunkedDecoder::default();
    assert_eq!(decoder.decode(&mut buf), Ok(Decoded::End));
    assert!(decoder.is_done());
    assert_eq!(&buf[..], b"HTTP/1.1");
}
