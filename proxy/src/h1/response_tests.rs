use super::*;

fn parse_all(text: &str, head_request: bool) -> (Result<Parsed, HeadError>, usize) {
    let mut buf = BytesMut::from(text.as_bytes());
    let parsed = parse(&mut buf, head_request);
    (parsed, buf.len())
}

fn framing_of(text: &str, head_request: bool) -> Result<(BodyFraming, bool), HeadError> {
    match parse_all(text, head_request).0? {
        Parsed::Final(head) => Ok((head.framing, head.keep_alive)),
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn the_framing_follows_rfc_9112_and_refuses_what_could_be_read_two_ways() {
    use BodyFraming::*;
    for (text, head_request, expected) in [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
            false,
            Ok((Length(12), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            Ok((Length(0), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-length: 7\r\n\r\n",
            false,
            Ok((Length(7), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\n",
            false,
            Ok((Length(7), true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            Ok((Chunked, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
            false,
            Ok((Chunked, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            false,
            Ok((UntilClose, false)),
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", false, Ok((UntilClose, false))),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
            false,
            Ok((Length(5), false)),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: x, Close\r\n\r\n",
            false,
            Ok((Length(5), false)),
        ),
        (
            "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
            false,
            Ok((Length(5), false)),
        ),
        (
            "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
            false,
            Ok((Empty, true)),
        ),
        (
            "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            Ok((Empty, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            true,
            Ok((Empty, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            Err(HeadError::LengthAndEncoding),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            false,
            Err(HeadError::BadContentLength("5,6".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n",
            false,
            Err(HeadError::BadContentLength("-5".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
            false,
            Err(HeadError::BadContentLength("+5".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            false,
            Err(HeadError::BadContentLength("99999999999999999999".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
            false,
            Err(HeadError::BadContentLength("".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            false,
            Err(HeadError::BadTransferEncoding("chunked, gzip".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            Err(HeadError::BadTransferEncoding("chunked,chunked".into())),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip,,\r\n\r\n",
            false,
            Err(HeadError::BadTransferEncoding("gzip,,".into())),
        ),
    ] {
        assert_eq!(framing_of(text, head_request), expected, "{text:?}");
    }
}

#[test]
fn a_whole_head_is_taken_off_the_buffer_and_its_fields_kept() {
    let text = "HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nX-Book: a\r\nx-book: b\r\n\r\nabc";
    let (parsed, left) = parse_all(text, false);
    let Ok(Parsed::Final(head)) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(left, 3, "the body stays");
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(head.version, Version::HTTP_11);
    let books: Vec<_> = head.headers.get_all("x-book").iter().collect();
    assert_eq!(books, ["a", "b"]);
}

#[test]
fn a_partial_head_waits_and_an_interim_one_is_skipped() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-le"[..]);
    assert!(matches!(parse(&mut buf, false), Ok(Parsed::Partial)));
    assert_eq!(buf.len(), 27, "nothing taken");
    let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"[..]);
    assert!(matches!(parse(&mut buf, false), Ok(Parsed::Interim)));
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
    let mut buf = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n"[..]);
    assert_eq!(
        parse(&mut buf, false).err(),
        Some(HeadError::UnaskedUpgrade)
    );
}

#[test]
fn malformed_and_oversized_heads_are_refused() {
    for text in [
        "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx\0y: a\r\n\r\n",
    ] {
        let (parsed, _) = parse_all(text, false);
        assert!(
            matches!(parsed, Err(HeadError::Malformed(_))),
            "{text:?}: {parsed:?}"
        );
    }
    let mut many = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..=MAX_HEADERS {
        many.push_str(&format!("x-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(parse_all(&many, false).0.err(), Some(HeadError::TooLarge));
    let long = format!("HTTP/1.1 200 OK\r\nx: {}", "v".repeat(MAX_HEAD_BYTES));
    assert_eq!(parse_all(&long, false).0.err(), Some(HeadError::TooLarge));
}
