//! Clients speaking to a proxy's outbound listener, as an application would.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub trailers: Option<HeaderMap>,
}

async fn read(response: Response<hyper::body::Incoming>) -> anyhow::Result<Answer> {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        trailers,
    })
}

/// One HTTP/1.1 keep-alive connection.
pub struct Http1Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Http1Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        self.sender.ready().await?;
        read(self.sender.send_request(req).await?).await
    }

    /// `GET path` with `Host: host` and extra headers.
    pub async fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut req = Request::get(path).header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Full::new(Bytes::new()))?).await
    }
}

/// One HTTP/1.1 request on a new connection.
pub async fn http1_get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<Answer> {
    Http1Conn::connect(addr).await?.get(host, path, &[]).await
}

/// A WebSocket upgrade request for `GET path` on a new connection to
/// `addr`, sent as raw bytes: the connection, and the response head read
/// up to its blank line, lower-cased.
pub async fn websocket_upgrade(addr: SocketAddr, host: &str, path: &str) -> (TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
                 Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).to_lowercase())
}

/// One HTTP/2 (prior knowledge) connection.
pub struct Http2Conn {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl Http2Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    /// The request URI must be absolute: it carries :authority.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        self.sender.ready().await?;
        read(self.sender.send_request(req).await?).await
    }
}

/// A request body the test feeds chunk by chunk.
pub struct StreamingBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl StreamingBody {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self { rx }
    }
}

impl http_body::Body for StreamingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Sends a request whose body streams, on a connection of its own.
pub async fn send_streaming(
    addr: SocketAddr,
    req: Request<StreamingBody>,
) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    read(sender.send_request(req).await?).await
}
