//! A trace collector on 127.0.0.1: takes span batches POSTed as Zipkin v2
//! JSON (`/api/v2/spans`) or OTLP/HTTP JSON (`/v1/traces`) and keeps the
//! spans, normalized to one shape.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

/// One span as received, with the fields every test reads.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    /// "CLIENT" or "SERVER".
    pub kind: String,
    pub service: String,
    /// Tags (Zipkin) or attributes (OTLP), as strings.
    pub tags: serde_json::Map<String, Value>,
}

#[derive(Clone)]
pub struct SpanCollector {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl SpanCollector {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = Self {
            addr: listener.local_addr().unwrap(),
            spans: Arc::default(),
        };
        let spans = this.spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let spans = spans.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let spans = spans.clone();
                        async move { Ok::<_, Infallible>(receive(req, &spans).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        this
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

async fn receive(
    req: Request<Incoming>,
    spans: &Mutex<Vec<ReceivedSpan>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let Ok(body) = req.into_body().collect().await else {
        return answer(StatusCode::BAD_REQUEST);
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return answer(StatusCode::BAD_REQUEST);
    };
    let received = match path.as_str() {
        "/api/v2/spans" => zipkin(&value),
        "/v1/traces" => otlp(&value),
        _ => return answer(StatusCode::NOT_FOUND),
    };
    match received {
        Some(mut r) => {
            spans.lock().unwrap().append(&mut r);
            answer(StatusCode::ACCEPTED)
        }
        None => answer(StatusCode::BAD_REQUEST),
    }
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::default());
    *r.status_mut() = status;
    r
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn zipkin(value: &Value) -> Option<Vec<ReceivedSpan>> {
    value
        .as_array()?
        .iter()
        .map(|s| {
            Some(ReceivedSpan {
                trace_id: text(&s["traceId"])?,
                id: text(&s["id"])?,
                parent_id: text(&s["parentId"]),
                kind: text(&s["kind"])?,
                service: text(&s["localEndpoint"]["serviceName"])?,
                tags: s["tags"].as_object()?.clone(),
            })
        })
        .collect()
}

fn otlp(value: &Value) -> Option<Vec<ReceivedSpan>> {
    let mut out = Vec::new();
    for rs in value["resourceSpans"].as_array()? {
        let service = rs["resource"]["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| text(&a["value"]["stringValue"]))?;
        for scope in rs["scopeSpans"].as_array()? {
            for s in scope["spans"].as_array()? {
                let tags = s["attributes"]
                    .as_array()?
                    .iter()
                    .filter_map(|a| Some((text(&a["key"])?, a["value"]["stringValue"].clone())))
                    .collect();
                out.push(ReceivedSpan {
                    trace_id: text(&s["traceId"])?,
                    id: text(&s["spanId"])?,
                    parent_id: text(&s["parentSpanId"]),
                    kind: match s["kind"].as_u64()? {
                        2 => "SERVER".into(),
                        3 => "CLIENT".into(),
                        _ => return None,
                    },
                    service: service.clone(),
                    tags,
                });
            }
        }
    }
    Some(out)
}
