//! Real applications behind the proxies.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The response header saying which of the app's connections (1, 2, ...
/// in the order accepted) carried the request.
pub const CONNECTION_HEADER: &str = "x-app-connection";

/// How many 16 KiB chunks `/books/stream` sends, 2 ms apart.
pub const STREAM_CHUNKS: usize = 64;

/// `chunks` chunks of 16 KiB of `b'x'`, 2 ms apart.
fn streamed(chunks: usize) -> Response<AppBody> {
    let frames = futures_util::stream::iter(0..chunks).then(|_| async {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))
    });
    Response::new(BodyExt::boxed(StreamBody::new(frames)))
}

/// An HTTP/1.1 + HTTP/2 application that says who it is and echoes what it
/// got: body `<name> <METHOD> <path> <request body>`, header `x-app`, the
/// request's `x-test` header back as `x-echo`. Path `/grpc` answers with
/// trailers; a path under `/books/slow` is answered after 300 ms (to hold
/// requests in flight together); an `Upgrade` request switches protocols
/// and echoes bytes; `/books/stream` streams [`STREAM_CHUNKS`] chunks.
/// Every answer names its connection in [`CONNECTION_HEADER`].
#[derive(Clone)]
pub struct HttpApp {
    pub addr: SocketAddr,
    pub name: String,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    open_connections: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<Option<HeaderMap>>>,
    versions: Arc<Mutex<Vec<http::Version>>>,
}

type AppBody = BoxBody<Bytes, Infallible>;

impl HttpApp {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Self {
            addr: listener.local_addr().unwrap(),
            name: name.to_string(),
            requests: Arc::default(),
            connections: Arc::default(),
            open_connections: Arc::default(),
            last_headers: Arc::default(),
            versions: Arc::default(),
        };
        let this = app.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                let connection = this.connections.fetch_add(1, Ordering::SeqCst) + 1;
                this.open_connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let open = this.open_connections.clone();
                    let svc = hyper::service::service_fn(move |req| {
                        let this = this.clone();
                        async move {
                            let mut response = this.respond(req).await;
                            response
                                .headers_mut()
                                .insert(CONNECTION_HEADER, connection.into());
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        app
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }

    /// Headers of the last request.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.last_headers.lock().unwrap().clone()
    }

    /// The HTTP version of each request received, in order.
    pub fn versions(&self) -> Vec<http::Version> {
        self.versions.lock().unwrap().clone()
    }

    async fn respond(&self, mut req: Request<Incoming>) -> Response<AppBody> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        *self.last_headers.lock().unwrap() = Some(req.headers().clone());
        self.versions.lock().unwrap().push(req.version());
        if req.uri().path().starts_with("/books/slow") {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        if req.uri().path() == "/books/stream" {
            return streamed(STREAM_CHUNKS);
        }
        if req.headers().contains_key(http::header::UPGRADE) {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            return Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(Full::new(Bytes::new()).boxed())
                .unwrap();
        }
        let echo = req.headers().get("x-test").cloned();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let text = format!(
            "{} {} {} {}",
            self.name,
            method,
            path,
            String::from_utf8_lossy(&body)
        );
        let mut builder = Response::builder().header("x-app", &self.name);
        if let Some(echo) = echo {
            builder = builder.header("x-echo", echo);
        }
        if path == "/grpc" {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            trailers.insert("x-trailer", self.name.parse().unwrap());
            let frames = vec![
                Ok::<_, Infallible>(Frame::data(Bytes::from(text))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            return builder
                .header("content-type", "application/grpc")
                .body(BodyExt::boxed(body))
                .unwrap();
        }
        builder.body(Full::new(Bytes::from(text)).boxed()).unwrap()
    }
}

/// A server-first TCP service: sends a banner on connect, then echoes.
pub struct ServerFirstApp {
    pub addr: SocketAddr,
}

impl ServerFirstApp {
    pub async fn start(banner: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if stream.write_all(banner).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { addr }
    }
}
