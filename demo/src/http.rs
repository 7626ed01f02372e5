//! A minimal HTTP server (HTTP/1.1, and HTTP/2 with prior knowledge) and
//! client for the demo apps (hyper).

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};

pub type Reply = Response<Full<Bytes>>;

/// A response with a status and a body.
pub fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

pub fn json(status: u16, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string())
}

/// Serves `handler` at `port` on every address of the pod (or on `BIND`)
/// until the process ends; prints the address it listens on.
pub async fn serve<H, F>(port: u16, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let ip: std::net::IpAddr = crate::env_or("BIND", "0.0.0.0")
        .parse()
        .map_err(|_| anyhow::anyhow!("BIND is not an IP address"))?;
    let addr = SocketAddr::from((ip, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    println!("listening on {}", listener.local_addr()?);
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A keep-alive client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http()
}

/// A client speaking HTTP/2 with prior knowledge (h2c), as gRPC does.
pub fn client_http2() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Sends a request with a deadline.
pub async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<Answer, String> {
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e}"))?;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(timeout, body.collect())
        .await
        .map_err(|_| "timed out reading the body".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
