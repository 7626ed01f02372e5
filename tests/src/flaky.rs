//! An HTTP application that fails on command: the first N requests with a
//! status, every Nth request, a delay before answering, a connection reset
//! (closed without a response), or a fixed status. It counts what reaches
//! it: connections, requests, their bodies, and requests whose handling
//! was cancelled (the client went away before the answer).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// How the application answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 with `<name> <body>`.
    Healthy,
    /// The first `n` requests from now get `status`, then 200.
    FirstN { n: usize, status: u16 },
    /// Every `n`th request (counted from now) gets `status`.
    EveryNth { n: usize, status: u16 },
    /// Every request gets `status`.
    Always { status: u16 },
    /// Waits this long, then answers 200.
    Delay(Duration),
    /// Closes the connection without answering.
    Reset,
}

#[derive(Debug)]
struct State {
    fault: Mutex<(Fault, usize)>,
    requests: AtomicUsize,
    connections: AtomicUsize,
    cancelled: AtomicUsize,
    bodies: Mutex<Vec<Bytes>>,
}

/// The application; cheap to clone.
#[derive(Debug, Clone)]
pub struct FlakyApp {
    pub addr: SocketAddr,
    pub name: String,
    state: Arc<State>,
}

/// Why a request failed on purpose (a service error closes the
/// connection without a response).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reset on command")
    }
}

impl std::error::Error for Dropped {}

/// Counts a request as cancelled unless it was answered.
struct Answering<'a> {
    state: &'a State,
    answered: bool,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl FlakyApp {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Self {
            addr: listener.local_addr().unwrap(),
            name: name.into(),
            state: Arc::new(State {
                fault: Mutex::new((Fault::Healthy, 0)),
                requests: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
                cancelled: AtomicUsize::new(0),
                bodies: Mutex::default(),
            }),
        };
        let this = app.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                this.state.connections.fetch_add(1, Ordering::SeqCst);
                let this = this.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let this = this.clone();
                        async move { this.respond(req).await }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        app
    }

    /// Answers this way from now on.
    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = (fault, 0);
    }

    /// Requests that reached the application.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Requests whose client went away before the answer.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// The request bodies received, in order.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.state.bodies.lock().unwrap().clone()
    }

    /// The fault for the next request, counting it.
    fn next(&self) -> Option<Result<u16, Duration>> {
        let mut fault = self.state.fault.lock().unwrap();
        fault.1 += 1;
        let seen = fault.1;
        match fault.0 {
            Fault::Healthy => Some(Ok(200)),
            Fault::FirstN { n, status } => Some(Ok(if seen <= n { status } else { 200 })),
            Fault::EveryNth { n, status } => Some(Ok(if n > 0 && seen.is_multiple_of(n) {
                status
            } else {
                200
            })),
            Fault::Always { status } => Some(Ok(status)),
            Fault::Delay(d) => Some(Err(d)),
            Fault::Reset => None,
        }
    }

    async fn respond(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        self.state.requests.fetch_add(1, Ordering::SeqCst);
        let mut answering = Answering {
            state: &self.state,
            answered: false,
        };
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        self.state.bodies.lock().unwrap().push(body.clone());
        let status = match self.next() {
            None => {
                answering.answered = true;
                return Err(Dropped);
            }
            Some(Ok(status)) => status,
            Some(Err(delay)) => {
                tokio::time::sleep(delay).await;
                200
            }
        };
        answering.answered = true;
        let text = format!("{} {}", self.name, String::from_utf8_lossy(&body));
        Ok(Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("x-app", &self.name)
            .body(Full::new(Bytes::from(text)))
            .unwrap())
    }
}
