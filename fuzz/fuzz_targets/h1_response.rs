//! What an upstream sends on a connection the proxy speaks HTTP/1.1 on
//! itself: response heads and bodies in every framing, arriving in pieces
//! of any size. Parsing never panics; a head is taken off the buffer only
//! whole; a body never yields more bytes than arrived, and once ended asks
//! for nothing more.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use osm_proxy::h1::{
    body::{BodyDecoder, Decoded},
    response::{self, Parsed},
};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let head_request = control & 1 == 1;
    let step = usize::from(control >> 1).max(1);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut feed = |buf: &mut BytesMut| {
        let end = (fed + step).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        let more = end > fed;
        fed = end;
        more
    };
    // Heads, until a final one.
    let head = loop {
        let before = buf.len();
        match response::parse(&mut buf, head_request) {
            Ok(Parsed::Final(head)) => {
                assert!(buf.len() < before);
                break head;
            }
            Ok(Parsed::Interim) => assert!(buf.len() < before),
            Ok(Parsed::Partial) => {
                assert_eq!(buf.len(), before);
                if !feed(&mut buf) {
                    return;
                }
            }
            Err(_) => return,
        }
    };
    let mut decoder = BodyDecoder::new(head.framing);
    let mut closed = false;
    let mut yielded = 0usize;
    loop {
        let available = buf.len();
        match decoder.decode(&mut buf, closed) {
            Ok(Decoded::Data(data)) => {
                assert!(!data.is_empty() && data.len() <= available);
                yielded += data.len();
                assert!(yielded <= input.len());
            }
            Ok(Decoded::Trailers(_)) => {}
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                assert_eq!(decoder.decode(&mut buf, closed), Ok(Decoded::End));
                return;
            }
            Ok(Decoded::NeedMore) => {
                assert!(!closed);
                closed = !feed(&mut buf);
            }
            Err(_) => return,
        }
    }
});
