//! The proxy's own HTTP/1.1 towards upstreams (`osm_proxy::h1`, on the
//! connections a client connection keeps): every framing a response can
//! use reaches the client whole, interim responses are skipped, a response
//! that two parties could frame differently is refused, an upstream that
//! answers before it has read the request is heard, and a connection is
//! reused only when nothing of the last exchange is left on it.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use osm_tests::{
    ProxyOptions, TestProxy,
    client::{Http1Conn, http1_get},
    pki::Pki,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// One scripted answer: its bytes as written, whether the app reads the
/// request's body before answering, whether it closes the connection after.
#[derive(Clone, Copy)]
struct Reply {
    bytes: &'static str,
    read_body: bool,
    close: bool,
}

const fn reply(bytes: &'static str) -> Reply {
    Reply {
        bytes,
        read_body: true,
        close: false,
    }
}

/// A plaintext upstream answering each request with the next reply of its
/// script, recording each request's bytes and the connection it came on
/// (numbered from 1).
struct ScriptedApp {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
    connections: Arc<AtomicUsize>,
}

impl ScriptedApp {
    async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (seen_by_app, counter) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let (script, seen) = (script.clone(), seen_by_app.clone());
                tokio::spawn(serve(stream, number, script, seen));
            }
        });
        Self {
            addr,
            seen,
            connections,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests read so far: connection number and bytes.
    fn seen(&self) -> Vec<(usize, String)> {
        self.seen.lock().unwrap().clone()
    }
}

type Script = Arc<Mutex<std::vec::IntoIter<Reply>>>;

async fn serve(
    mut stream: TcpStream,
    number: usize,
    script: Script,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = read_until(&mut stream, &mut buf, b"\r\n\r\n").await else {
            return;
        };
        let Some(reply) = script.lock().unwrap().next() else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let mut request: Vec<u8> = buf.drain(..head_end).collect();
        if reply.read_body && !head.starts_with("head ") {
            if head.contains("transfer-encoding: chunked") {
                let Some(end) = read_until(&mut stream, &mut buf, b"0\r\n\r\n").await else {
                    return;
                };
                request.extend(buf.drain(..end));
            } else if let Some(length) = content_length(&head) {
                while buf.len() < length {
                    if !read_more(&mut stream, &mut buf).await {
                        return;
                    }
                }
                request.extend(buf.drain(..length));
            }
        }
        seen.lock()
            .unwrap()
            .push((number, String::from_utf8_lossy(&request).into_owned()));
        if stream.write_all(reply.bytes.as_bytes()).await.is_err() || reply.close {
            return;
        }
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads until `marker` is in `buf`; the length up to its end.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, marker: &[u8]) -> Option<usize> {
    loop {
        if let Some(at) = buf.windows(marker.len()).position(|w| w == marker) {
            return Some(at + marker.len());
        }
        if !read_more(stream, buf).await {
            return None;
        }
    }
}

async fn client_of(app: &ScriptedApp) -> TestProxy {
    let config = json!({
        "mesh": {"egress": false},
        "endpoints": [{"key": "shop/store:80", "namespace": "shop", "service": "store",
            "endpoints": [{"address": app.addr.to_string(), "pod": "store-0",
                "workloadKind": "Deployment", "workloadName": "store"}]}],
        "outbound": [{"key": "shop/store:80", "namespace": "shop", "name": "store", "port": 80,
            "hostnames": ["store"], "endpoints": "shop/store:80"}]
    });
    TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_yaml: Some(config.to_string()),
        ..Default::default()
    })
    .await
}

fn request(method: &str, body: &'static str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "store");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_framing_reaches_the_client_whole_on_one_upstream_connection() {
    let app = ScriptedApp::start(vec![
        reply("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"),
        reply("HTTP/1.1 200 OK\r\ntrailer: x-sum\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n"),
        reply("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"),
        reply("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
        reply("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"),
        Reply { close: true, ..reply("HTTP/1.1 200 OK\r\n\r\nuntil the end") },
        reply("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext"),
    ])
    .await;
    let client = client_of(&app).await;
    let mut conn = Http1Conn::connect(client.outbound()).await.unwrap();
    let mut answers = Vec::new();
    for (method, body, headers) in [
        ("GET", "", &[][..]),
        ("GET", "", &[("te", "trailers")][..]),
        ("HEAD", "", &[][..]),
        ("GET", "", &[][..]),
        ("POST", "abc", &[][..]),
        ("GET", "", &[][..]),
    ] {
        answers.push(conn.send(request(method, body, headers)).await.unwrap());
    }
    let got: Vec<(u16, &str)> = answers
        .iter()
        .map(|a| (a.status, a.body.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (200, "hello"),
            (200, "hello world"),
            (200, ""),
            (204, ""),
            (201, ""),
            (200, "until the end")
        ]
    );
    let trailers = answers[1].trailers.as_ref().expect("trailers");
    assert_eq!(trailers["x-sum"], "11");
    assert_eq!(
        answers[2].headers["content-length"], "100",
        "HEAD says the length"
    );
    assert_eq!(app.connections(), 1, "all of them on one connection");
    let seen = app.seen();
    assert!(seen[4].1.starts_with("POST / HTTP/1.1\r\n"), "{seen:?}");
    assert!(
        seen[4].1.ends_with("content-length: 3\r\n\r\nabc"),
        "{seen:?}"
    );
    // The response that ended with the connection leaves none to reuse.
    let next = conn.send(request("GET", "", &[])).await.unwrap();
    assert_eq!((next.status, next.body.as_str()), (200, "next"));
    assert_eq!(app.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_two_parties_could_frame_differently_is_refused_and_its_connection_closed() {
    let app = ScriptedApp::start(vec![
        reply("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        reply("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc"),
        reply("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let client = client_of(&app).await;
    for (round, reason) in [
        (1, "both Transfer-Encoding and Content-Length"),
        (2, "invalid Content-Length"),
    ] {
        let answer = http1_get(client.outbound(), "store", "/").await.unwrap();
        assert_eq!(answer.status, 502, "{answer:?}");
        let said = answer.headers["osm-proxy-error"].to_str().unwrap();
        assert!(said.contains(reason), "{said}");
        assert_eq!(app.connections(), round);
    }
    let answer = http1_get(client.outbound(), "store", "/").await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert_eq!(
        app.connections(),
        3,
        "neither refused connection was reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_line_not_ended_by_crlf_ends_the_response_and_its_connection() {
    let app = ScriptedApp::start(vec![
        reply("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        reply("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let client = client_of(&app).await;
    let mut stream = TcpStream::connect(client.outbound()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: store\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got).await;
    // The head may or may not have left before the body failed; nothing
    // of the bad chunk passes, and the client's connection ends.
    let got = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(!got.contains("hello"), "{got}");
    let answer = http1_get(client.outbound(), "store", "/").await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert_eq!(app.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_answers_before_reading_the_request_body_is_heard() {
    let app = ScriptedApp::start(vec![
        Reply {
            read_body: false,
            ..reply("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!")
        },
        reply("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let client = client_of(&app).await;
    let mut stream = TcpStream::connect(client.outbound()).await.unwrap();
    // Announces 16 MiB, sends 256 KiB, then waits for the answer.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: store\r\ncontent-length: 16777216\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&vec![b'x'; 256 * 1024]).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("big!") {
        match stream.read(&mut chunk).await.unwrap() {
            0 => break,
            n => got.extend_from_slice(&chunk[..n]),
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.ends_with("big!"), "{got}");
    // The half-sent request cannot be followed by another on that
    // connection: the next one goes on a new one.
    let answer = http1_get(client.outbound(), "store", "/").await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert_eq!(app.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_of_unknown_length_goes_up_chunked() {
    let app = ScriptedApp::start(vec![reply(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )])
    .await;
    let client = client_of(&app).await;
    let mut stream = TcpStream::connect(client.outbound()).await.unwrap();
    stream
        .write_all(b"POST /up HTTP/1.1\r\nhost: store\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut got = vec![0u8; 1024];
    let n = stream.read(&mut got).await.unwrap();
    assert!(
        got[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got[..n])
    );
    let seen = app.seen();
    let (_, sent) = &seen[0];
    assert!(sent.contains("transfer-encoding: chunked\r\n"), "{sent}");
    assert!(!sent.contains("content-length"), "{sent}");
    assert!(
        sent.ends_with("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        "{sent}"
    );
}
